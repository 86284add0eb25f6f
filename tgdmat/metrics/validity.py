"""Structural and compositional validity of crystals, as CDVAE/DiffCSP/TGDMat measure it.

* **Structural** (CDVAE's ``structure_validity``): a crystal is valid when its cell volume is at
  least ``min_volume`` (0.1 Å^3) and every interatomic distance, periodic images included, is at
  least ``cutoff`` (0.5 Å):  min_{i,j,T: (i,T) != (j,0)} ‖x_i − (x_j + T)‖ ≥ 0.5 Å, with lattice
  translations T. CDVAE uses pymatgen's minimum-image ``distance_matrix`` and so never compares
  an atom with its *own* images (a lattice vector shorter than 0.5 Å); we do by default
  (``include_self_images=True``), which changes nothing for any shipped crystal and only rejects
  degenerate cells. Non-finite lattices/coordinates and ``None`` (a failed decode) are invalid.
* **Compositional** (CDVAE's ``smact_validity``, ported to the SMACT 4 API): the reduced
  composition ``{e_i: n_i}`` (counts divided by their gcd) is valid when some choice of
  oxidation states q_i (one per element, from the ``smact14`` table by default — the table of
  the SMACT 2.x release the papers used) is charge neutral, Σ_i n_i q_i = 0 (``neutral_ratios``
  with ``stoichs=[(n_i,)]``, ``threshold=max n_i``), and passes the Pauling electronegativity
  test (every cation less electronegative than every anion). Single-element compositions are
  valid, and so are all-metal ones (``include_alloys=True``). Where an element has no Pauling
  electronegativity CDVAE's test raised ``TypeError`` and counted the combination as passing;
  we keep that behaviour (SMACT 4's own ``pauling_test`` returns ``False`` there instead).

With these choices the shipped Perov-5 test split is 98.6 % compositionally valid and
Carbon-24 100 %, the figures the papers' tables imply.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: names accepted by ``oxidation_states_set`` -> attribute of ``smact.Element``
OXIDATION_STATE_SETS = {
    "smact14": "oxidation_states_smact14",
    "icsd16": "oxidation_states_icsd16",
    "icsd24": "oxidation_states_icsd24",
    "pymatgen_sp": "oxidation_states_sp",
    "wiki": "oxidation_states_wiki",
}


@dataclass(frozen=True)
class Validity:
    """Validity of one crystal. ``valid`` = structural and compositional."""

    structural: bool
    compositional: bool

    @property
    def valid(self) -> bool:
        return self.structural and self.compositional


def structure_validity(
    structure,
    cutoff: float = 0.5,
    min_volume: float = 0.1,
    include_self_images: bool = True,
) -> bool:
    """Whether ``structure`` (a pymatgen ``Structure`` or ``None``) is structurally valid.

    Valid iff the lattice and coordinates are finite, ``volume >= min_volume`` (Å^3) and no two
    atoms, periodic images included, are closer than ``cutoff`` (Å). A distance exactly equal
    to ``cutoff`` is valid (CDVAE tests ``min < cutoff``).

    Distances are found by visiting only the periodic images that can be closer than
    ``cutoff`` (:func:`_min_distance`), so a huge cell from an untrained model (``1e5`` Å edges,
    where a cell-list search would allocate terabytes) is cheap; a needle-thin cell (``1e-8 ×
    1e4 × 1e4`` Å) is first LLL-reduced, and a lattice vector shorter than ``cutoff`` (with self
    images) or than 0.01 Å (without) makes it invalid at once.
    """
    if structure is None:
        return False
    matrix = np.asarray(structure.lattice.matrix, dtype=float)
    frac = np.asarray(structure.frac_coords, dtype=float)
    if not (np.isfinite(matrix).all() and np.isfinite(frac).all()):
        return False
    volume = abs(float(np.linalg.det(matrix)))
    if not volume >= min_volume:
        return False
    if len(structure) == 0:
        return False
    if _image_count(matrix, cutoff) > 1000:  # a thin cell: search the LLL-reduced basis instead
        from pymatgen.core import Lattice

        try:
            reduced = Lattice(matrix).get_lll_reduced_lattice()
        except Exception:  # noqa: BLE001 - a lattice LLL cannot reduce is not a crystal
            return False
        if float(min(reduced.abc)) < (cutoff if include_self_images else 0.01):
            return False
        frac = (frac @ matrix) @ np.linalg.inv(reduced.matrix)
        matrix = np.asarray(reduced.matrix, dtype=float)
    return _min_distance(frac, matrix, include_self_images, cutoff) >= cutoff


def _reach(lattice: np.ndarray, cutoff: float) -> np.ndarray:
    """Image window per axis: a vector ``x·L`` shorter than ``cutoff`` has ``|x_k| ≤ cutoff / h_k``."""
    volume = abs(np.linalg.det(lattice))
    areas = np.linalg.norm(np.cross(lattice[[1, 2, 0]], lattice[[2, 0, 1]]), axis=1)
    return np.ceil(cutoff * areas / volume).astype(int) + 1


def _image_count(lattice: np.ndarray, cutoff: float) -> float:
    return float(np.prod(2.0 * _reach(lattice, cutoff) + 1))


def _min_distance(frac: np.ndarray, lattice: np.ndarray, include_self_images: bool, cutoff: float) -> float:
    """Smallest atom–atom (or atom–own-image) distance, exact whenever it is below ``cutoff``.

    Only the images ``n_k`` within :func:`_reach` of each pair's fractional difference are
    visited (``h_k`` the spacing of lattice planes ``k``), so the cost does not grow with the size
    of the cell, unlike a cell-list search.
    """
    frac = frac % 1.0
    reach = _reach(lattice, cutoff)
    grids = np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij")
    images = np.stack([g.ravel() for g in grids], axis=1).astype(float)  # [M, 3]
    zero = np.all(images == 0, axis=1)
    best = np.inf
    for i in range(len(frac)):
        diff = frac[i:] - frac[i]  # pairs (i, j >= i)
        dist = np.linalg.norm((diff[:, None, :] + images[None, :, :]) @ lattice, axis=-1)  # [n-i, M]
        dist[0, zero] = np.inf  # an atom and itself
        if not include_self_images:
            dist[0, :] = np.inf
        best = min(best, float(dist.min()))
    return best


def _element_counts(composition) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(symbols, gcd-reduced integer counts) of a Structure, Composition, formula or mapping."""
    from pymatgen.core import Composition, Structure

    if isinstance(composition, Structure):
        comp = composition.composition
    elif isinstance(composition, Composition):
        comp = composition
    elif isinstance(composition, (str, Mapping)):
        comp = Composition(composition)
    else:
        raise TypeError(
            f"smact_validity expects a Structure, Composition, formula str or element->count "
            f"mapping, got {type(composition).__name__}"
        )
    amounts = comp.get_el_amt_dict()  # oxidation states stripped
    if not amounts:
        raise ValueError("smact_validity: empty composition")
    symbols = tuple(sorted(amounts))
    counts = []
    for s in symbols:
        a = amounts[s]
        if abs(a - round(a)) > 1e-6 or round(a) <= 0:
            raise ValueError(
                f"smact_validity needs whole positive atom counts; {s} has {a} in {comp.formula!r}"
            )
        counts.append(int(round(a)))
    g = math.gcd(*counts)
    return symbols, tuple(c // g for c in counts)


def _pauling_ok(ox_states: Sequence[int], enegs: Sequence[float | None]) -> bool:
    """CDVAE/SMACT-2 electronegativity test: cations (q > 0) less electronegative than anions.

    Pairs are visited in order; a pair of opposite charges with a missing electronegativity
    ends the test as *passed* (CDVAE caught the ``TypeError`` this raised and accepted).
    """
    for (q1, e1), (q2, e2) in itertools.combinations(zip(ox_states, enegs), 2):
        if q1 > 0 and q2 < 0:
            if e1 is None or e2 is None:
                return True
            if e1 >= e2:
                return False
        elif q1 < 0 and q2 > 0:
            if e1 is None or e2 is None:
                return True
            if e1 <= e2:
                return False
    return True


@lru_cache(maxsize=65536)
def _smact_valid_cached(
    symbols: tuple[str, ...],
    counts: tuple[int, ...],
    use_pauling_test: bool,
    include_alloys: bool,
    oxidation_states_set: str,
) -> bool:
    import smact

    if len(set(symbols)) == 1:
        return True
    if include_alloys and all(s in smact.metals for s in symbols):
        return True
    attr = OXIDATION_STATE_SETS[oxidation_states_set]
    try:
        elements = [smact.Element(s) for s in symbols]
    except (NameError, KeyError, ValueError):
        return False  # an element SMACT has no data for cannot be charge balanced
    ox_combos = [getattr(e, attr) or [] for e in elements]
    if any(len(ox) == 0 for ox in ox_combos):
        return False
    enegs = [e.pauling_eneg for e in elements]
    stoichs = [(c,) for c in counts]
    threshold = max(counts)
    for ox_states in itertools.product(*ox_combos):
        ratios = smact.neutral_ratios(ox_states, stoichs=stoichs, threshold=threshold)
        if ratios and (not use_pauling_test or _pauling_ok(ox_states, enegs)):
            return True
    return False


def smact_validity(
    composition,
    use_pauling_test: bool = True,
    include_alloys: bool = True,
    oxidation_states_set: str = "smact14",
) -> bool:
    """Compositional validity (charge neutrality + electronegativity), CDVAE's recipe.

    ``composition``: a pymatgen ``Structure`` or ``Composition``, a formula string, or an
    element -> count mapping; ``None`` is invalid. ``oxidation_states_set`` is one of
    ``OXIDATION_STATE_SETS`` (``"smact14"`` reproduces the published numbers).
    """
    if composition is None:
        return False
    if oxidation_states_set not in OXIDATION_STATE_SETS:
        raise ValueError(
            f"unknown oxidation_states_set {oxidation_states_set!r}; "
            f"choose one of {sorted(OXIDATION_STATE_SETS)}"
        )
    symbols, counts = _element_counts(composition)
    return _smact_valid_cached(symbols, counts, use_pauling_test, include_alloys, oxidation_states_set)


def crystal_validity(structure, **kwargs) -> Validity:
    """:class:`Validity` of one structure (``None`` is invalid on both counts).

    Keyword arguments go to :func:`structure_validity` (``cutoff``, ``min_volume``,
    ``include_self_images``) or :func:`smact_validity` (the rest).
    """
    s_keys = {"cutoff", "min_volume", "include_self_images"}
    s_kw = {k: v for k, v in kwargs.items() if k in s_keys}
    c_kw = {k: v for k, v in kwargs.items() if k not in s_keys}
    if structure is None:
        return Validity(False, False)
    return Validity(structure_validity(structure, **s_kw), smact_validity(structure, **c_kw))


def validity_arrays(structures: Iterable, progress: bool = False, **kwargs) -> dict[str, np.ndarray]:
    """Boolean arrays ``structural``, ``compositional``, ``valid`` (each shape ``[N]``)."""
    from tqdm.auto import tqdm

    structures = list(structures)
    s = np.zeros(len(structures), dtype=bool)
    c = np.zeros(len(structures), dtype=bool)
    for i, st in enumerate(tqdm(structures, desc="validity", disable=not progress, leave=False)):
        v = crystal_validity(st, **kwargs)
        s[i], c[i] = v.structural, v.compositional
    return {"structural": s, "compositional": c, "valid": s & c}


def validity_rates(structures: Iterable, **kwargs) -> dict[str, float]:
    """Percentages ``struct_valid_pct``, ``comp_valid_pct``, ``valid_pct`` over all inputs."""
    a = validity_arrays(structures, **kwargs)
    n = len(a["valid"])
    if n == 0:
        raise ValueError("validity_rates: no structures given")
    return {
        "struct_valid_pct": float(100.0 * a["structural"].mean()),
        "comp_valid_pct": float(100.0 * a["compositional"].mean()),
        "valid_pct": float(100.0 * a["valid"].mean()),
        "n": n,
    }
