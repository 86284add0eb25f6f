"""Strict CSP column: tight matching + space group, METRe/cRMSE, and the duplicate finder."""
from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from tgdmat.metrics.csp import evaluate_csp, make_matcher
from tgdmat.metrics.strict import (
    LITERATURE_MATCHER,
    STRICT_MATCHER,
    candidate_mask,
    evaluate_csp_strict,
    find_duplicates,
    match_rate_without_duplicates,
    match_reduced,
    polymorph_metrics,
    reduce_all,
    space_group_number,
)


def diamond() -> Structure:
    """Diamond (Fd-3m, 227), conventional 8-atom cell."""
    return Structure.from_spacegroup("Fd-3m", Lattice.cubic(3.567), ["C"], [[0, 0, 0]])


def lonsdaleite() -> Structure:
    """Hexagonal diamond (P6_3/mmc, 194), 4 atoms."""
    return Structure.from_spacegroup("P6_3/mmc", Lattice.hexagonal(2.52, 4.12), ["C"], [[1 / 3, 2 / 3, 0.0625]])


def strained(s: Structure, eps: float) -> Structure:
    """``s`` with its c axis stretched by ``eps`` (fractional coordinates kept)."""
    out = s.copy()
    a, b, c = s.lattice.abc
    out.lattice = Lattice.from_parameters(a, b, c * (1 + eps), *s.lattice.angles)
    return out


def other_cell(s: Structure, seed: int = 0) -> Structure:
    """The same crystal in a different cell: a 2x1x1 supercell, shifted and slightly jiggled."""
    rng = np.random.default_rng(seed)
    out = s.copy()
    out.make_supercell([[2, 0, 0], [0, 1, 0], [0, 0, 1]])
    out.translate_sites(list(range(len(out))), [0.13, 0.41, 0.07], frac_coords=True)
    for i in range(len(out)):
        out.translate_sites([i], rng.normal(scale=0.004, size=3), frac_coords=False)
    return out


# --------------------------------------------------------------------------------------------
# (a) strict = tight tolerances AND same space group
# --------------------------------------------------------------------------------------------


def test_strict_rejects_wrong_space_group_that_loose_accepts():
    target = diamond()
    pred = strained(target, 0.08)  # tetragonal: I4_1/amd, but the matchers scale it back onto diamond
    assert space_group_number(target) == 227 and space_group_number(pred) == 141
    assert make_matcher(**LITERATURE_MATCHER).get_rms_dist(pred, target) is not None
    assert make_matcher(**STRICT_MATCHER).get_rms_dist(pred, target) is not None  # the space group decides

    lit = evaluate_csp([[pred]], [target], progress=False)
    res = evaluate_csp_strict([[pred]], [target], progress=False, metre=False)
    assert lit["match_rate_pct"] == 100.0
    assert res["strict"]["tight_match_rate_pct"] == 100.0
    assert res["strict"]["space_group_agreement_pct"] == 0.0
    assert res["strict"]["match_rate_pct"] == 0.0 and res["strict"]["rmse"] is None
    assert res["strict"]["n_literature_hits_rejected"] == 1
    assert res["polymorph_aware"]["literature"]["match_rate_pct"] == lit["match_rate_pct"]
    assert res["strict"]["space_group"]["symprec"] == 0.1 and res["strict"]["matcher"]["stol"] == 0.3


def test_tight_tolerance_rejects_a_25_percent_strain_and_accepts_the_crystal_itself():
    target = diamond()
    big = strained(target, 0.25)  # within ltol 0.3, outside ltol 0.2
    same = other_cell(target)
    res = evaluate_csp_strict([[big], [same]], [target, target], progress=False, metre=False,
                              return_per_target=True)
    assert res["per_target_rms"]["literature"][0] is not None
    assert res["per_target_rms"]["tight"][0] is None
    assert res["per_target_rms"]["strict"][1] is not None and res["per_target_rms"]["strict"][1] < 0.05
    assert res["strict"]["match_rate_pct"] == 50.0


