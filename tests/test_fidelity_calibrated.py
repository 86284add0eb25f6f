"""Prompt fidelity agrees with the data: the real test crystals meet their own short prompts, and a
prompt that states the wrong symmetry is a miss."""
from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from tgdmat import metrics
from tgdmat.metrics.fidelity import CRYSTAL_SYSTEMS, FACTS, observed_facts, symprec_ladder


def _own_prompts(ds, n: int = 300, seed: int = 0):
    """``n`` seeded crystals of ``ds`` and the facts parsed back from their short prompts."""
    from tgdmat.text import parse_prompt
    from tgdmat.text.prompts import short_prompt

    idx = np.random.default_rng(seed).choice(len(ds), n, replace=False)
    structures, facts = [], []
    for i in map(int, idx):
        s = ds.structure(i)
        prompt = short_prompt(s, {k: float(v[i]) for k, v in ds.properties.items()}, ds.name)
        structures.append(s)
        facts.append(parse_prompt(prompt, dataset=ds.name))
    return structures, facts


@pytest.mark.parametrize("which", ["perov_test", "carbon_test"])
def test_real_crystals_meet_their_own_prompts(which, request):
    structures, facts = _own_prompts(request.getfixturevalue(which))
    out = metrics.prompt_fidelity(structures, facts)
    assert out["symprec_ladder"] == [0.01, 0.02, 0.05, 0.1] and out["angle_tolerance"] == 5.0
    for f in FACTS:
        assert out[f"{f}_n_stated"] == 300
        assert out[f"{f}_match_pct"] >= 99.5, (f, out[f"{f}_match_pct"])
    for f in ("space_group", "crystal_system"):
        assert sum(out[f"{f}_hits_by_symprec"].values()) == round(3 * out[f"{f}_match_pct"])


@pytest.mark.parametrize("which", ["perov_test", "carbon_test"])
def test_wrong_symmetry_in_the_prompt_is_a_miss(which, request):
    """State a space group and a crystal system the crystal shows at no rung of the ladder."""
    structures, facts = _own_prompts(request.getfixturevalue(which), n=20, seed=1)
    wrong = []
    for s, f in zip(structures, facts):
        seen = [observed_facts(s, rung) for rung in symprec_ladder()]
        sg = next(g for g in (230, 1, 2, 229) if g not in {o["space_group"] for o in seen})
        system = next(c for c in reversed(CRYSTAL_SYSTEMS) if c not in {o["crystal_system"] for o in seen})
        wrong.append({"formula": f.formula, "elements": f.elements, "space_group": sg, "crystal_system": system})
    out = metrics.prompt_fidelity(structures, wrong, return_per_sample=True)
    assert out["space_group_match_pct"] == 0.0 and out["crystal_system_match_pct"] == 0.0
    assert out["formula_match_pct"] == 100.0 and out["elements_match_pct"] == 100.0
    assert all(r == {"crystal_system": None, "space_group": None} for r in out["per_sample_hit_symprec"])


def test_the_rung_of_each_hit_is_recorded():
    """Rock salt stretched 2 % along c (0.11 Å) is I4/mmm (139) up to 0.02 Å, Fm-3m from 0.05 Å."""
    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    stretched = Structure(Lattice.tetragonal(5.64, 5.64 * 1.02), rocksalt.species, rocksalt.frac_coords)
    stated = [{"crystal_system": "cubic", "space_group": 139}]
    out = metrics.prompt_fidelity([stretched], stated, return_per_sample=True)
    assert out["per_sample_hit_symprec"] == [{"crystal_system": 0.05, "space_group": 0.01}]
    assert out["crystal_system_hits_by_symprec"] == {"0.01": 0, "0.02": 0, "0.05": 1, "0.1": 0}
    assert out["space_group_hits_by_symprec"] == {"0.01": 1, "0.02": 0, "0.05": 0, "0.1": 0}
    assert metrics.prompt_fidelity([stretched], stated, symprec=(0.01, 0.02))["crystal_system_match_pct"] == 0.0


def test_symprec_ladder():
    assert symprec_ladder() == symprec_ladder(0.1) == (0.01, 0.02, 0.05, 0.1)
    assert symprec_ladder(0.01) == (0.01,)  # the prompts' own reading only
    assert symprec_ladder(0.03) == (0.01, 0.02, 0.03)
    assert symprec_ladder(0.2) == (0.01, 0.02, 0.05, 0.1, 0.2)
    assert symprec_ladder([0.1, 0.001, 0.1]) == (0.001, 0.1)
    with pytest.raises(ValueError, match="positive"):
        symprec_ladder([])
    with pytest.raises(ValueError, match="positive"):
        symprec_ladder(-0.1)
