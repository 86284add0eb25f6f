"""CrystalNN bond graphs of crystals, built as CDVAE built them, and their on-disk cache.

**Graphs** (CDVAE ``cdvae/common/data_utils.py``: ``build_crystal``, ``build_crystal_graph``,
``get_pbc_distances``). Each crystal is Niggli-reduced and its lattice rebuilt from its six
parameters (``Lattice.from_parameters``), fractional coordinates kept. Bonds are CrystalNN
neighbours (``CrystalNN(distance_cutoffs=None, x_diff_weight=-1, porous_adjustment=False)``), each
with the periodic image ``n`` of the neighbour, made symmetric (``j→i`` with ``n``, ``i→j`` with
``−n``: the edge set of pymatgen's ``StructureGraph`` + CDVAE). The edge vector of message ``j→i``
is
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np


GRAPH_FORMAT = 1
"""Bumped when the graph recipe changes (invalidates cached graphs)."""


class GraphBuildError(ValueError):
    """CrystalNN could not build the bond graph of one input structure."""


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


def structure_key(structure, niggli: bool) -> str:
    h = hashlib.sha256(f"graph-v{GRAPH_FORMAT}-niggli{int(niggli)}".encode())
    h.update(np.asarray(structure.atomic_numbers, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(structure.frac_coords, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(structure.lattice.matrix, dtype=np.float64).tobytes())
    return h.hexdigest()


def graph_job(args: tuple[np.ndarray, np.ndarray, np.ndarray, bool]) -> CrystalGraph | str:
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
