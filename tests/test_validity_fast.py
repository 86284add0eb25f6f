"""The charge-balance search of ``smact_validity`` (a dynamic programme) gives exactly the answer of
CDVAE's enumeration over all oxidation-state combinations, in time that does not grow with their
product, and ``validity_arrays`` bounds the time spent on one structure."""
from __future__ import annotations

import math
import random
import time
from collections import Counter

import pytest
from pymatgen.core import Element, Lattice, Structure

from tgdmat import metrics
from tgdmat.metrics import validity as V

#: elements without a Pauling electronegativity in SMACT's tables (smact14 states)
NO_ENEG = ("Pm", "Rn", "Lr")
LANTHANIDES = ("La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu")


def _elements_with_states(oxidation_states_set: str = "smact14") -> list[str]:
    import smact

    attr = V.OXIDATION_STATE_SETS[oxidation_states_set]
    return [s for s in smact.ordered_elements(1, 103) if getattr(smact.Element(s), attr)]


def _split_compositions(ds) -> set[tuple[tuple[str, ...], tuple[int, ...]]]:
    """Distinct (symbols, gcd-reduced counts) of every crystal of a dataset."""
    symbol = {int(z): Element.from_Z(int(z)).symbol for z in set(ds.atom_types.tolist())}
    out = set()
    for i in range(len(ds)):
        counts = Counter(symbol[z] for z in ds.atom_types[ds.atoms(i)].tolist())
        symbols = tuple(sorted(counts))
        g = math.gcd(*counts.values())
        out.add((symbols, tuple(counts[s] // g for s in symbols)))
    return out


@pytest.mark.parametrize("which", ["perov_test", "carbon_test"])
def test_search_equals_enumeration_on_shipped_test_splits(which, request):
    comps = _split_compositions(request.getfixturevalue(which))
    results = Counter()
    for symbols, counts in comps:
        for pauling in (True, False):
            new = V._smact_valid(symbols, counts, pauling, True, "smact14", V._charge_balanced_search)
            assert new == V._smact_valid_enumerate(symbols, counts, pauling, True, "smact14"), (symbols, counts)
            results[pauling, new] += 1
    if which == "perov_test":  # not vacuous: the Pauling test rejects some real compositions
        assert results[True, False] > 0 and results[True, True] > 0


def _random_compositions(rng: random.Random, pool: list[str], n: int):
    """``n`` compositions of 2-6 distinct elements with counts 1-8 (gcd-reduced); a third of them
    holds an element without an electronegativity, another third a lanthanide."""
    special = [s for s in NO_ENEG if s in pool]
    lanthanides = [s for s in LANTHANIDES if s in pool]
    out = []
    for j in range(n):
        k = rng.randint(2, 6)
        symbols = set(rng.sample(pool, k))
        if j % 3 == 1 and special:
            symbols = set(list(symbols)[: k - 1]) | {rng.choice(special)}
        elif j % 3 == 2:
            symbols = set(list(symbols)[: k - 1]) | {rng.choice(lanthanides)}
        symbols = tuple(sorted(symbols))
        counts = [rng.randint(1, 8) for _ in symbols]
        g = math.gcd(*counts)
        out.append((symbols, tuple(c // g for c in counts)))
    return out


@pytest.mark.parametrize("oxidation_states_set, n", [("smact14", 2500), ("wiki", 500)])
def test_search_equals_enumeration_on_random_compositions(oxidation_states_set, n):
    """``wiki`` adds neutral states (q = 0) and Ar without an electronegativity. Alloys are not
    short-cut, so every composition goes through the search."""
    rng = random.Random(17)
    results = Counter()
    for symbols, counts in _random_compositions(rng, _elements_with_states(oxidation_states_set), n):
        for pauling in (True, False):
            new = V._smact_valid(symbols, counts, pauling, False, oxidation_states_set, V._charge_balanced_search)
            old = V._smact_valid_enumerate(symbols, counts, pauling, False, oxidation_states_set)
            assert new == old, (symbols, counts, pauling, oxidation_states_set)
            results[pauling, new] += 1
    assert min(results.values()) > n // 20  # both answers occur, with and without the Pauling test


def test_search_equals_enumeration_with_missing_electronegativities_anywhere():
    """SMACT's tables lack electronegativities only for cations; here anions, neutral states and
    equal electronegativities lack nothing either, to cover every branch of the Pauling quirk
    (an opposite-sign pair without a value ends the test as passed, pairs in combinations order)."""
    rng = random.Random(3)
    decided_by_pauling = 0
    for _ in range(4000):
        k = rng.randint(2, 7)
        counts = [rng.randint(1, 6) for _ in range(k)]
        g = math.gcd(*counts)
        counts = [c // g for c in counts]
        ox = [sorted(rng.sample([-3, -2, -1, 0, 1, 2, 3], rng.randint(1, 3))) for _ in range(k)]
        enegs = [rng.choice([None, None, 1.0, 2.0, 3.0]) for _ in range(k)]
        with_test = V._charge_balanced_search(counts, ox, enegs, True)
        assert with_test == V._enumerate_search(counts, ox, enegs, True), (counts, ox, enegs)
        without = V._charge_balanced_search(counts, ox, enegs, False)
        assert without == V._enumerate_search(counts, ox, enegs, False), (counts, ox, enegs)
        decided_by_pauling += without and not with_test
    assert decided_by_pauling > 100


NINETEEN = {"Mn": 3, "Os": 1, "Ir": 2, "Tc": 1, "Ru": 5, "Re": 1, "C": 7, "N": 2, "Si": 1, "P": 3,
            "S": 8, "Cl": 1, "Cr": 2, "Fe": 1, "Ge": 4, "Mo": 1, "Pm": 1, "Pt": 6, "O": 5}


@pytest.mark.parametrize("pauling", [True, False])
def test_nineteen_elements_in_under_a_second(pauling):
    """The enumeration would visit ~10^16 combinations (it never finished)."""
    V._smact_valid_cached.cache_clear()
    V.smact_validity("NaCl")  # SMACT's tables loaded outside the timing
    t = time.perf_counter()
    result = V.smact_validity(NINETEEN, use_pauling_test=pauling)
    assert time.perf_counter() - t < 1.0
    assert isinstance(result, bool)


def _slow_beyond_four_elements(monkeypatch):
    """Make the search of compositions with 5+ elements never finish on its own (it only
    consults the deadline), as the enumeration did for 19 elements."""
    fast = V._charge_balanced_search

    def search(counts, ox_combos, enegs, use_pauling_test):
        while len(counts) >= 5:
            V._check_deadline()
        return fast(counts, ox_combos, enegs, use_pauling_test)

    V._smact_valid_cached.cache_clear()
    monkeypatch.setattr(V, "_charge_balanced_search", search)


def _crystals():
    nacl = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    five = Structure(Lattice.cubic(8.0), ["Na", "K", "Ca", "Cl", "Cl", "Br", "Br"],  # NaKCaCl2Br2: valid
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5]])
    return [nacl, five, None, nacl]


def test_time_limit_skips_only_the_pathological_structure(monkeypatch):
    _slow_beyond_four_elements(monkeypatch)
    t = time.perf_counter()
    a = metrics.validity_arrays(_crystals(), time_limit_s=0.2)
    assert time.perf_counter() - t < 2.0
    assert a["skipped"].tolist() == [False, True, False, False]
    assert a["structural"].tolist() == [True, True, False, True]  # its structure check finished
    assert a["compositional"].tolist() == [True, False, False, True]  # skipped counts as invalid
    assert a["valid"].tolist() == [True, False, False, True]
    rates = metrics.validity_rates(_crystals(), time_limit_s=0.2)
    assert rates["skipped_count"] == 1 and rates["comp_valid_pct"] == 50.0
    V._smact_valid_cached.cache_clear()


def test_a_tiny_time_limit_skips_and_none_does_not():
    V._smact_valid_cached.cache_clear()
    tiny = metrics.validity_arrays(_crystals(), time_limit_s=0.0)
    assert tiny["skipped"].tolist() == [True, True, False, True]  # None needs no check
    assert not tiny["valid"].any()
    free = metrics.validity_arrays(_crystals(), time_limit_s=None)
    assert not free["skipped"].any() and free["valid"].tolist() == [True, True, False, True]
    assert V._DEADLINE.get() is None  # the deadline does not outlive the call


def test_evaluate_generation_reports_skipped(monkeypatch, tmp_path):
    monkeypatch.setenv("TGDMAT_CACHE", str(tmp_path))
    _slow_beyond_four_elements(monkeypatch)
    gen = _crystals()
    out = metrics.evaluate_generation(gen, [gen[0]], "perov_5", n_samples=2, workers=1, progress=False,
                                      validity_time_limit_s=0.2)
    v = out["validity"]
    assert v["skipped_count"] == 1 and v["skipped_indices"] == [1] and v["time_limit_s"] == 0.2
    assert v["comp_valid_pct"] == 50.0
    V._smact_valid_cached.cache_clear()
