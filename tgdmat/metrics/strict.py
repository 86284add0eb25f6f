"""Stricter CSP metrics: tight matching + space group, polymorph-aware METRe/cRMSE, duplicates.

The literature's CSP match rate (:func:`tgdmat.metrics.csp.evaluate_csp`: ``StructureMatcher``
stol 0.5, ltol 0.3, angle_tol 10°) is easily fooled where the composition says little. On
Carbon-24 (all carbon, 6-24 atoms) a random same-size carbon cell matches often, and many test
crystals have a structure-identical twin in the training data. This module adds a column that
sits beside ``evaluate_csp``'s output:

1. **Strict match** (:data:`STRICT_MATCHER`, :data:`SPACE_GROUP_SETTINGS`): a prediction is a
   strict hit iff ``StructureMatcher(stol=0.3, ltol=0.2, angle_tol=5)`` (pymatgen's own default
   tolerances) matches it to the target **and** spglib (through pymatgen's
   ``SpacegroupAnalyzer``, symprec 0.1 Å, angle tolerance 5°) gives both the same space-group
   number. Per target, as in ``evaluate_csp``: a hit if any of its k predictions is; the RMSE is the
   mean over hits of the smallest normalised RMS displacement among the qualifying predictions.

2. **Polymorph-aware metrics of Martirossyan et al., "All that structure matches does not
   glitter" (arXiv:2509.12178)** — METRe and cRMSE; see :func:`polymorph_metrics` for the
   definitions and where they come from.

3. **A duplicate finder** (:func:`find_duplicates`): which query crystals (e.g. the test split)
   have a structure-identical crystal in a reference set (e.g. the training split), at the
   literature tolerances and at the strict ones; and :func:`match_rate_without_duplicates`, the
   match rate restricted to targets without such a twin.

Matching semantics are exactly ``evaluate_csp``'s: ``matcher.get_rms_dist(pred, target)`` is not
``None`` (prediction first, target second; pymatgen's matcher is not symmetric). To make the many
comparisons of METRe and the duplicate finder affordable, every structure is reduced once
(primitive cell + Niggli, the reduction the matcher applies itself) and compared with
``skip_structure_reduction`` semantics; :func:`match_reduced` reproduces ``get_rms_dist`` on the
cached reductions (a test checks the two agree). Before calling the matcher, pairs are pruned
only by conditions that the matcher itself imposes (see :func:`candidate_mask`):

* same composition hash and the same number of sites in the primitive cell (without
  ``attempt_supercell`` the matcher rejects anything else), and
* the lattice condition: pymatgen's ``Lattice.find_all_mappings`` needs three independent lattice
  vectors of the prediction with lengths below ``(1 + ltol)`` times the target's reduced cell
  lengths (both cells scaled to equal volume), so the prediction's successive minima
  λ_i / V^(1/3) must lie below ``(1 + ltol)`` times the target's sorted reduced lengths / V^(1/3).

Density is *not* used to prune: the matcher rescales both cells to the same volume
(``scale=True``), so crystals of different density can match. An average-minimum-distance
fingerprint (cell-choice invariant, volume-normalised) orders the candidates so a duplicate is
usually found within the first few matcher calls (early exit); pruning by it
(``fingerprint_tol``) is available but off by default because it is a heuristic.
"""
from __future__ import annotations

import math
import time
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .csp import MATCHER_DEFAULTS, REQUIRE_VALID, make_matcher

#: The literature's tolerances (CDVAE, DiffCSP, TGDMat), as ``evaluate_csp`` uses them.
LITERATURE_MATCHER: dict[str, float] = dict(MATCHER_DEFAULTS)
#: Tight tolerances: pymatgen's own ``StructureMatcher`` defaults.
STRICT_MATCHER: dict[str, float] = {"stol": 0.3, "ltol": 0.2, "angle_tol": 5.0}
#: spglib settings of the space-group check (distance tolerance in Å, angle tolerance in degrees).
SPACE_GROUP_SETTINGS: dict[str, float] = {"symprec": 0.1, "angle_tolerance": 5.0}
#: Neighbours averaged in the ordering fingerprint.
FINGERPRINT_NEIGHBOURS = 8
#: Relative slack on the lattice pruning bound (guards rounding; pruning stays conservative).
_LATTICE_SLACK = 1e-6


# --------------------------------------------------------------------------------------------
# One structure, reduced once
# --------------------------------------------------------------------------------------------