def test_cached_reduction_reproduces_get_rms_dist(carbon_test):
    """The fast path (structures reduced once) gives get_rms_dist's answer, and pruning is exact."""
    idx = [0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144]
    structs = [carbon_test.structure(i) for i in idx]
    red = reduce_all(structs)
    for tol in (LITERATURE_MATCHER, STRICT_MATCHER):
        m = make_matcher(**tol)
        for i in range(len(idx)):
            for j in range(len(idx)):
                ref = m.get_rms_dist(structs[i], structs[j])
                got = match_reduced(m, red[i], red[j])
                assert (ref is None) == (got is None)
                if ref is not None:
                    assert got == pytest.approx(ref[0], abs=1e-9)
                    assert red[i].key == red[j].key
                    assert candidate_mask(red[i].minima[None, :], red[j].abc, tol["ltol"])[0]


# --------------------------------------------------------------------------------------------
# (b) METRe and cRMSE (Martirossyan et al., arXiv:2509.12178)
# --------------------------------------------------------------------------------------------


def test_polymorph_metrics_arithmetic():
    out = polymorph_metrics([0.1, None, None, 0.3], [0.1, 0.2, None, 0.05], stol=0.5)
    assert out["match_rate_pct"] == 50.0 and out["rmse"] == pytest.approx(0.2)
    assert out["crmse"] == pytest.approx((0.1 + 0.5 + 0.5 + 0.3) / 4)
    assert out["metre_pct"] == 75.0 and out["metre_rmse"] == pytest.approx((0.1 + 0.2 + 0.05) / 3)
    assert out["metre_crmse"] == pytest.approx((0.1 + 0.2 + 0.5 + 0.05) / 4)


def test_metre_credits_swapped_polymorphs_and_crmse_penalises_misses():
    d, lon = diamond(), lonsdaleite()
    swapped = evaluate_csp_strict([[other_cell(lon, 1)], [other_cell(d, 2)]], [d, lon], progress=False)
    lit = swapped["polymorph_aware"]["literature"]
    assert lit["match_rate_pct"] == 0.0 and lit["crmse"] == pytest.approx(LITERATURE_MATCHER["stol"])
    assert lit["metre"]["metre_pct"] == 100.0 and lit["metre"]["metre_crmse"] < 0.05
    assert lit["metre"]["match_rate_pct"] == 0.0 and lit["metre"]["n_targets"] == 2
    assert swapped["polymorph_aware"]["strict"]["metre"]["metre_pct"] == 100.0

    one_polymorph = evaluate_csp_strict([[d], [d]], [d, lon], progress=False)
    lit = one_polymorph["polymorph_aware"]["literature"]
    assert lit["match_rate_pct"] == 50.0 and lit["metre"]["metre_pct"] == 50.0
    assert lit["crmse"] == pytest.approx(LITERATURE_MATCHER["stol"] / 2, abs=1e-6)
    assert lit["metre"]["metre_crmse"] == pytest.approx(LITERATURE_MATCHER["stol"] / 2, abs=1e-6)
    assert lit["metre"]["n_distinct_predictions"] == 1  # the same diamond twice is compared once
    strict = one_polymorph["polymorph_aware"]["strict"]
    assert strict["crmse"] == pytest.approx(STRICT_MATCHER["stol"] / 2, abs=1e-6)


def test_metre_on_a_sample_of_targets_is_exact_for_those_targets():
    d, lon = diamond(), lonsdaleite()
    preds = [[lon], [d], [other_cell(d, 7)]]
    targets = [d, lon, d]
    full = evaluate_csp_strict(preds, targets, progress=False, return_per_target=True)
    part = evaluate_csp_strict(preds, targets, progress=False, metre_targets=[0, 1], return_per_target=True)
    m = part["polymorph_aware"]["literature"]["metre"]
    assert m["n_targets"] == 2 and m["targets"].startswith("sample")
    assert part["polymorph_aware"]["metre_target_indices"] == [0, 1]
    assert part["per_target_rms"]["metre_literature"] == full["per_target_rms"]["metre_literature"][:2]
    assert m["match_rate_pct"] == 0.0 and m["metre_pct"] == 100.0  # one-to-one on the same two targets
    assert part["polymorph_aware"]["literature"]["match_rate_pct"] == pytest.approx(100 / 3)  # all three


def test_invalid_predictions_are_misses_everywhere():
    d = diamond()
    res = evaluate_csp_strict([[None]], [d], progress=False)
    assert res["n_comparable_predictions"] == 0
    assert res["strict"]["match_rate_pct"] == 0.0
    assert res["polymorph_aware"]["literature"]["metre"]["metre_pct"] == 0.0


# --------------------------------------------------------------------------------------------
# (c) duplicates
# --------------------------------------------------------------------------------------------


