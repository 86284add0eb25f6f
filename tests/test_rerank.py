"""Choosing one of k draws (tgdmat.rerank): validity first, then the prompt's stated number."""
from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from tgdmat.rerank import select, stated_values
from tgdmat.text import PromptError

PROMPT = ("Below is a description of a bulk material. The chemical formula is SrTiO3. The elements are Sr, Ti, O. "
          "The formation energy per atom is {value}. The spacegroup number is 221. The crystal system is cubic. "
          "Generate the material:")


def perovskite(a=3.9, shift=0.0):
    return Structure(Lattice.cubic(a), ["Sr", "Ti", "O", "O", "O"],
                     [[0, 0, 0], [0.5 + shift, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def collapsed():
    s = perovskite()
    s.replace(1, "Ti", [0.01, 0.0, 0.0])  # Ti 0.04 Å from Sr: not structurally valid
    return s


def by_lattice(structures):
    """A stand-in predictor: 'property' = lattice length a (each candidate differs in a)."""
    return np.array([s.lattice.a for s in structures])


def test_stated_values_parses_numbers_and_marks_missing():
    prompts = [PROMPT.format(value="-0.1234"), PROMPT.format(value="1.5e-1"), "A perovskite oxide."]
    got = stated_values(prompts, "heat_ref", 3, "perov_5")
    assert got[0] == pytest.approx(-0.1234) and got[1] == pytest.approx(0.15) and np.isnan(got[2])
    assert np.isnan(stated_values(None, "heat_ref", 2)).all()
    with pytest.raises(PromptError, match="formation energy"):
        stated_values([PROMPT.format(value="1.2.3")], "heat_ref", 1, "perov_5")
    with pytest.raises(ValueError, match="2 prompts for 3 targets"):
        stated_values(prompts[:2], "heat_ref", 3)


def test_valid_draw_beats_invalid_and_number_decides_among_valid():
    cands = [[collapsed(), perovskite(3.8), perovskite(4.2)],   # states 4.15: the 4.2 draw
             [perovskite(3.8), perovskite(4.2), collapsed()],   # states 3.7: the 3.8 draw (first)
             [collapsed(), collapsed()]]                        # nothing valid: first draw, counted
    prompts = [PROMPT.format(value=4.15), PROMPT.format(value=3.7), PROMPT.format(value=1.0)]
    sel = select(cands, prompts, by_lattice, "heat_ref", dataset="perov_5")
    assert sel.chosen == [2, 0, 0]
    assert sel.n_valid == [2, 2, 0]
    assert [len(c) for c in sel.candidates] == [3, 3, 2] and sel.candidates[0][2] is cands[0][2]
    assert sel.structures[0].lattice.a == pytest.approx(4.2)
    summary = sel.summary()
    assert summary["targets_without_valid_draw"] == 1 and summary["chosen_not_first_pct"] == pytest.approx(100 / 3)
    assert summary["mean_abs_deviation_chosen"] == pytest.approx(np.mean([0.05, 0.1, abs(3.9 - 1.0)]), abs=1e-6)


def test_without_number_or_predictor_validity_alone_decides():
    cands = [[collapsed(), perovskite(4.2), perovskite(3.8)]]
    assert select(cands, ["A perovskite oxide."], by_lattice, "heat_ref", dataset="perov_5").chosen == [1]
    assert select(cands, [PROMPT.format(value=3.8)], by_lattice, "heat_ref", dataset="perov_5").chosen == [2]
    assert select(cands, [PROMPT.format(value=3.8)], None, "heat_ref").chosen == [1]
    assert select(cands).chosen == [1]
    # a predictor that fails (nan) on the closest draw ranks it last among the valid ones
    nan_first = lambda ss: np.array([np.nan if abs(s.lattice.a - 3.8) < 1e-9 else s.lattice.a for s in ss])
    assert select(cands, [PROMPT.format(value=3.8)], nan_first, "heat_ref", dataset="perov_5").chosen == [1]


def test_select_rejects_empty_and_bad_predictor():
    with pytest.raises(ValueError, match="at least one candidate"):
        select([[perovskite()], []])
    with pytest.raises(ValueError, match="predictor returned shape"):
        select([[perovskite()]], [PROMPT.format(value=1)], lambda ss: np.zeros(3), "heat_ref", dataset="perov_5")
