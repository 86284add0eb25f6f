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

The search for such oxidation states (:func:`_charge_balanced_search`) is a dynamic programme
whose cost grows with the number of elements and the size of the charges, not with the product
of the numbers of oxidation states (CDVAE's enumeration: seconds for 10 elements, forever for
19); it returns exactly the enumeration's answer (:func:`_smact_valid_enumerate`, kept for the
tests). :func:`validity_arrays` also bounds the time spent on one structure (``time_limit_s``):
a structure whose checks run past it is reported as *skipped* and counted invalid.
"""
from __future__ import annotations

import contextvars
import itertools
import math
import time
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
    """Validity of one crystal. ``valid`` = structural and compositional.

    ``skipped``: the time limit ran out before validity was established; the check that was
    running and any not yet started are then ``False``.
    """

    structural: bool
    compositional: bool
    skipped: bool = False

    @property
    def valid(self) -> bool:
        return self.structural and self.compositional


class _Timeout(Exception):
    """A validity check ran past the deadline of :func:`crystal_validity` (internal)."""


#: perf_counter() time by which the current structure's checks must finish (None: no limit)
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("validity_deadline", default=None)


def _check_deadline() -> None:
    """Raise :class:`_Timeout` when the current structure's deadline has passed."""
    deadline = _DEADLINE.get()
    if deadline is not None and time.perf_counter() > deadline:
        raise _Timeout


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
        _check_deadline()
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


_INF = math.inf


def _pauling_step(state, q: int, e: float | None):
    """Prepend an element of charge ``q`` and electronegativity ``e`` to a Pauling summary.

    :func:`_pauling_ok` visits the pairs (i, j), i < j, row by row; the first *decisive* pair
    (opposite charges and either a missing electronegativity -> pass, or cation ≥ anion ->
    fail) settles it, and none settles it as a pass. Reading the elements from the last to the
    first, the row of a new first element i is decided by the elements after it, and its
    decisive pair, if any, comes before every pair of later rows. So the suffix i..k-1 needs
    only the summary ``(failed, cmax, cnone, amin, anone)``:

    * ``failed``: the suffix's own pairs end the test as failed;
    * ``cmax``: the largest electronegativity of the cations before the suffix's first cation
      without one (-inf if none); ``cnone``: the suffix has a cation without one;
    * ``amin``, ``anone``: the same for anions (smallest; +inf if none).

    A cation with electronegativity e then decides its row as a fail when ``amin <= e`` (an
    anion as electronegative comes before any anion without a value), else as a pass when
    ``anone``; a cation without a value passes as soon as the suffix holds any anion. Anions
    mirror this with ``cmax >= e``. Neutral elements (q = 0) take part in no pair.
    """
    failed, cmax, cnone, amin, anone = state
    if q == 0:
        return state
    if q > 0:
        if e is None:
            row = True if anone or amin < _INF else None
            cmax, cnone = -_INF, True
        else:
            row = False if amin <= e else (True if anone else None)
            cmax = max(cmax, e)
    else:
        if e is None:
            row = True if cnone or cmax > -_INF else None
            amin, anone = _INF, True
        else:
            row = False if cmax >= e else (True if cnone else None)
            amin = min(amin, e)
    return (failed if row is None else not row), cmax, cnone, amin, anone