def test_duplicate_finder_finds_a_crystal_inserted_twice_and_keeps_polymorphs_apart(carbon_test):
    d, lon = diamond(), lonsdaleite()
    a, b = carbon_test.structure(4), carbon_test.structure(5)  # 10 and 12 atoms, primitive, P1
    refs = [lon, carbon_test.structure(2), other_cell(a, 3), d]
    queries = [a, other_cell(d, 4), b]
    out = find_duplicates(queries, refs, query_ids=["a", "diamond", "b"],
                          reference_ids=["lonsdaleite", "c2", "a'", "diamond"])
    for name in ("literature", "strict"):
        s = out["settings"][name]
        assert s["match_index"][0] == 2 and s["match_index"][1] == 3
        assert s["match_index"][2] is None
        assert s["pairs"] == {"a": "a'", "diamond": "diamond"}
    assert out["settings"]["strict"]["same_space_group"] is True

    # diamond and lonsdaleite are both all-carbon, sp3 and near-equal in density: never duplicates
    only = find_duplicates([d, lon], [d])
    assert only["settings"]["literature"]["has_duplicate"] == [True, False]
    assert find_duplicates([lon], [d])["settings"]["literature"]["has_duplicate"] == [False]


def test_duplicate_finder_agrees_with_brute_force(carbon_test):
    """Pruning never drops a match: same answers as comparing every pair with get_rms_dist."""
    q_idx = list(range(0, 24, 2))
    r_idx = list(range(1, 60, 3))
    queries = [carbon_test.structure(i) for i in q_idx]
    refs = [carbon_test.structure(i) for i in r_idx]
    out = find_duplicates(queries, refs, tolerances={"literature": {**LITERATURE_MATCHER}})
    m = make_matcher(**LITERATURE_MATCHER)
    brute = [any(m.get_rms_dist(r, q) is not None for r in refs) for q in queries]
    assert out["settings"]["literature"]["has_duplicate"] == brute
    assert any(brute) and not all(brute)  # the sample has both kinds


def test_two_different_carbon24_crystals_of_equal_size_are_not_duplicates(carbon_test):
    red = reduce_all([carbon_test.structure(i) for i in range(40)])
    m = make_matcher(**LITERATURE_MATCHER)
    pair = next((i, j) for i in range(40) for j in range(i + 1, 40)
                if red[i].key == red[j].key and match_reduced(m, red[i], red[j]) is None
                and match_reduced(m, red[j], red[i]) is None)
    i, j = pair
    out = find_duplicates([red[i]], [red[j]], tolerances={"literature": {**LITERATURE_MATCHER}})
    assert out["settings"]["literature"]["has_duplicate"] == [False]


def test_match_rate_without_duplicates():
    hits = [0.1, None, 0.2, None, True, False]
    dup = [True, True, False, False, False, True]
    out = match_rate_without_duplicates(hits, dup)
    assert out["n_targets"] == 3 and out["n_excluded"] == 3
    assert out["n_hits"] == 2 and out["match_rate_pct"] == pytest.approx(200 / 3)
    assert out["rmse"] == pytest.approx(0.2)
    assert match_rate_without_duplicates([True], [True])["match_rate_pct"] is None
    with pytest.raises(ValueError):
        match_rate_without_duplicates([True], [True, False])


def test_without_duplicates_block_in_the_column():
    d, lon = diamond(), lonsdaleite()
    dups = find_duplicates([d, lon], [other_cell(d, 5)])
    res = evaluate_csp_strict([[d], [d]], [d, lon], progress=False, metre=False, duplicates=dups)
    wd = res["without_duplicates"]["literature"]
    assert wd["n_excluded"] == 1 and wd["n_targets"] == 1 and wd["match_rate_pct"] == 0.0


def test_duplicates_use_get_rms_dist_acceptance_not_fit(carbon_test):
    """Test crystals 1 and 56: get_rms_dist accepts (RMS < stol), fit rejects (one site > stol)."""
    ref, query = carbon_test.structure(1), carbon_test.structure(56)
    m = make_matcher(**LITERATURE_MATCHER)
    assert m.get_rms_dist(ref, query) is not None and not m.fit(ref, query)
    out = find_duplicates([query], [ref], tolerances={"literature": {**LITERATURE_MATCHER}})
    assert out["settings"]["literature"]["has_duplicate"] == [True]
