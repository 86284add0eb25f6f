"""The data pipeline: shipped files, canonicalisation, tensors, cache, splits, downloads, bad input."""
from __future__ import annotations

import gzip
import time

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from tgdmat import data as D
from tgdmat.crystal import batch_to_structures, data_to_structure, lattice_from_params, lattice_params, structure_to_data
from tgdmat.paths import data_dir, sha256_file

SHIPPED = {
    ("perov_5", "val"): (3787, "784e89dc6b8879382b2b25cf3cc0c75a3c1160f8242b2090006931a24a0f5c45"),
    ("perov_5", "test"): (3785, "b635a7e4803ce8abc147da102a5ac5df1a2c9fc74fc4854afb7eac54c839420c"),
    ("carbon_24", "val"): (2032, "bf1d3e91bbd70e0c84b3be67c19ddcc796331b797a08a9e275691a3b7a564dec"),
    ("carbon_24", "test"): (2030, "f51a69674f1d15fb06fa8be60f09abbda60283f77fd1a21d44d6ec2c9a039f65"),
}


def _rows(name="perov_5", split="test", n=5):
    return pd.read_csv(data_dir() / name / f"{split}.csv.gz", dtype={"material_id": str}).head(n)


def _write(df, path):
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("key", sorted(SHIPPED))
def test_shipped_files_rows_and_hashes(key):
    name, split = key
    rows, sha = SHIPPED[key]
    path = D.dataset_path(name, split)
    assert sha256_file(path) == sha
    ds = D.load_dataset(name, split, progress=False)
    assert len(ds) == rows and not ds.skipped
    assert ds.properties.keys() == set(D.DATASETS[name].properties)
    assert len(set(ds.material_ids)) == rows
    if name == "perov_5":
        assert (ds.num_atoms == 5).all()
    else:
        assert ds.num_atoms.min() >= 6 and ds.num_atoms.max() <= 24