def space_group_number(structure, symprec: float = SPACE_GROUP_SETTINGS["symprec"],
                       angle_tolerance: float = SPACE_GROUP_SETTINGS["angle_tolerance"]) -> int | None:
    """spglib's space-group number (via pymatgen ``SpacegroupAnalyzer``), ``None`` if it fails."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    if structure is None:
        return None
    try:
        return int(SpacegroupAnalyzer(structure, symprec=symprec,
                                      angle_tolerance=angle_tolerance).get_space_group_number())
    except Exception:  # noqa: BLE001 - spglib can fail on degenerate cells: no space group
        return None


def successive_minima(lattice) -> np.ndarray:
    """Lengths λ1 ≤ λ2 ≤ λ3 of the three shortest linearly independent lattice vectors (Å)."""
    radius = max(lattice.abc) * (1 + 1e-8) + 1e-8
    frac, dist, _, _ = lattice.get_points_in_sphere([[0.0, 0.0, 0.0]], [0.0, 0.0, 0.0], radius,
                                                   zip_results=False)
    order = np.argsort(dist)
    cart = lattice.get_cartesian_coords(np.asarray(frac)[order])
    dist = np.asarray(dist)[order]
    chosen: list[np.ndarray] = []
    out: list[float] = []
    for v, d in zip(cart, dist):
        if d < 1e-8:
            continue
        if len(chosen) == 0:
            ok = True
        elif len(chosen) == 1:
            ok = np.linalg.norm(np.cross(chosen[0], v)) > 1e-6 * d * np.linalg.norm(chosen[0])
        else:
            ok = abs(np.linalg.det(np.array([chosen[0], chosen[1], v]))) > 1e-6 * d * np.prod(
                [np.linalg.norm(c) for c in chosen])
        if ok:
            chosen.append(v)
            out.append(float(d))
            if len(out) == 3:
                break
    if len(out) < 3:  # cannot happen for a 3D lattice: fall back to the cell lengths
        return np.sort(np.array(lattice.abc, dtype=float))
    return np.array(out)


def amd_fingerprint(structure, k: int = FINGERPRINT_NEIGHBOURS) -> np.ndarray:
    """Average minimum distances: mean over sites of the distance to the 1st..k-th neighbour.

    Divided by (V/N)^(1/3), it does not depend on the cell chosen or on the density, like the
    matcher (which compares primitive cells scaled to equal volume). Used only to order
    candidates (and, optionally, as a heuristic prune).
    """
    n = len(structure)
    scale = (structure.volume / n) ** (1.0 / 3.0)
    radius = 2.6 * scale
    centers, _, _, dists = structure.get_neighbor_list(radius)
    out = np.full((n, k), radius, dtype=float)
    if len(dists):
        order = np.lexsort((dists, centers))
        centers, dists = centers[order], dists[order]
        starts = np.searchsorted(centers, np.arange(n))
        ends = np.searchsorted(centers, np.arange(n), side="right")
        for i in range(n):
            d = dists[starts[i]:ends[i]][:k]
            out[i, : len(d)] = d
    return out.mean(axis=0) / scale


@dataclass
class Reduced:
    """A structure reduced as the matcher reduces it, with the invariants used to prune pairs."""

    structure: object  # pymatgen Structure: primitive cell, Niggli-reduced
    key: tuple  # (composition hash, number of sites in the primitive cell)
    minima: np.ndarray  # successive minima / V^(1/3), ascending
    abc: np.ndarray  # sorted reduced-cell lengths / V^(1/3)
    fingerprint: np.ndarray
    space_group: int | None = None  # None: not read, or spglib failed
    space_group_read: bool = False


def reduce_structure(structure, matcher=None, space_group: bool = False,
                     symprec: float = SPACE_GROUP_SETTINGS["symprec"],
                     angle_tolerance: float = SPACE_GROUP_SETTINGS["angle_tolerance"]) -> Reduced:
    """Reduce ``structure`` once (primitive + Niggli, the matcher's own reduction) and describe it.

    The reduction does not depend on the matcher's tolerances, so one :class:`Reduced` serves
    both the literature and the strict matcher. The space group (optional) is read from the
    structure as given (it does not depend on the cell either).
    """
    matcher = matcher or make_matcher()
    red = matcher._get_reduced_structure(structure, matcher._primitive_cell, True)
    vol3 = red.volume ** (1.0 / 3.0)
    key = (matcher._comparator.get_hash(red.composition), len(red))
    return Reduced(
        structure=red,
        key=key,
        minima=successive_minima(red.lattice) / vol3,
        abc=np.sort(np.array(red.lattice.abc, dtype=float)) / vol3,
        fingerprint=amd_fingerprint(red),
        space_group=space_group_number(structure, symprec, angle_tolerance) if space_group else None,
        space_group_read=bool(space_group),
    )


def match_reduced(matcher, pred: Reduced, target: Reduced, best: bool = True) -> float | None:
    """``matcher.get_rms_dist(pred, target)[0]`` computed on the cached reductions.

    ``best=True`` returns the smallest RMS displacement over all lattice mappings (as
    ``get_rms_dist``); ``best=False`` stops at the first mapping whose RMS is below ``stol``,
    which decides the same match/no-match question faster and returns that mapping's RMS.
    (Both accept on the RMS, as ``get_rms_dist`` does; ``StructureMatcher.fit`` accepts on the
    largest single displacement instead and is slightly stricter.) ``None``: no match, or a
    matcher error (counted as no match, as in the papers).
    """
    try:
        s1, s2 = matcher._process_species([pred.structure, target.structure])
        s1, s2, fu, s1_supercell = matcher._preprocess(s1, s2, skip_structure_reduction=True)
        res = matcher._match(s1, s2, fu, s1_supercell, use_rms=True, break_on_match=not best)
    except (AttributeError, TypeError):  # a pymatgen without these internals: the public call
        try:
            res = matcher.get_rms_dist(pred.structure, target.structure)
        except Exception:  # noqa: BLE001
            return None
    except Exception:  # noqa: BLE001 - the papers treat a matcher failure as no match
        return None
    return None if res is None else float(res[0])


def candidate_mask(pred_minima: np.ndarray, target_abc: np.ndarray, ltol: float) -> np.ndarray:
    """Which predictions (rows of ``pred_minima``) can pass the matcher's lattice search.

    ``Lattice.find_all_mappings`` accepts a basis of the prediction only if its vectors have
    lengths below ``(1 + ltol)`` times the target's reduced cell lengths a ≤ b ≤ c (cells scaled
    to equal volume). Three independent vectors sorted by length are at least the successive
    minima, so a mapping needs λ_i(pred) < (1 + ltol)·(a, b, c)_i(target) for i = 1, 2, 3.
    The pruning is exact (it never removes a pair the matcher would match).
    """
    bound = (1.0 + ltol) * target_abc * (1.0 + _LATTICE_SLACK)
    return np.all(pred_minima < bound[None, :], axis=1)


# --------------------------------------------------------------------------------------------
# Matching many against many
# --------------------------------------------------------------------------------------------


@dataclass
class _Pool:
    """Reduced structures grouped by (composition hash, primitive size), for fast candidate lists."""

    items: list[Reduced]
    groups: dict = field(default_factory=dict)

    def __post_init__(self):
        tmp = defaultdict(list)
        for i, r in enumerate(self.items):
            if r is not None:
                tmp[r.key].append(i)
        self.groups = {
            k: (np.array(v, dtype=np.int64),
                np.stack([self.items[i].minima for i in v]),
                np.stack([self.items[i].fingerprint for i in v]),
                np.array([-1 if self.items[i].space_group is None else self.items[i].space_group for i in v]))
            for k, v in tmp.items()
        }

    def candidates(self, query: Reduced, ltol: float, same_space_group: bool,
                   fingerprint_tol: float | None) -> tuple[np.ndarray, int]:
        """Indices of pool items that may match ``query`` (as predictions of it), best first."""
        if query.key not in self.groups:
            return np.zeros(0, dtype=np.int64), 0
        idx, minima, fps, sgs = self.groups[query.key]
        keep = candidate_mask(minima, query.abc, ltol)
        if same_space_group:
            keep &= (sgs == (-2 if query.space_group is None else query.space_group))
        dist = np.abs(fps - query.fingerprint[None, :]).max(axis=1)
        if fingerprint_tol is not None:
            keep &= dist <= fingerprint_tol
        n_group = len(idx)
        order = np.argsort(dist[keep], kind="stable")
        return idx[keep][order], n_group


def cross_match(queries: Sequence[Reduced], pool: Sequence[Reduced], stol: float, ltol: float,
                angle_tol: float, same_space_group: bool = False, best: bool = False,
                fingerprint_tol: float | None = None, progress: bool = False,
                desc: str = "matching") -> dict:
    """For every query (a target), which pool item (a prediction / reference) matches it.

    ``best=False``: the first match found (candidates ordered by fingerprint distance; early
    exit). ``best=True``: all candidates are compared and the smallest RMS displacement is kept
    (METRe needs it). A pool item is compared as the matcher's first argument (the prediction).
    ``None`` entries (failed/invalid predictions) never match.

    Returns ``index`` (pool index or ``None`` per query), ``rms`` (float or ``None``),
    ``n_matcher_calls``, ``n_same_group_pairs`` (pairs with equal composition hash and primitive
    size, i.e. before lattice pruning) and ``seconds``.
    """
    from tqdm.auto import tqdm

    matcher = make_matcher(stol=stol, angle_tol=angle_tol, ltol=ltol)
    pool_ = _Pool(list(pool))
    index: list[int | None] = []
    rms: list[float | None] = []
    calls = 0
    same_group = 0
    t0 = time.perf_counter()
    for q in tqdm(queries, desc=desc, disable=not progress, leave=False):
        if q is None:
            index.append(None)
            rms.append(None)
            continue
        cand, n_group = pool_.candidates(q, ltol, same_space_group, fingerprint_tol)
        same_group += n_group
        hit, hit_rms = None, None
        for j in cand:
            calls += 1
            r = match_reduced(matcher, pool_.items[int(j)], q, best=best)
            if r is None:
                continue
            if not best:
                hit, hit_rms = int(j), r
                break
            if hit_rms is None or r < hit_rms:
                hit, hit_rms = int(j), r
        index.append(hit)
        rms.append(hit_rms)
    return {"index": index, "rms": rms, "n_matcher_calls": calls, "n_same_group_pairs": same_group,
            "seconds": time.perf_counter() - t0}


def reduce_all(structures: Sequence, space_group: bool = False, progress: bool = False,
               desc: str = "reducing", symprec: float = SPACE_GROUP_SETTINGS["symprec"],
               angle_tolerance: float = SPACE_GROUP_SETTINGS["angle_tolerance"]) -> list[Reduced | None]:
    """:func:`reduce_structure` for each structure (``None`` stays ``None``; a failure gives ``None``)."""
    from tqdm.auto import tqdm

    matcher = make_matcher()
    out: list[Reduced | None] = []
    for s in tqdm(structures, desc=desc, disable=not progress, leave=False):
        if s is None:
            out.append(None)
            continue
        try:
            out.append(reduce_structure(s, matcher, space_group, symprec, angle_tolerance))
        except Exception as exc:  # noqa: BLE001 - an unreducible cell cannot match anything
            warnings.warn(f"structure could not be reduced ({exc}); it matches nothing", stacklevel=2)
            out.append(None)
    return out


# --------------------------------------------------------------------------------------------
# Duplicates
# --------------------------------------------------------------------------------------------

#: The two duplicate definitions: literature tolerances; strict tolerances + same space group.
DUPLICATE_TOLERANCES: dict[str, dict] = {
    "literature": {**LITERATURE_MATCHER, "same_space_group": False},
    "strict": {**STRICT_MATCHER, "same_space_group": True},
}


def find_duplicates(queries: Sequence, references: Sequence,
                    tolerances: dict[str, dict] | None = None,
                    fingerprint_tol: float | None = None,
                    query_ids: Sequence[str] | None = None,
                    reference_ids: Sequence[str] | None = None,
                    symprec: float = SPACE_GROUP_SETTINGS["symprec"],
                    angle_tolerance: float = SPACE_GROUP_SETTINGS["angle_tolerance"],
                    progress: bool = False) -> dict:
    """Which ``queries`` have a structure-identical crystal among ``references``.

    A query ``q`` has a duplicate at a tolerance setting if some reference ``r`` matches it as
    ``get_rms_dist(r, q)`` would (the reference in the prediction's place: exactly the question
    "would predicting this reference crystal count as a hit for ``q``?"), and, for settings with
    ``same_space_group``, spglib gives both the same space group (:data:`SPACE_GROUP_SETTINGS`).
    ``tolerances`` maps a name to ``{"stol", "ltol", "angle_tol", "same_space_group"}``;
    default :data:`DUPLICATE_TOLERANCES` (literature; strict + space group).

    Pairs are restricted to equal composition and primitive size and pruned by the exact lattice
    bound (:func:`candidate_mask`), then compared in fingerprint order with early exit.
    ``fingerprint_tol`` (off by default) also skips pairs whose fingerprints differ by more than
    this in any component: faster, but a heuristic that may miss loose matches.

    ``queries`` / ``references``: pymatgen structures, or lists of :class:`Reduced` (reuse them
    across calls). Returns a JSON-able dict: per setting, ``has_duplicate`` (bool per query),
    ``match_index`` (reference index or ``None``), ``n_with_duplicate``, ``pct_with_duplicate``,
    the settings, matcher call counts and timings; with ids, ``pairs`` maps query id →
    reference id for the queries with a duplicate.
    """
    tolerances = tolerances or DUPLICATE_TOLERANCES
    need_sg = any(t.get("same_space_group") for t in tolerances.values())
    q_red = _as_reduced(queries, need_sg, progress, "reducing queries", symprec, angle_tolerance)
    r_red = _as_reduced(references, need_sg, progress, "reducing references", symprec, angle_tolerance)
    out: dict = {"n_queries": len(q_red), "n_references": len(r_red),
                 "direction": "reference as prediction: get_rms_dist(reference, query)",
                 "fingerprint_tol": fingerprint_tol, "settings": {}}
    for name, tol in tolerances.items():
        res = cross_match(q_red, r_red, stol=tol["stol"], ltol=tol["ltol"], angle_tol=tol["angle_tol"],
                          same_space_group=bool(tol.get("same_space_group")), best=False,
                          fingerprint_tol=fingerprint_tol, progress=progress, desc=f"duplicates ({name})")
        has = [i is not None for i in res["index"]]
        entry = {
            "matcher": {"stol": tol["stol"], "ltol": tol["ltol"], "angle_tol": tol["angle_tol"],
                        "primitive_cell": True, "scale": True, "attempt_supercell": False},
            "same_space_group": bool(tol.get("same_space_group")),
            **({"space_group": {"symprec": symprec, "angle_tolerance": angle_tolerance, "via": "spglib (pymatgen SpacegroupAnalyzer)"}}
               if tol.get("same_space_group") else {}),
            "n_with_duplicate": int(sum(has)),
            "pct_with_duplicate": float(100.0 * np.mean(has)) if has else 0.0,
            "has_duplicate": has,
            "match_index": res["index"],
            "n_matcher_calls": res["n_matcher_calls"],
            "n_same_group_pairs": res["n_same_group_pairs"],
            "seconds": round(res["seconds"], 2),
        }
        if query_ids is not None and reference_ids is not None:
            entry["pairs"] = {str(query_ids[i]): str(reference_ids[j])
                              for i, j in enumerate(res["index"]) if j is not None}
        out["settings"][name] = entry
    return out


def match_rate_without_duplicates(hits: Sequence, has_duplicate: Sequence[bool]) -> dict:
    """Match rate (percent) on the targets that have **no** duplicate in the reference set.

    ``hits``: per target, a bool, or a per-target RMS value (``None`` = miss), as in
    ``evaluate_csp(..., return_per_target=True)["per_target_rms"]``. ``has_duplicate``: per target,
    from :func:`find_duplicates`. Returns ``match_rate_pct`` (``None`` when every target has a
    duplicate), ``n_targets`` (kept), ``n_hits``, ``n_excluded``, and ``rmse`` over the kept hits
    when RMS values were given.
    """
    if len(hits) != len(has_duplicate):
        raise ValueError(f"{len(hits)} hit flags for {len(has_duplicate)} duplicate flags")
    kept = [h for h, d in zip(hits, has_duplicate) if not d]
    flags = [(h is not None and h is not False) for h in kept]
    rms = [float(h) for h in kept if h is not None and not isinstance(h, bool)]
    return {
        "match_rate_pct": float(100.0 * np.mean(flags)) if kept else None,
        "n_targets": len(kept),
        "n_hits": int(sum(flags)),
        "n_excluded": len(hits) - len(kept),
        "rmse": float(np.mean(rms)) if rms else None,
    }


# --------------------------------------------------------------------------------------------
# The column beside evaluate_csp
# --------------------------------------------------------------------------------------------


def _as_lists(preds: Sequence, targets: Sequence) -> list[list]:
    """``evaluate_csp``'s convention: T entries, each a list of k predictions (or a bare one)."""
    from pymatgen.core import Structure

    if len(preds) != len(targets):
        raise ValueError(f"{len(preds)} prediction lists for {len(targets)} targets")
    if len(targets) == 0:
        raise ValueError("no targets")
    lists = []
    for i, p in enumerate(preds):
        lists.append([p] if p is None or isinstance(p, Structure) else list(p))
        if targets[i] is None:
            raise ValueError(f"target #{i} is None")
    return lists