def _charge_balanced_search(
    counts: Sequence[int],
    ox_combos: Sequence[Sequence[int]],
    enegs: Sequence[float | None],
    use_pauling_test: bool,
) -> bool:
    """Whether some q ∈ ox_combos[0] × … × ox_combos[k-1] has Σ_i n_i q_i = 0 and (with
    ``use_pauling_test``) passes :func:`_pauling_ok` — the answer of :func:`_enumerate_search`.

    Dynamic programme over the elements from the last to the first. After elements i..k-1 it
    keeps, for each Pauling summary of that suffix (:func:`_pauling_step`; a single dummy
    summary without the test), the set of reachable partial charges s = Σ_{j≥i} n_j q_j as the
    bits of an integer (bit s + B, B = Σ_j n_j max|q_j|). Choosing q for element i maps the
    summary through :func:`_pauling_step` and shifts the set by n_i q. Partial charges the
    remaining elements cannot cancel, s ∉ [-Σ_{j<i} n_j max q_j, -Σ_{j<i} n_j min q_j], are
    dropped, and so are failed summaries no later pass can override (no element without an
    electronegativity left to choose, none in the summary). The answer: a summary that has not
    failed reaches s = 0 after the first element.

    Cost: a summary takes at most (k+1)² · 8 values (``cmax``, ``amin`` are electronegativities
    of the k elements or ∓inf), so the work is O(k · 8(k+1)² · max_i |ox_i| · B / 64) word
    operations — polynomial, with or without missing electronegativities; in practice a few
    summaries per level. :func:`_check_deadline` is consulted once per summary.
    """
    k = len(counts)
    lo, hi = [0], [0]  # lo[i], hi[i]: extreme total charges of elements 0..i-1
    unknown_left = [False]  # unknown_left[i]: some element 0..i-1 lacks an electronegativity
    for n, ox, e in zip(counts, ox_combos, enegs):
        lo.append(lo[-1] + n * min(ox))
        hi.append(hi[-1] + n * max(ox))
        unknown_left.append(unknown_left[-1] or e is None)
    offset = sum(n * max(abs(q) for q in ox) for n, ox in zip(counts, ox_combos))
    start = (False, -_INF, False, _INF, False) if use_pauling_test else None
    states = {start: 1 << offset}
    for i in reversed(range(k)):
        window = ((1 << (hi[i] - lo[i] + 1)) - 1) << (offset - hi[i])
        following: dict = {}
        for state, sums in states.items():
            _check_deadline()
            for q in ox_combos[i]:
                new = None
                if use_pauling_test:
                    new = _pauling_step(state, q, enegs[i])
                    failed, _, cnone, _, anone = new
                    if failed and not (cnone or anone or unknown_left[i]):
                        continue  # no pass can override this fail any more
                shift = counts[i] * q
                moved = (sums << shift if shift >= 0 else sums >> -shift) & window
                if moved:
                    following[new] = following.get(new, 0) | moved
        states = following
        if not states:
            return False
    return any(not (use_pauling_test and state[0]) for state in states)


def _enumerate_search(
    counts: Sequence[int],
    ox_combos: Sequence[Sequence[int]],
    enegs: Sequence[float | None],
    use_pauling_test: bool,
) -> bool:
    """CDVAE's exhaustive search over every combination of oxidation states (reference for the
    tests: its cost is the product of the numbers of states)."""
    import smact

    stoichs = [(c,) for c in counts]
    threshold = max(counts)
    for ox_states in itertools.product(*ox_combos):
        ratios = smact.neutral_ratios(ox_states, stoichs=stoichs, threshold=threshold)
        if ratios and (not use_pauling_test or _pauling_ok(ox_states, enegs)):
            return True
    return False


def _smact_valid(
    symbols: tuple[str, ...],
    counts: tuple[int, ...],
    use_pauling_test: bool,
    include_alloys: bool,
    oxidation_states_set: str,
    search,
) -> bool:
    """Shortcuts (one element, all metals, unknown data), then ``search`` over oxidation states.

    ``neutral_ratios(q, stoichs=[(n_i,)], threshold=max n_i)`` in SMACT 4 yields the single
    ratio (n_i) iff Σ n_i q_i = 0 and gcd(n_i) = 1; the counts are gcd-reduced, so it is the
    charge balance Σ n_i q_i = 0 that both searches test.
    """
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
    return search(counts, ox_combos, enegs, use_pauling_test)


