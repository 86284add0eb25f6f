"""Crystal data: CDVAE-format CSVs → canonical crystals, a processed cache, splits, downloads.

The benchmark data sets (Perov-5, Carbon-24, MP-20) are CSV files in the format of CDVAE
(Xie et al., ICLR 2022): an unnamed index column, ``material_id``, ``cif`` and property columns.
:func:`load_csv` reads one such file (gzipped or plain) into a :class:`CrystalDataset`.

**Canonicalisation** (the recipe of CDVAE/DiffCSP/TGDMat, applied to every row):

1. parse the CIF with pymatgen (``Structure.from_str(cif, fmt="cif")``), no primitive reduction;
2. Niggli-reduce the lattice (``Structure.get_reduced_structure("niggli")``);
3. rebuild the lattice from its six parameters (``Lattice.from_parameters(a, b, c, α, β, γ)``),
   which fixes its orientation (pymatgen's convention: **c** along z, **a** in the xz plane) so that
   equal cells get equal matrices, and keep the fractional coordinates;
4. wrap fractional coordinates into [0, 1).

The atoms keep the CIF's site order. Structures must be ordered (one element per site, full
occupancy) with elements Z = 1..100 (:data:`MAX_ATOMIC_NUMBER`).

**Processed cache.** Parsing thousands of CIFs takes tens of seconds, so the parsed arrays are
cached as ``.npz`` (no pickles) plus a JSON side-car, keyed by the sha256 of the source file and
the cache format: a changed file is parsed again, an unchanged one loads in milliseconds.

**Splits.** :func:`load_splits` implements this project's protocol — train on the official
``val`` split minus a seeded held-out slice (used for model selection), report on the official
``test`` split — and switches to the official train/val/test protocol when a user passes the
upstream ``train.csv`` (see :func:`download_upstream`).
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import shutil
import tempfile
import urllib.request
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tgdmat.crystal import canonicalise
from tgdmat.paths import cache_dir, data_dir, sha256_file

MAX_ATOMIC_NUMBER = 100
"""Largest atomic number the model knows (atom types are Z = 1..100, as in CDVAE/DiffCSP)."""

CACHE_FORMAT = 1
"""Bumped whenever the processed-cache layout or the canonicalisation recipe changes."""


@dataclass(frozen=True)
class DatasetInfo:
    """What tgdmat knows about a benchmark data set."""

    name: str
    properties: tuple[str, ...]
    """Property columns read from the CSV; the first is the conditioning/evaluation target."""
    description: str
    max_atoms: int


DATASETS: dict[str, DatasetInfo] = {
    "perov_5": DatasetInfo(
        "perov_5", ("heat_ref",), "Perov-5: ABX3 perovskites, 5 atoms per cell (Castelli 2012)", 5
    ),
    "carbon_24": DatasetInfo(
        "carbon_24",
        ("energy_per_atom",),
        "Carbon-24: carbon allotropes at 10 GPa, 6-24 atoms per cell (Pickard 2020)",
        24,
    ),
    "mp_20": DatasetInfo(
        "mp_20",
        ("formation_energy_per_atom", "band_gap", "e_above_hull"),
        "MP-20: Materials Project crystals with at most 20 atoms per cell",
        20,
    ),
}


class DataError(ValueError):
    """A data file or one of its rows cannot be used; the message names file, row and field."""


# --------------------------------------------------------------------------------------------
# Records and the dataset container
# --------------------------------------------------------------------------------------------


@dataclass
class CrystalRecord:
    """One canonical crystal: its id, pymatgen ``Structure``, properties and CSV row (1-based)."""

    material_id: str
    structure: "Structure"  # noqa: F821 (pymatgen, imported lazily)
    properties: dict[str, float]
    row: int


@dataclass
class SkippedRow:
    row: int
    material_id: str
    reason: str


@dataclass
class CrystalDataset(Sequence):
    """A list of canonical crystals stored as flat arrays (fast to cache, slice and batch).

    Arrays (``n`` crystals, ``N = Σ num_atoms`` atoms):

    * ``atom_types``: ``[N]`` int64, atomic numbers Z;
    * ``frac_coords``: ``[N, 3]`` float64 in [0, 1);
    * ``lattice``: ``[n, 3, 3]`` float64, rows are the lattice vectors **a**, **b**, **c** (Å);
    * ``lattice_params``: ``[n, 6]`` float64, (a, b, c) in Å and (α, β, γ) in degrees;
    * ``num_atoms``: ``[n]`` int64; ``rows``: ``[n]`` 1-based CSV record numbers;
    * ``properties``: name → ``[n]`` float64.

    Indexing returns a :class:`CrystalRecord` whose ``Structure`` is built on demand.
    """

    name: str
    split: str
    path: str
    material_ids: list[str]
    rows: np.ndarray
    num_atoms: np.ndarray
    atom_types: np.ndarray
    frac_coords: np.ndarray
    lattice: np.ndarray
    lattice_params: np.ndarray
    properties: dict[str, np.ndarray]
    skipped: list[SkippedRow] = field(default_factory=list)
    source_sha256: str = ""

    def __post_init__(self) -> None:
        self.offsets = np.concatenate([[0], np.cumsum(self.num_atoms)]).astype(np.int64)

    # -- sequence protocol -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.material_ids)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return self.subset(range(*i.indices(len(self))))
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return CrystalRecord(
            material_id=self.material_ids[i],
            structure=self.structure(i),
            properties={k: float(v[i]) for k, v in self.properties.items()},
            row=int(self.rows[i]),
        )

    def __iter__(self) -> Iterator[CrystalRecord]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return (
            f"CrystalDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"atoms={int(self.num_atoms.sum())}, properties={list(self.properties)}, "
            f"skipped={len(self.skipped)})"
        )

    # -- views -------------------------------------------------------------------------------
    def atoms(self, i: int) -> slice:
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    def structure(self, i: int):
        """The canonical pymatgen ``Structure`` of crystal ``i``."""
        from tgdmat.crystal import arrays_to_structure

        sl = self.atoms(i)
        return arrays_to_structure(self.atom_types[sl], self.frac_coords[sl], self.lattice[i])

    def structures(self) -> list:
        return [self.structure(i) for i in range(len(self))]

    def subset(self, indices, split: str | None = None) -> "CrystalDataset":
        """A new dataset holding the crystals at ``indices`` (in that order)."""
        idx = np.asarray(list(indices), dtype=np.int64)
        atom_idx = (
            np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in idx])
            if len(idx)
            else np.zeros(0, dtype=np.int64)
        )
        return CrystalDataset(
            name=self.name,
            split=split or self.split,
            path=self.path,
            material_ids=[self.material_ids[i] for i in idx],
            rows=self.rows[idx],
            num_atoms=self.num_atoms[idx],
            atom_types=self.atom_types[atom_idx],
            frac_coords=self.frac_coords[atom_idx],
            lattice=self.lattice[idx],
            lattice_params=self.lattice_params[idx],
            properties={k: v[idx] for k, v in self.properties.items()},
            skipped=[],
            source_sha256=self.source_sha256,
        )

    # -- model tensors -----------------------------------------------------------------------
    def to_data(self, i: int):
        """Crystal ``i`` as a torch-geometric ``Data`` (see :func:`tgdmat.crystal.make_data`)."""
        from tgdmat.crystal import make_data

        sl = self.atoms(i)
        props = np.array([self.properties[k][i] for k in self.properties], dtype=np.float32)
        return make_data(
            self.atom_types[sl],
            self.frac_coords[sl],
            self.lattice[i],
            properties=props,
            crystal_id=i,
        )

    def graphs(self) -> list:
        """Every crystal as a torch-geometric ``Data``."""
        return [self.to_data(i) for i in range(len(self))]

    def loader(self, batch_size: int = 64, shuffle: bool = False, seed: int = 0, **kwargs):
        """A torch-geometric ``DataLoader`` over :meth:`graphs` (seeded shuffling)."""
        import torch
        from torch_geometric.loader import DataLoader

        gen = torch.Generator().manual_seed(seed) if shuffle else None
        return DataLoader(self.graphs(), batch_size=batch_size, shuffle=shuffle, generator=gen, **kwargs)

    def batch(self, indices=None):
        """A torch-geometric ``Batch`` of the crystals at ``indices`` (all by default)."""
        from tgdmat.crystal import collate

        indices = range(len(self)) if indices is None else indices
        return collate([self.to_data(i) for i in indices])


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def _where(path: str, row: int | None, material_id: str | None, field_name: str | None) -> str:
    parts = [f"file {path}"]
    if row is not None:
        parts.append(f"row {row}")
    if material_id is not None:
        parts.append(f"material_id {material_id!r}")
    if field_name is not None:
        parts.append(f"field {field_name!r}")
    return ", ".join(parts)


def _parse_row(cif: str, path: str, row: int, material_id: str):
    """CIF text → canonical arrays; raises :class:`DataError` naming file, row, id and field."""
    from pymatgen.core import Structure

    where = _where(path, row, material_id, "cif")
    if not isinstance(cif, str) or not cif.strip():
        raise DataError(f"{where}: the CIF is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_str(cif, fmt="cif")
    except Exception as exc:  # pymatgen raises many types for broken CIFs
        raise DataError(f"{where}: cannot parse the CIF ({type(exc).__name__}: {exc})") from exc
    if len(structure) == 0:
        raise DataError(f"{where}: the CIF holds no atoms")
    if not structure.is_ordered:
        raise DataError(f"{where}: the structure is disordered (partial occupancy); tgdmat needs one element per site")
    numbers = []
    for site in structure:
        sp = site.specie
        z = getattr(sp, "Z", None)
        if z is None:
            raise DataError(f"{where}: site species {sp!s} is not a chemical element")
        if not 1 <= z <= MAX_ATOMIC_NUMBER:
            raise DataError(
                f"{where}: element {sp.symbol} (Z={z}) is beyond the supported table Z=1..{MAX_ATOMIC_NUMBER}"
            )
        numbers.append(z)
    if structure.volume <= 0 or not np.isfinite(structure.volume):
        raise DataError(f"{where}: the cell volume is not positive")
    canon = canonicalise(structure)
    return (
        np.array([s.specie.Z for s in canon], dtype=np.int64),
        canon.frac_coords.astype(np.float64),
        canon.lattice.matrix.astype(np.float64),
        np.array(canon.lattice.parameters, dtype=np.float64),
    )


def _read_table(path: Path):
    import pandas as pd

    if path.stat().st_size == 0:
        raise DataError(f"file {path}: the file is empty")
    try:
        df = pd.read_csv(path, dtype={"material_id": str}, keep_default_na=True)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"file {path}: the file is empty") from exc
    except Exception as exc:
        raise DataError(f"file {path}: not a readable CSV ({type(exc).__name__}: {exc})") from exc
    if len(df) == 0:
        raise DataError(f"file {path}: the file has a header but no rows")
    return df


def detect_dataset(path: str | os.PathLike, columns: Sequence[str] | None = None) -> str | None:
    """Guess the data set from the folder name (``perov_5/test.csv``) or, failing that, the columns."""
    path = Path(path)
    for part in reversed(path.parts[:-1]):
        if part in DATASETS:
            return part
    stem = path.name.split(".")[0]
    for name in DATASETS:
        if stem.startswith(name):
            return name
    if columns is not None:
        cols = set(columns)
        for name, info in DATASETS.items():
            if set(info.properties) <= cols:
                return name
    return None


def _cache_paths(source_sha: str, tag: str) -> tuple[Path, Path]:
    key = hashlib.sha256(f"{source_sha}|{tag}|format{CACHE_FORMAT}".encode()).hexdigest()[:24]
    folder = cache_dir("datasets")
    return folder / f"{key}.npz", folder / f"{key}.json"


def load_csv(
    path: str | os.PathLike,
    dataset: str | None = None,
    split: str | None = None,
    properties: Sequence[str] | None = None,
    skip_bad: bool = False,
    cache: bool = True,
    progress: bool = True,
) -> CrystalDataset:
    """Read a CDVAE-format CSV (``.csv`` or ``.csv.gz``) into a :class:`CrystalDataset`.

    Args:
        path: the CSV file.
        dataset: ``"perov_5"``, ``"carbon_24"``, ``"mp_20"`` or ``None`` to detect it from the
            path or columns. It decides which property columns are required.
        split: a label stored on the result (default: the file name's stem).
        properties: property columns to read instead of the data set's defaults.
        skip_bad: if True, rows that cannot be used are skipped and listed in ``.skipped``
            (and a warning says how many); if False (default) the first bad row raises
            :class:`DataError` naming the file, row, ``material_id`` and field.
        cache: read/write the processed cache keyed by the file's sha256.
        progress: show a progress bar while parsing.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"file {path}: does not exist")
    split = split or path.name.split(".")[0]
    source_sha = sha256_file(path)
    # The cache key needs the property list, which may depend on the columns: peek cheaply.
    tag_dataset = dataset or detect_dataset(path)
    tag = json.dumps([tag_dataset, list(properties) if properties else None, bool(skip_bad)])
    npz_path, json_path = _cache_paths(source_sha, tag)
    if cache and npz_path.exists() and json_path.exists():
        try:
            return _load_cache(npz_path, json_path, path, split)
        except Exception:  # a corrupt cache is rebuilt, never trusted
            pass

    df = _read_table(path)
    dataset = dataset or detect_dataset(path, df.columns)
    if properties is None:
        if dataset is None:
            raise DataError(
                f"file {path}: cannot tell which data set this is (pass dataset= one of {sorted(DATASETS)} "
                "or properties=[...])"
            )
        if dataset not in DATASETS:
            raise DataError(f"file {path}: unknown data set {dataset!r}; known: {sorted(DATASETS)}")
        properties = DATASETS[dataset].properties
    properties = list(properties)
    for col in ["material_id", "cif", *properties]:
        if col not in df.columns:
            raise DataError(
                f"file {path}: missing column {col!r} (columns present: {[c for c in df.columns if c]})"
            )

    from tqdm.auto import tqdm

    ids, rows, natoms, types, fracs, lats, params = [], [], [], [], [], [], []
    props: dict[str, list[float]] = {p: [] for p in properties}
    skipped: list[SkippedRow] = []
    seen: dict[str, int] = {}
    records = df[["material_id", "cif", *properties]].itertuples(index=False, name=None)
    for i, (mid, cif, *values) in enumerate(
        tqdm(records, total=len(df), desc=f"parsing {path.name}", disable=not progress, leave=False)
    ):
        row = i + 1
        try:
            if not isinstance(mid, str) or not mid.strip():
                raise DataError(f"{_where(str(path), row, None, 'material_id')}: the material_id is empty")
            if mid in seen:
                raise DataError(
                    f"{_where(str(path), row, mid, 'material_id')}: duplicate material_id (also row {seen[mid]})"
                )
            for name, value in zip(properties, values):
                if value is None or not np.isfinite(float(value)):
                    raise DataError(f"{_where(str(path), row, mid, name)}: the value is missing or not finite")
            z, frac, lat, par = _parse_row(cif, str(path), row, mid)
        except (DataError, TypeError, ValueError) as exc:
            if not isinstance(exc, DataError):
                exc = DataError(f"{_where(str(path), row, mid if isinstance(mid, str) else None, None)}: {exc}")
            if not skip_bad:
                raise exc
            skipped.append(SkippedRow(row, str(mid), str(exc)))
            continue
        seen[mid] = row
        ids.append(mid)
        rows.append(row)
        natoms.append(len(z))
        types.append(z)
        fracs.append(frac)
        lats.append(lat)
        params.append(par)
        for name, value in zip(properties, values):
            props[name].append(float(value))

    if skipped:
        warnings.warn(
            f"{path}: skipped {len(skipped)} of {len(df)} rows (see .skipped); first: {skipped[0].reason}",
            stacklevel=2,
        )
    if not ids:
        raise DataError(f"file {path}: no usable rows ({len(skipped)} skipped)")
    ds = CrystalDataset(
        name=dataset or "custom",
        split=split,
        path=str(path),
        material_ids=ids,
        rows=np.array(rows, dtype=np.int64),
        num_atoms=np.array(natoms, dtype=np.int64),
        atom_types=np.concatenate(types),
        frac_coords=np.concatenate(fracs),
        lattice=np.stack(lats),
        lattice_params=np.stack(params),
        properties={k: np.array(v, dtype=np.float64) for k, v in props.items()},
        skipped=skipped,
        source_sha256=source_sha,
    )
    if cache:
        _save_cache(ds, npz_path, json_path)
    return ds