def _as_reduced(items, space_group, progress, desc, symprec, angle_tolerance) -> list:
    items = list(items)
    if items and all(isinstance(x, Reduced) or x is None for x in items):
        if space_group and any(x is not None and not x.space_group_read for x in items):
            raise ValueError("these Reduced structures carry no space group; reduce with space_group=True")
        return items
    return reduce_all(items, space_group, progress, desc, symprec, angle_tolerance)


def _is_comparable(pred, require_valid: str) -> bool:
    from .csp import _is_comparable as csp_comparable

    return csp_comparable(pred, require_valid)


def _one_to_one(lists_red, targets_red, matcher_kw, same_space_group) -> list[float | None]:
    """Per target: the smallest RMS over its own predictions that match (and agree in space group)."""
    matcher = make_matcher(**matcher_kw)
    ltol = matcher_kw["ltol"]
    out: list[float | None] = []
    for preds, t in zip(lists_red, targets_red):
        best = None
        for p in preds:
            if p is None or t is None or p.key != t.key:
                continue
            if same_space_group and (p.space_group is None or p.space_group != t.space_group):
                continue
            if not candidate_mask(p.minima[None, :], t.abc, ltol)[0]:
                continue
            r = match_reduced(matcher, p, t, best=True)
            if r is not None and (best is None or r < best):
                best = r
        out.append(best)
    return out