@lru_cache(maxsize=65536)
def _smact_valid_cached(
    symbols: tuple[str, ...],
    counts: tuple[int, ...],
    use_pauling_test: bool,
    include_alloys: bool,
    oxidation_states_set: str,
) -> bool:
    """:func:`_smact_valid` with the dynamic programme, memoised per reduced composition."""
    return _smact_valid(symbols, counts, use_pauling_test, include_alloys, oxidation_states_set,
                        _charge_balanced_search)


def _smact_valid_enumerate(
    symbols: tuple[str, ...],
    counts: tuple[int, ...],
    use_pauling_test: bool,
    include_alloys: bool,
    oxidation_states_set: str,
) -> bool:
    """The previous implementation, CDVAE's enumeration (tests compare against it)."""
    return _smact_valid(symbols, counts, use_pauling_test, include_alloys, oxidation_states_set,
                        _enumerate_search)


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


def crystal_validity(structure, time_limit_s: float | None = None, **kwargs) -> Validity:
    """:class:`Validity` of one structure (``None`` is invalid on both counts).

    ``time_limit_s``: wall-clock seconds the checks of this structure may take (None: no
    limit). Past it the check in progress stops at its next deadline test (one per atom in the
    distance search, one per Pauling summary in the charge search) and the result is
    ``skipped`` (see :class:`Validity`). Keyword arguments go to :func:`structure_validity`
    (``cutoff``, ``min_volume``, ``include_self_images``) or :func:`smact_validity` (the rest).
    """
    s_keys = {"cutoff", "min_volume", "include_self_images"}
    s_kw = {k: v for k, v in kwargs.items() if k in s_keys}
    c_kw = {k: v for k, v in kwargs.items() if k not in s_keys}
    if structure is None:
        return Validity(False, False)
    if time_limit_s is not None:
        import smact  # noqa: F401 - imported before the clock starts (about 0.5 s the first time)
    token = _DEADLINE.set(None if time_limit_s is None else time.perf_counter() + time_limit_s)
    structural = False
    try:
        structural = structure_validity(structure, **s_kw)
        return Validity(structural, smact_validity(structure, **c_kw))
    except _Timeout:
        return Validity(structural, False, skipped=True)
    finally:
        _DEADLINE.reset(token)


def validity_arrays(
    structures: Iterable, progress: bool = False, time_limit_s: float | None = 2.0, **kwargs
) -> dict[str, np.ndarray]:
    """Boolean arrays ``structural``, ``compositional``, ``valid`` and ``skipped`` (each ``[N]``).

    ``time_limit_s`` bounds the time spent on each structure (:func:`crystal_validity`); a
    skipped structure is invalid (its validity could not be established). Checks take
    milliseconds per structure, so the default 2 s only stops pathological inputs.
    """
    from tqdm.auto import tqdm

    structures = list(structures)
    s = np.zeros(len(structures), dtype=bool)
    c = np.zeros(len(structures), dtype=bool)
    skipped = np.zeros(len(structures), dtype=bool)
    for i, st in enumerate(tqdm(structures, desc="validity", disable=not progress, leave=False)):
        v = crystal_validity(st, time_limit_s=time_limit_s, **kwargs)
        s[i], c[i], skipped[i] = v.structural, v.compositional, v.skipped
    return {"structural": s, "compositional": c, "valid": s & c, "skipped": skipped}


def validity_rates(structures: Iterable, **kwargs) -> dict[str, float]:
    """Percentages ``struct_valid_pct``, ``comp_valid_pct``, ``valid_pct`` over all inputs, with
    ``n`` and ``skipped_count`` (structures past the time limit, counted invalid)."""
    a = validity_arrays(structures, **kwargs)
    n = len(a["valid"])
    if n == 0:
        raise ValueError("validity_rates: no structures given")
    return {
        "struct_valid_pct": float(100.0 * a["structural"].mean()),
        "comp_valid_pct": float(100.0 * a["compositional"].mean()),
        "valid_pct": float(100.0 * a["valid"].mean()),
        "n": n,
        "skipped_count": int(a["skipped"].sum()),
    }