def _save_cache(ds: CrystalDataset, npz_path: Path, json_path: Path) -> None:
    arrays = {
        "rows": ds.rows,
        "num_atoms": ds.num_atoms,
        "atom_types": ds.atom_types,
        "frac_coords": ds.frac_coords,
        "lattice": ds.lattice,
        "lattice_params": ds.lattice_params,
        "material_ids": np.array(ds.material_ids, dtype=np.str_),
    }
    for k, v in ds.properties.items():
        arrays[f"prop__{k}"] = v
    meta = {
        "format": CACHE_FORMAT,
        "name": ds.name,
        "source_sha256": ds.source_sha256,
        "properties": list(ds.properties),
        "skipped": [dataclasses.asdict(s) for s in ds.skipped],
    }
    # Write atomically: a killed process never leaves a half-written cache behind.
    with tempfile.NamedTemporaryFile(dir=npz_path.parent, suffix=".npz", delete=False) as tmp:
        np.savez(tmp, **arrays)
    os.replace(tmp.name, npz_path)
    json_tmp = json_path.with_suffix(".json.tmp")
    json_tmp.write_text(json.dumps(meta))
    os.replace(json_tmp, json_path)


def _load_cache(npz_path: Path, json_path: Path, path: Path, split: str) -> CrystalDataset:
    meta = json.loads(json_path.read_text())
    if meta.get("format") != CACHE_FORMAT:
        raise ValueError("stale cache format")
    with np.load(npz_path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return CrystalDataset(
        name=meta["name"],
        split=split,
        path=str(path),
        material_ids=arrays["material_ids"].tolist(),
        rows=arrays["rows"],
        num_atoms=arrays["num_atoms"],
        atom_types=arrays["atom_types"],
        frac_coords=arrays["frac_coords"],
        lattice=arrays["lattice"],
        lattice_params=arrays["lattice_params"],
        properties={k: arrays[f"prop__{k}"] for k in meta["properties"]},
        skipped=[SkippedRow(**s) for s in meta["skipped"]],
        source_sha256=meta["source_sha256"],
    )


# --------------------------------------------------------------------------------------------
# Shipped files, splits
# --------------------------------------------------------------------------------------------


def dataset_path(name: str, split: str, root: str | os.PathLike | None = None) -> Path:
    """Path of ``<root>/<name>/<split>.csv.gz`` (or ``.csv``); ``root`` defaults to the shipped data."""
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; known: {sorted(DATASETS)}")
    root = Path(root) if root is not None else data_dir()
    for suffix in (".csv.gz", ".csv"):
        candidate = root / name / f"{split}{suffix}"
        if candidate.exists():
            return candidate
    shipped = "" if root != data_dir() else " (tgdmat ships only the val and test splits of perov_5 and carbon_24)"
    raise DataError(
        f"no file for data set {name!r} split {split!r} under {root}{shipped}; "
        f"download it with tgdmat.data.download_upstream({name!r}, {split!r}, dest)"
    )


def load_dataset(name: str, split: str, root: str | os.PathLike | None = None, **kwargs) -> CrystalDataset:
    """Load split ``split`` (``"val"``/``"test"``/``"train"``) of data set ``name``.

    ``root`` is a folder with ``<name>/<split>.csv[.gz]`` (default: the shipped ``data/``).
    Keyword arguments go to :func:`load_csv`.
    """
    return load_csv(dataset_path(name, split, root), dataset=name, split=split, **kwargs)


@dataclass
class Splits:
    """Train / held-out / test datasets and the protocol that made them."""

    train: CrystalDataset
    val: CrystalDataset
    test: CrystalDataset
    protocol: str
    seed: int

    def __repr__(self) -> str:
        return (
            f"Splits(protocol={self.protocol!r}, train={len(self.train)}, val={len(self.val)}, "
            f"test={len(self.test)}, seed={self.seed})"
        )


PROTOCOL_VAL_AS_TRAIN = "train = official val minus a seeded held-out slice; model selection on the slice; report on official test"
PROTOCOL_OFFICIAL = "official CDVAE splits: train / val / test"


def holdout_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``range(n)`` into (train, held-out) index arrays, each sorted."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    k = max(1, int(round(fraction * n)))
    return np.sort(perm[k:]), np.sort(perm[:k])


def load_splits(
    name: str,
    holdout_fraction: float = 0.1,
    seed: int = 0,
    root: str | os.PathLike | None = None,
    train_csv: str | os.PathLike | None = None,
    **kwargs,
) -> Splits:
    """The splits of data set ``name`` under this project's protocol (see the module docstring).

    If ``train_csv`` is given, or ``root`` holds ``<name>/train.csv[.gz]``, the official protocol
    is used: train on it, select on the official ``val``, report on ``test``.
    """
    test = load_dataset(name, "test", root=root, **kwargs)
    val = load_dataset(name, "val", root=root, **kwargs)
    if train_csv is None and root is not None:
        try:
            train_csv = dataset_path(name, "train", root)
        except DataError:
            train_csv = None
    if train_csv is not None:
        train = load_csv(train_csv, dataset=name, split="train", **kwargs)
        return Splits(train=train, val=val, test=test, protocol=PROTOCOL_OFFICIAL, seed=seed)
    tr, ho = holdout_indices(len(val), holdout_fraction, seed)
    return Splits(
        train=val.subset(tr, split="train(val-holdout)"),
        val=val.subset(ho, split="holdout(val)"),
        test=test,
        protocol=PROTOCOL_VAL_AS_TRAIN,
        seed=seed,
    )


def model_splits(config, progress: bool = True, **kwargs) -> Splits:
    """The splits a model with this :class:`tgdmat.config.Config` was trained and selected on.

    Its data set, held-out fraction and split seed (:attr:`tgdmat.config.TrainConfig.split_seed`);
    ``max_train`` is the caller's to apply to ``train``. ``kwargs`` go to :func:`load_splits`.
    """
    return load_splits(config.model.dataset, holdout_fraction=config.train.holdout_fraction,
                       seed=config.train.split_seed, progress=progress, **kwargs)


# --------------------------------------------------------------------------------------------
# Upstream downloads (for Colab users; never called by tests or CI against the network)
# --------------------------------------------------------------------------------------------

CDVAE_COMMIT = "f857f598d6f6cca5dc1ea0582d228f12dcc2c2ea"
UPSTREAM_URL = "https://raw.githubusercontent.com/txie-93/cdvae/{commit}/data/{name}/{split}.csv"

UPSTREAM_BLOBS: dict[tuple[str, str], str] = {
    ("perov_5", "train"): "0769074b5d51d293b765c4371b8f55c468c9c9f2",
    ("perov_5", "val"): "4a2c8dde98347dd0e01fa83dcf3982c2abe98f9f",
    ("perov_5", "test"): "d3c5d5af4b27a2a139149f2bb73c8a3dba9d8ac1",
    ("carbon_24", "train"): "5e7ae970fbad8ddc46b6963e8cd6e425f11783a6",
    ("carbon_24", "val"): "b3e29b927883642426ca1d9632d00359b412742b",
    ("carbon_24", "test"): "9beca843fde489de1fe288b32f9e3ff710d42803",
    ("mp_20", "train"): "b1c9d498565ac2fd8d075a51ff2ef5e51ba6c21f",
    ("mp_20", "val"): "7efe4d7ebeb4f460ceaad35e5326c42111d9c9a1",
    ("mp_20", "test"): "5dc643041df53f5ce4970a79930ad262b4f07acd",
}
"""git blob ids (``git hash-object``) of the raw upstream CSVs in txie-93/cdvae at :data:`CDVAE_COMMIT`."""


def git_blob_id(data: bytes) -> str:
    """``git hash-object`` of ``data``: sha1 of ``b"blob <len>\\0" + data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def download_upstream(
    name: str,
    split: str,
    dest: str | os.PathLike,
    url: str | None = None,
    expected_blob: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``<name>/<split>.csv`` from the CDVAE repository and verify its git blob id.

    The file lands at ``<dest>/<name>/<split>.csv`` only if its content matches the expected
    blob id (a mismatch raises :class:`DataError` and leaves nothing behind), so
    ``load_splits(name, root=dest)`` then uses the official protocol. ``url`` overrides the
    source (any ``urllib`` URL, e.g. ``file://`` for a local copy).
    """
    key = (name, split)
    if expected_blob is None:
        if key not in UPSTREAM_BLOBS:
            raise DataError(f"no known upstream file for data set {name!r} split {split!r}")
        expected_blob = UPSTREAM_BLOBS[key]
    url = url or UPSTREAM_URL.format(commit=CDVAE_COMMIT, name=name, split=split)
    target = Path(dest) / name / f"{split}.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and git_blob_id(target.read_bytes()) == expected_blob:
        return target
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (user-invoked download)
        buf = io.BytesIO()
        shutil.copyfileobj(resp, buf)
    data = buf.getvalue()
    if url.endswith(".gz") or data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    got = git_blob_id(data)
    if got != expected_blob:
        raise DataError(
            f"download from {url}: git blob id {got} does not match the expected {expected_blob}; file not saved"
        )
    tmp = target.with_suffix(".csv.part")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return target