def _metre_subset(metre_targets, n: int, seed: int) -> list[int]:
    if metre_targets is None:
        return list(range(n))
    if isinstance(metre_targets, (int, np.integer)):
        k = int(metre_targets)
        if k <= 0 or k >= n:
            return list(range(n))
        return sorted(int(i) for i in np.random.default_rng(seed).choice(n, size=k, replace=False))
    idx = sorted({int(i) for i in metre_targets})
    if any(i < 0 or i >= n for i in idx):
        raise ValueError("metre_targets: index out of range")
    return idx


def _content_key(r: Reduced) -> bytes:
    s = r.structure
    return b"|".join([np.round(s.lattice.matrix, 10).tobytes(), np.round(s.frac_coords, 10).tobytes(),
                      "/".join(sp.species_string for sp in s).encode()])


def _distinct(items: Sequence[Reduced]) -> list[Reduced]:
    """One entry per distinct reduced structure (exact duplicates, e.g. a training crystal drawn
    twice, would only repeat the same comparisons; METRe's answer does not change)."""
    seen, out = set(), []
    for r in items:
        key = _content_key(r)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def polymorph_metrics(per_target_rms: Sequence[float | None], metre_rms: Sequence[float | None],
                      stol: float) -> dict:
    """METRe and cRMSE of Martirossyan et al. (arXiv:2509.12178) from per-target RMS values.

    Definitions (the paper's abstract introduces "METRe and cRMSE, new model evaluation metrics
    that can correct existing issues with the match rate metric"; we could not read the body
    text, so the section/equation numbers are not cited. The definitions below follow the
    authors' reference implementation, OMatG's ``csp_metrics`` documentation, which cites the
    paper for both metrics):

    * **METRe** (match everyone to reference): every generated structure is compared with every
      reference (target) structure of the same composition, not only with the target it was
      generated for; reference i is recovered if *any* generated structure matches it:
      ``METRe = (1/T) Σ_i 1[∃ generated g: match(g, t_i)]``; its RMSE is the mean over recovered
      references of ``min_g rms(g, t_i)``. With polymorphs in the test set, a model that
      predicts polymorph B for the composition of target A is no longer penalised if B itself is
      in the test set; without polymorphs METRe equals the one-to-one match rate. The authors
      warn that duplicates *within* the reference set inflate it (one generated structure then
      recovers several references).
    * **cRMSE** (corrected RMSE): the RMSE averaged over **all** references, an unmatched one
      counting the site tolerance ``stol`` (the largest RMS a match can have):
      ``cRMSE = (1/T) Σ_i (rms_i if matched else stol)``. Unlike the usual RMSE (over hits only)
      it cannot improve by matching fewer, easier targets. It is given for the one-to-one
      matching (``crmse``) and for METRe (``metre_crmse``).

    ``per_target_rms``: one-to-one best RMS per target (``None`` = miss); ``metre_rms``: the
    METRe best RMS per target.
    """
    def _summary(rms):
        hits = [r for r in rms if r is not None]
        return (float(100.0 * len(hits) / len(rms)), float(np.mean(hits)) if hits else None,
                float(np.mean([stol if r is None else r for r in rms])))

    mr, rmse, crmse = _summary(list(per_target_rms))
    out = {"match_rate_pct": mr, "rmse": rmse, "crmse": crmse}
    if metre_rms is not None:
        m, mrmse, mcrmse = _summary(list(metre_rms))
        out.update({"metre_pct": m, "metre_rmse": mrmse, "metre_crmse": mcrmse})
    out["crmse_penalty"] = stol
    return out