def test_canonical_form(perov_test, carbon_test):
    for ds in (perov_test, carbon_test):
        assert (ds.frac_coords >= 0).all() and (ds.frac_coords < 1).all()
        rebuilt = lattice_from_params(torch.tensor(ds.lattice_params)).numpy()
        np.testing.assert_allclose(rebuilt, ds.lattice, atol=1e-8)
        for i in range(0, len(ds), max(1, len(ds) // 20)):
            lat = Lattice(ds.lattice[i])
            niggli = lat.get_niggli_reduced_lattice()
            # pymatgen's Niggli tolerance is 1e-5·V^(1/3), so compare at 1e-3
            np.testing.assert_allclose(sorted(lat.abc), sorted(niggli.abc), rtol=1e-3)


def test_canonicalise_matches_raw_cif():
    df = _rows("carbon_24", "test", 6)
    matcher = StructureMatcher()
    ds = D.load_csv(_write(df, "/tmp/_tgdmat_c.csv"), dataset="carbon_24", cache=False, progress=False)
    for cif, rec in zip(df["cif"], ds):
        raw = Structure.from_str(cif, fmt="cif")
        assert matcher.fit(raw, rec.structure)
        assert abs(raw.volume - rec.structure.volume) < 1e-6 * raw.volume


def test_round_trip_structure_tensors_structure(perov_test, carbon_test):
    matcher = StructureMatcher()
    for ds in (perov_test, carbon_test):
        for i in (0, 1, len(ds) // 2, len(ds) - 1):
            s = ds[i].structure
            data = structure_to_data(s, canonical=False)
            assert data.atom_types.dtype == torch.long and data.frac_coords.shape == (len(s), 3)
            assert data.lattice.shape == (1, 3, 3) and data.lattice_params.shape == (1, 6)
            back = data_to_structure(data)
            assert matcher.fit(s, back)
            assert [x.specie.Z for x in back] == [x.specie.Z for x in s]
            np.testing.assert_allclose(back.lattice.matrix, s.lattice.matrix, atol=1e-5)


def test_lattice_params_tensor_matches_pymatgen(carbon_test):
    params = lattice_params(torch.tensor(carbon_test.lattice[:50]))
    np.testing.assert_allclose(params.numpy(), carbon_test.lattice_params[:50], atol=1e-6)


def test_batch_of_perov_test(perov_test):
    batch = perov_test.batch(range(16))
    assert batch.num_graphs == 16
    assert batch.lattice.shape == (16, 3, 3)
    assert batch.atom_types.shape == (80,) and batch.frac_coords.shape == (80, 3)
    assert batch.batch.tolist() == [i for i in range(16) for _ in range(5)]
    assert batch.y.shape == (16, 1)
    structures = batch_to_structures(batch)
    assert [s.composition for s in structures] == [perov_test[i].structure.composition for i in range(16)]
    loader = perov_test.subset(range(40)).loader(batch_size=16, shuffle=True, seed=3)
    first = [b.crystal_id.tolist() for b in loader]
    again = [b.crystal_id.tolist() for b in perov_test.subset(range(40)).loader(batch_size=16, shuffle=True, seed=3)]
    assert first == again and sorted(sum(first, [])) == list(range(40))


@pytest.mark.parametrize(
    "value,expected",
    [(-1e-17, 0.0), (1.0, 0.0), (2.25, 0.25), (-0.25, 0.75), (0.5, 0.5)],
)
def test_wrap_frac(value, expected):
    from tgdmat.crystal import wrap_frac

    out = wrap_frac(np.array([value]))
    assert 0.0 <= out[0] < 1.0
    assert out[0] == pytest.approx(expected, abs=1e-12)


def test_cif_coordinates_outside_cell_are_wrapped():
    # The first Perov-5 test row has x = -0.39 in its CIF.
    ds = D.load_csv(_write(_rows(n=1), "/tmp/_tgdmat_w.csv"), dataset="perov_5", cache=False, progress=False)
    assert (ds.frac_coords >= 0).all() and (ds.frac_coords < 1).all()


def test_cache_hit_and_invalidation(tmp_path, monkeypatch):
    path = _write(_rows(n=20), tmp_path / "perov.csv")
    first = D.load_csv(path, dataset="perov_5", progress=False)

    def boom(*a, **k):
        raise AssertionError("a cache hit must not parse CIFs")

    monkeypatch.setattr(D, "_parse_row", boom)
    t0 = time.perf_counter()
    second = D.load_csv(path, dataset="perov_5", progress=False)
    assert time.perf_counter() - t0 < 1.0
    assert second.material_ids == first.material_ids
    np.testing.assert_array_equal(second.frac_coords, first.frac_coords)
    np.testing.assert_array_equal(second.properties["heat_ref"], first.properties["heat_ref"])
    monkeypatch.undo()

    df = _rows(n=20)
    df.loc[0, "heat_ref"] = 123.0
    _write(df, path)  # changed file → new sha256 → parsed again
    third = D.load_csv(path, dataset="perov_5", progress=False)
    assert third.properties["heat_ref"][0] == 123.0


def test_gzipped_and_plain_agree(tmp_path):
    df = _rows(n=4)
    plain = _write(df, tmp_path / "a.csv")
    gz = tmp_path / "a.csv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    a = D.load_csv(plain, dataset="perov_5", cache=False, progress=False)
    b = D.load_csv(gz, dataset="perov_5", cache=False, progress=False)
    np.testing.assert_array_equal(a.lattice, b.lattice)


def test_mp20_format_columns(tmp_path):
    df = _rows(n=3)[["material_id", "cif"]].copy()
    df["formation_energy_per_atom"] = [-1.5, -0.25, -2e-3]
    df["band_gap"] = [0.0, 1.2, 3.4]
    df["e_above_hull"] = [0.0, 0.01, 0.1]
    df["pretty_formula"] = ["x", "y", "z"]
    df["elements"] = ["[]", "[]", "[]"]
    df["spacegroup.number"] = [221, 221, 221]
    ds = D.load_csv(_write(df, tmp_path / "mp.csv"), cache=False, progress=False)
    assert ds.name == "mp_20"
    assert list(ds.properties) == ["formation_energy_per_atom", "band_gap", "e_above_hull"]
    assert ds[2].properties["formation_energy_per_atom"] == -2e-3


# ----------------------------------------------------------------------------- bad input


def _bad(tmp_path, mutate, name="bad.csv", **kwargs):
    df = _rows(n=4)
    mutate(df)
    path = _write(df, tmp_path / name)
    with pytest.raises(D.DataError) as err:
        D.load_csv(path, dataset="perov_5", cache=False, progress=False, **kwargs)
    return str(err.value), path


def test_malformed_cif_names_file_row_id_field(tmp_path):
    def mutate(df):
        df.loc[2, "cif"] = "data_broken\n_cell_length_a oops\nloop_\n _atom_site_fract_x\n"

    msg, path = _bad(tmp_path, mutate)
    mid = _rows(n=4).loc[2, "material_id"]
    assert str(path) in msg and "row 3" in msg and repr(mid) in msg and "'cif'" in msg


def test_missing_column(tmp_path):
    msg, path = _bad(tmp_path, lambda df: df.drop(columns=["heat_ref"], inplace=True))
    assert "missing column 'heat_ref'" in msg and str(path) in msg


def test_empty_file_and_header_only(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(D.DataError, match="empty"):
        D.load_csv(empty, dataset="perov_5", cache=False)
    header = tmp_path / "header.csv"
    header.write_text(",material_id,cif,heat_ref\n")
    with pytest.raises(D.DataError, match="no rows"):
        D.load_csv(header, dataset="perov_5", cache=False)


def test_element_beyond_table(tmp_path):
    def mutate(df):
        df.loc[1, "cif"] = df.loc[1, "cif"].replace("_atom_site_occupancy\n  ", "_atom_site_occupancy\n  Og  Og9  1  0.1  0.2  0.3  1\n  ", 1)

    msg, _ = _bad(tmp_path, mutate)
    assert "Og" in msg and "row 2" in msg and "Z=1..100" in msg


def test_missing_property_value_and_duplicate_id(tmp_path):
    msg, _ = _bad(tmp_path, lambda df: df.__setitem__("heat_ref", [1.0, np.nan, 1.0, 1.0]))
    assert "row 2" in msg and "'heat_ref'" in msg

    def dup(df):
        df.loc[3, "material_id"] = df.loc[0, "material_id"]

    msg, _ = _bad(tmp_path, dup, name="dup.csv")
    assert "duplicate material_id" in msg and "row 4" in msg


def test_skip_bad_rows_reports_them(tmp_path):
    df = _rows(n=6)
    df.loc[1, "cif"] = "not a cif"
    df.loc[4, "heat_ref"] = np.nan
    path = _write(df, tmp_path / "skip.csv")
    with pytest.warns(UserWarning, match="skipped 2 of 6"):
        ds = D.load_csv(path, dataset="perov_5", skip_bad=True, cache=False, progress=False)
    assert len(ds) == 4
    assert [s.row for s in ds.skipped] == [2, 5]
    assert ds.skipped[0].material_id == str(df.loc[1, "material_id"])
    assert list(ds.rows) == [1, 3, 4, 6]


def test_unknown_dataset_and_missing_split(tmp_path):
    with pytest.raises(D.DataError, match="unknown data set"):
        D.load_dataset("nope", "test")
    with pytest.raises(D.DataError, match="download_upstream"):
        D.load_dataset("perov_5", "train")


# ----------------------------------------------------------------------------- splits


def test_splits_protocol_val_minus_holdout():
    s1 = D.load_splits("perov_5", holdout_fraction=0.1, seed=7, progress=False)
    s2 = D.load_splits("perov_5", holdout_fraction=0.1, seed=7, progress=False)
    s3 = D.load_splits("perov_5", holdout_fraction=0.1, seed=8, progress=False)
    assert s1.protocol == D.PROTOCOL_VAL_AS_TRAIN
    assert len(s1.train) + len(s1.val) == 3787 and len(s1.val) == 379 and len(s1.test) == 3785
    assert not set(s1.train.material_ids) & set(s1.val.material_ids)
    assert s1.val.material_ids == s2.val.material_ids != s3.val.material_ids


def test_splits_official_with_train_csv(tmp_path):
    root = tmp_path / "root"
    (root / "perov_5").mkdir(parents=True)
    for split, n in (("train", 12), ("val", 5), ("test", 6)):
        _write(_rows(split="val" if split != "test" else "test", n=n), root / "perov_5" / f"{split}.csv")
    s = D.load_splits("perov_5", root=root, cache=False, progress=False)
    assert s.protocol == D.PROTOCOL_OFFICIAL
    assert (len(s.train), len(s.val), len(s.test)) == (12, 5, 6)


# ----------------------------------------------------------------------------- downloads


def test_download_upstream_from_file_url(tmp_path):
    raw = gzip.decompress(D.dataset_path("perov_5", "test").read_bytes())
    src = tmp_path / "upstream.csv"
    src.write_bytes(raw)
    assert D.git_blob_id(raw) == D.UPSTREAM_BLOBS[("perov_5", "test")]
    out = D.download_upstream("perov_5", "test", tmp_path / "dl", url=src.as_uri())
    assert out.read_bytes() == raw
    # compressed sources are accepted too
    gz = tmp_path / "upstream.csv.gz"
    gz.write_bytes(gzip.compress(raw))
    out.unlink()
    assert D.download_upstream("perov_5", "test", tmp_path / "dl", url=gz.as_uri()).read_bytes() == raw


def test_download_upstream_rejects_wrong_content(tmp_path):
    src = tmp_path / "tampered.csv"
    src.write_bytes(b"material_id,cif\n1,x\n")
    with pytest.raises(D.DataError, match="does not match"):
        D.download_upstream("perov_5", "train", tmp_path / "dl", url=src.as_uri())
    assert not (tmp_path / "dl" / "perov_5" / "train.csv").exists()
    assert not list((tmp_path / "dl" / "perov_5").glob("*.part"))


def test_structure_to_data_canonicalises(carbon_test):
    from pymatgen.core.operations import SymmOp

    s = carbon_test[3].structure.copy()
    s.apply_operation(SymmOp.from_axis_angle_and_translation([1, 2, 3], 33.0))  # rotated copy
    data = structure_to_data(s)  # canonical=True: orientation fixed again
    assert StructureMatcher().fit(s, data_to_structure(data))
    np.testing.assert_allclose(data.lattice_params[0].numpy(), carbon_test.lattice_params[3], rtol=1e-4)


def test_replicate_seeds_share_the_holdout_slice():
    """``--seed K --holdout-seed 0`` changes the training randomness, not which crystals are held out."""
    from tgdmat.cli.main import build_parser, train_config
    from tgdmat.config import Config, ConfigError, TrainConfig

    base = ["train", "--dataset", "perov_5", "--task", "csp", "--out", "x"]
    rep = train_config(build_parser().parse_args(base + ["--seed", "2", "--holdout-seed", "0"])).train
    own = train_config(build_parser().parse_args(base + ["--seed", "2"])).train
    assert (rep.seed, rep.split_seed, own.split_seed) == (2, 0, 2)
    s0 = D.load_splits("perov_5", holdout_fraction=0.1, seed=TrainConfig(seed=0).split_seed, progress=False)
    s_rep = D.load_splits("perov_5", holdout_fraction=0.1, seed=rep.split_seed, progress=False)
    assert s_rep.val.material_ids == s0.val.material_ids
    cfg = Config.from_json(Config(train=rep).to_json())  # survives the checkpoint's JSON
    assert D.model_splits(cfg, progress=False).val.material_ids == s0.val.material_ids  # what every reader uses
    assert cfg.train.split_seed == 0 and cfg.train.seed == 2
    with pytest.raises(ConfigError, match="holdout_seed"):
        TrainConfig(holdout_seed=-1)
