"""Retrieval baselines: training split only, never the test split; query semantics."""
from __future__ import annotations

import numpy as np
import pytest

import tgdmat.data
from tgdmat.data import holdout_indices
from tgdmat.retrieval import (
    TemplateIndex,
    TestSplitError,
    check_not_test,
    facts_from_prompts,
    nearest_template,
    random_same_size,
    relabel,
)
from tgdmat.text.facts import PromptFacts


@pytest.fixture(scope="module")
def carbon_val():
    return tgdmat.data.load_dataset("carbon_24", "val", progress=False)


@pytest.fixture(scope="module")
def small_train(carbon_val):
    """60 crystals of the training split (official val minus the seeded held-out slice)."""
    tr, _ = holdout_indices(len(carbon_val), 0.1, 0)
    return carbon_val.subset(tr[:60], split="train(val-holdout)")


def test_index_refuses_the_test_split(carbon_test):
    with pytest.raises(TestSplitError, match="test split"):
        TemplateIndex(carbon_test)
    # a slice of the test split relabelled as training data is still refused (its source file)
    with pytest.raises(TestSplitError):
        TemplateIndex(carbon_test.subset(range(5), split="train"))
    with pytest.raises(TestSplitError):
        random_same_size(carbon_test, 6, np.random.default_rng(0))
    with pytest.raises(TestSplitError):
        check_not_test(carbon_test.subset(range(3), split="holdout(test)"))


def test_building_and_querying_never_read_the_test_split(monkeypatch, carbon_val):
    calls = []
    real_load_dataset, real_load_csv = tgdmat.data.load_dataset, tgdmat.data.load_csv

    def guarded_load_dataset(name, split, *args, **kwargs):
        calls.append(("load_dataset", name, split))
        if "test" in str(split):
            raise AssertionError(f"retrieval read the test split of {name}")
        return real_load_dataset(name, split, *args, **kwargs)

    def guarded_load_csv(path, *args, **kwargs):
        calls.append(("load_csv", str(path)))
        if "test" in str(path).split("/")[-1] or "test" in str(kwargs.get("split", "")):
            raise AssertionError(f"retrieval read a test file: {path}")
        return real_load_csv(path, *args, **kwargs)

    monkeypatch.setattr(tgdmat.data, "load_dataset", guarded_load_dataset)
    monkeypatch.setattr(tgdmat.data, "load_csv", guarded_load_csv)
    with pytest.raises(AssertionError):  # the guard works
        tgdmat.load_dataset("carbon_24", "test", progress=False)
    calls.clear()

    tr, _ = holdout_indices(len(carbon_val), 0.1, 0)
    train = carbon_val.subset(tr[:40], split="train(val-holdout)")
    index = TemplateIndex(train)
    prompt = ("Below is a description of a bulk material. The chemical formula is C. The elements are C. "
              "The energy per atom is -154.3. The spacegroup number is 12. The crystal system is monoclinic. "
              "Generate the material:")
    facts = facts_from_prompts([prompt], "carbon_24")[0]
    size = int(train.num_atoms[0])
    hits = index.query(facts, size, k=3)
    assert hits and all(train.num_atoms[h.index] == size for h in hits)
    assert nearest_template(index, facts, size) is not None
    assert len(random_same_size(train, size, np.random.default_rng(0), k=4)) == 4
    assert random_same_size(index, size, np.random.default_rng(0), composition="C") is not None
    assert calls == []  # building and querying loaded nothing at all


def test_query_filters_and_ranking(small_train):
    n = len(small_train)
    sizes = small_train.num_atoms
    size = int(np.bincount(sizes).argmax())
    rows = np.flatnonzero(sizes == size)
    assert len(rows) >= 4
    # invented facts for the index: two rows in P2/m (10, monoclinic), one in Fd-3m (227), rest P-1
    sg = {int(rows[0]): 10, int(rows[1]): 10, int(rows[2]): 227}
    facts = []
    for i in range(n):
        g = sg.get(i, 2)
        facts.append(PromptFacts(formula="C", elements=("C",), space_group=g,
                                 crystal_system={10: "monoclinic", 227: "cubic", 2: "triclinic"}[g],
                                 properties={"energy_per_atom": float(small_train.properties["energy_per_atom"][i])}))
    index = TemplateIndex(small_train, facts=facts)
    e = small_train.properties["energy_per_atom"]

    # stated space group: only those rows, nearest property first
    q = PromptFacts(space_group=10, crystal_system="monoclinic", properties={"energy_per_atom": float(e[rows[1]])})
    hits = index.query(q, size, k=5)
    assert [h.index for h in hits] == [int(rows[1]), int(rows[0])] and hits[0].level == "space_group"
    assert hits[0].distance == pytest.approx(0.0)

    # space group absent from the training data: same crystal system (P2/m for P2_1/c, 14)
    hits = index.query(PromptFacts(space_group=14), size, k=5)
    assert {h.index for h in hits} == {int(rows[0]), int(rows[1])} and hits[0].level == "crystal_system"
    hits = index.query(PromptFacts(space_group=225, crystal_system="cubic"), size, k=5)
    assert [h.index for h in hits] == [int(rows[2])]

    # no symmetry match at all: any crystal of that size, by property
    target = float(e[rows[3]])
    hits = index.query(PromptFacts(space_group=194, properties={"energy_per_atom": target}), size, k=len(rows))
    assert hits[0].level == "any" and len(hits) == len(rows)
    d = np.abs(e[[h.index for h in hits]] - target)
    assert np.all(np.diff(d) >= -1e-12)  # ranked by |standardised property difference|

    # atom count is required
    missing = next(s for s in range(1, 200) if s not in set(sizes.tolist()))
    assert index.query(PromptFacts(), missing) == []
    assert nearest_template(index, PromptFacts(), missing) is None
    assert random_same_size(small_train, missing, np.random.default_rng(0)) is None


def test_random_same_size_draws_only_that_size(small_train):
    rng = np.random.default_rng(0)
    size = int(small_train.num_atoms[0])
    draws = random_same_size(small_train, size, rng, k=20)
    assert all(len(s) == size for s in draws)
    pool = int((small_train.num_atoms == size).sum())
    if pool >= 20:
        ids = {tuple(np.round(s.frac_coords.ravel(), 6)) for s in draws}
        assert len(ids) == 20  # without replacement while the pool lasts


def test_relabel_pairs_species_by_count_then_electronegativity():
    from pymatgen.core import Lattice, Structure

    s = Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"],
                  [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    out = relabel(s, "BaZrO3")
    assert [x.species_string for x in out] == ["Ba", "Zr", "O", "O", "O"]  # Ba (0.89) onto Sr (0.95)
    assert relabel(s, "Sr2O3") is None