def evaluate_csp_strict(
    preds: Sequence,
    targets: Sequence,
    require_valid: str = "full",
    strict: dict | None = None,
    literature: dict | None = None,
    symprec: float = SPACE_GROUP_SETTINGS["symprec"],
    angle_tolerance: float = SPACE_GROUP_SETTINGS["angle_tolerance"],
    metre: bool = True,
    metre_targets: int | Sequence[int] | None = None,
    metre_seed: int = 0,
    duplicates: dict | None = None,
    targets_reduced: Sequence[Reduced] | None = None,
    progress: bool = True,
    return_per_target: bool = False,
) -> dict:
    """The strict column beside ``evaluate_csp(preds, targets)`` (same inputs and conventions).

    ``preds``: T entries, one per target, each a list of k predictions (``Structure`` or
    ``None``; a bare ``Structure``/``None`` is k = 1); ``targets``: T structures. A prediction is
    compared only if it passes ``require_valid`` (as in ``evaluate_csp``; invalid = miss).

    Returns a JSON-able dict:

    * ``strict``: tight match (:data:`STRICT_MATCHER`) **and** equal spglib space group
      (``symprec``, ``angle_tolerance``): ``match_rate_pct``, ``rmse`` (over strict hits),
      ``n_hits``; the parts alone: ``tight_match_rate_pct`` (matcher only) and
      ``space_group_agreement_pct`` (some comparable prediction has the target's space group);
      ``n_literature_hits_rejected`` (targets hit at the literature tolerances but not strictly);
    * ``polymorph_aware``: :func:`polymorph_metrics` (METRe, cRMSE) at the literature tolerances
      and at the strict ones (strict METRe also requires equal space groups). METRe compares
      every distinct prediction with every target of the same composition (costly: on
      Carbon-24 ~10^5-10^6 matcher calls); ``metre=False`` skips it, ``metre_targets`` scores
      it on a subset of targets (an int: a sample of that many, seeded by ``metre_seed``; or
      indices), still against **all** predictions, so each sampled target's METRe value is
      exact. The block then states ``n_targets`` and gives the one-to-one numbers on the same
      targets next to METRe's; the full-set one-to-one numbers stay at the top level;
    * ``without_duplicates`` (when ``duplicates``, the output of :func:`find_duplicates` for
      these targets against the training split, is given): literature and strict match rates
      on the targets without a training duplicate at the same setting;
    * the settings used. ``return_per_target`` adds the per-target RMS lists.

    ``targets_reduced`` (from :func:`reduce_all` with ``space_group=True``) skips re-reducing
    the targets.
    """
    if require_valid not in REQUIRE_VALID:
        raise ValueError(f"require_valid must be one of {REQUIRE_VALID}, got {require_valid!r}")
    strict = dict(strict or STRICT_MATCHER)
    literature = dict(literature or LITERATURE_MATCHER)
    lists = _as_lists(preds, targets)
    t0 = time.perf_counter()

    # reduce every comparable prediction once (identical objects are reduced once)
    cache: dict[int, Reduced | None] = {}
    lists_red: list[list[Reduced | None]] = []
    n_comparable = 0
    from tqdm.auto import tqdm

    for pl in tqdm(lists, desc="reducing predictions", disable=not progress, leave=False):
        row = []
        for p in pl:
            if not _is_comparable(p, require_valid):
                row.append(None)
                continue
            n_comparable += 1
            if id(p) not in cache:
                cache[id(p)] = reduce_all([p], True, False, "", symprec, angle_tolerance)[0]
            row.append(cache[id(p)])
        lists_red.append(row)
    if targets_reduced is None:
        targets_red = reduce_all(targets, True, progress, "reducing targets", symprec, angle_tolerance)
    else:
        targets_red = _as_reduced(targets_reduced, True, False, "", symprec, angle_tolerance)
        if len(targets_red) != len(targets):
            raise ValueError("targets_reduced must have one entry per target")
    t_reduce = time.perf_counter() - t0

    t0 = time.perf_counter()
    lit_rms = _one_to_one(lists_red, targets_red, literature, same_space_group=False)
    tight_rms = _one_to_one(lists_red, targets_red, strict, same_space_group=False)
    strict_rms = _one_to_one(lists_red, targets_red, strict, same_space_group=True)
    t_match = time.perf_counter() - t0
    sg_agree = [
        t is not None and t.space_group is not None
        and any(p is not None and p.space_group == t.space_group for p in pl)
        for pl, t in zip(lists_red, targets_red)
    ]
    strict_hits = [r is not None for r in strict_rms]
    lit_hits = [r is not None for r in lit_rms]
    T = len(targets)

    metre_lit = metre_strict = None
    t_metre = 0.0
    if metre:
        sub = _metre_subset(metre_targets, T, metre_seed)
        uniq = _distinct([p for pl in lists_red for p in pl if p is not None])
        t0 = time.perf_counter()
        sub_red = [targets_red[i] for i in sub]
        metre_lit = cross_match(sub_red, uniq, best=True, same_space_group=False,
                                progress=progress, desc="METRe (literature)", **literature)
        metre_strict = cross_match(sub_red, uniq, best=True, same_space_group=True,
                                   progress=progress, desc="METRe (strict)", **strict)
        t_metre = time.perf_counter() - t0

    sg_settings = {"symprec": symprec, "angle_tolerance": angle_tolerance,
                   "via": "spglib (pymatgen SpacegroupAnalyzer)"}
    out: dict = {
        "n_targets": T,
        "k_max": max(len(pl) for pl in lists),
        "n_predictions": int(sum(len(pl) for pl in lists)),
        "n_comparable_predictions": n_comparable,
        "require_valid": require_valid,
        "strict": {
            "definition": "hit iff some comparable prediction matches at the strict tolerances AND has "
                          "the target's spglib space group",
            "match_rate_pct": float(100.0 * np.mean(strict_hits)),
            "rmse": float(np.mean([r for r in strict_rms if r is not None])) if any(strict_hits) else None,
            "n_hits": int(sum(strict_hits)),
            "tight_match_rate_pct": float(100.0 * np.mean([r is not None for r in tight_rms])),
            "space_group_agreement_pct": float(100.0 * np.mean(sg_agree)),
            "n_literature_hits_rejected": int(sum(a and not b for a, b in zip(lit_hits, strict_hits))),
            "n_targets_without_space_group": int(sum(t is None or t.space_group is None for t in targets_red)),
            "matcher": {**strict, "primitive_cell": True, "scale": True, "attempt_supercell": False},
            "space_group": sg_settings,
        },
        "polymorph_aware": {
            "source": "Martirossyan et al., All that structure matches does not glitter, arXiv:2509.12178 "
                      "(METRe, cRMSE; definitions as in the authors' OMatG csp_metrics)",
            "literature": {**polymorph_metrics(lit_rms, None, literature["stol"]),
                           "matcher": {**literature, "primitive_cell": True, "scale": True,
                                       "attempt_supercell": False}},
            "strict": {**polymorph_metrics(strict_rms, None, strict["stol"]),
                       "matcher": {**strict, "primitive_cell": True, "scale": True, "attempt_supercell": False},
                       "same_space_group": True},
            "metre_computed": bool(metre),
        },
        "seconds": {"reduce": round(t_reduce, 2), "match": round(t_match, 2), "metre": round(t_metre, 2)},
    }
    if metre:
        pa = out["polymorph_aware"]
        for name, per_target, res in (("literature", lit_rms, metre_lit), ("strict", strict_rms, metre_strict)):
            stol = (literature if name == "literature" else strict)["stol"]
            pa[name]["metre"] = {
                **polymorph_metrics([per_target[i] for i in sub], res["rms"], stol),
                "n_targets": len(sub),
                "targets": "all" if len(sub) == T else f"sample of {len(sub)} (seed {metre_seed})",
                "n_distinct_predictions": len(uniq),
                "n_matcher_calls": res["n_matcher_calls"],
            }
        pa["metre_target_indices"] = None if len(sub) == T else [int(i) for i in sub]
    if duplicates is not None:
        settings = duplicates.get("settings", duplicates)
        wd = {}
        if "literature" in settings:
            wd["literature"] = match_rate_without_duplicates(lit_rms, settings["literature"]["has_duplicate"])
        if "strict" in settings:
            wd["strict"] = match_rate_without_duplicates(strict_rms, settings["strict"]["has_duplicate"])
        out["without_duplicates"] = wd
    if return_per_target:
        out["per_target_rms"] = {"literature": lit_rms, "tight": tight_rms, "strict": strict_rms}
        if metre:  # aligned with polymorph_aware.metre_target_indices (all targets when None)
            out["per_target_rms"]["metre_literature"] = metre_lit["rms"]
            out["per_target_rms"]["metre_strict"] = metre_strict["rms"]
    return out


__all__ = [
    "LITERATURE_MATCHER", "STRICT_MATCHER", "SPACE_GROUP_SETTINGS", "DUPLICATE_TOLERANCES",
    "Reduced", "reduce_structure", "reduce_all", "match_reduced", "candidate_mask", "cross_match",
    "space_group_number", "successive_minima", "amd_fingerprint", "find_duplicates",
    "match_rate_without_duplicates", "polymorph_metrics", "evaluate_csp_strict",
]
