"""Crystal structure prediction (CSP) metrics: match rate and RMSE, as CDVAE/DiffCSP/TGDMat.

For each target crystal t_i with k predictions {p_ij}, pymatgen's
``StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)`` (all other options default: primitive
cells compared, volumes scaled, no supercells or subsets) decides whether p_ij matches t_i; its
``get_rms_dist(p, t)[0]`` is the root-mean-square displacement of matched sites normalised
by the cube root of the volume per atom, (V/N)^(1/3) (dimensionless):

    hit_i  = ∃ j: p_ij valid and matches t_i                (a target is a hit if any sample is)
    RMSE_i = min_j rms(p_ij, t_i) over valid matches
    Match rate = (1/T) Σ_i hit_i        RMSE = mean_i RMSE_i over the hits only

**Invalid predictions count as misses and stay in the denominator.** With
``require_valid="full"`` (default, the literature's rule) a prediction is compared only if it is
structurally valid and passes the SMACT composition test (see ``validity.py``) — CDVAE's and
DiffCSP's ``RecEval`` skip every crystal whose ``valid`` flag is false. Since a CSP prediction
has its target's composition, a target whose composition fails SMACT can never be a hit: this
caps the Perov-5 match rate at 98.6 % (DiffCSP's k = 20 figure). ``"structural"`` drops the
composition test, ``"none"`` compares every non-``None`` prediction. (The papers also mark a
crystal invalid when its CrystalNN fingerprint fails; we do not compute fingerprints here.)
A matcher exception counts as no match, as in the papers.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tgdmat.parallel import parallel_map

MATCHER_DEFAULTS = {"stol": 0.5, "angle_tol": 10.0, "ltol": 0.3}
REQUIRE_VALID = ("full", "structural", "none")


def make_matcher(stol: float = 0.5, angle_tol: float = 10.0, ltol: float = 0.3):
    """The literature's ``StructureMatcher`` (defaults stol=0.5, angle_tol=10°, ltol=0.3)."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(stol=stol, angle_tol=angle_tol, ltol=ltol)


def rms_distance(pred, target, matcher=None) -> float | None:
    """Normalised RMS displacement of ``pred`` vs ``target``, or ``None`` when they do not match."""
    matcher = matcher or make_matcher()
    try:
        res = matcher.get_rms_dist(pred, target)
    except Exception:  # noqa: BLE001 - the papers treat a matcher failure as no match
        return None
    return None if res is None else float(res[0])


def _is_comparable(pred, require_valid: str) -> bool:
    from .validity import smact_validity, structure_validity

    if pred is None:
        return False
    if require_valid == "none":
        return True
    if not structure_validity(pred):
        return False
    return require_valid == "structural" or smact_validity(pred)


def _match_one_target(args) -> tuple[float | None, int]:
    """Worker: (predictions, target, matcher kwargs, require_valid) -> (best rms or None, n comparable)."""
    preds, target, matcher_kw, require_valid = args
    matcher = make_matcher(**matcher_kw)
    best = None
    n_ok = 0
    for p in preds:
        if not _is_comparable(p, require_valid):
            continue
        n_ok += 1
        r = rms_distance(p, target, matcher)
        if r is not None and (best is None or r < best):
            best = r
    return best, n_ok


RMS_THRESHOLDS = (0.01, 0.02, 0.05, 0.1, 0.2)


def rms_distribution(rms, n_targets: int) -> dict:
    """How the normalised RMS distances of the hits are spread.

    The literature's RMSE is the *mean* over hits, and a hit may be as far as ``stol`` = 0.5: a
    few loose matches can dominate it while most hits are nearly exact. Returns the quantiles
    ``p10 … p90`` of the hits' RMS (``None`` without hits) and ``pct_targets_within``: for each
    threshold r in :data:`RMS_THRESHOLDS`, the percentage of **all** targets matched with RMS ≤ r
    (a match rate at a tighter site tolerance, with the lattice still matched at ``ltol``).
    """
    rms = np.asarray(rms, dtype=float)
    q = {f"p{p}": (float(np.quantile(rms, p / 100)) if rms.size else None) for p in (10, 25, 50, 75, 90)}
    within = {str(r): float(100.0 * np.sum(rms <= r) / n_targets) if n_targets else 0.0 for r in RMS_THRESHOLDS}
    return {**q, "pct_targets_within": within}


def evaluate_csp(
    preds: Sequence,
    targets: Sequence,
    stol: float = 0.5,
    angle_tol: float = 10.0,
    ltol: float = 0.3,
    require_valid: str = "full",
    workers: int | None = None,
    progress: bool = True,
    return_per_target: bool = False,
) -> dict:
    """Match rate (percent) and RMSE of CSP predictions.

    ``preds``: T entries, one per target, each a list of k predictions (pymatgen ``Structure``
    or ``None`` for a failed prediction; k may differ between targets; a bare ``Structure`` or
    ``None`` is read as k = 1). ``targets``: T structures. Returns ``match_rate_pct``, ``rmse``
    (``None`` without hits), ``n_targets``, ``k_max``, ``n_predictions``,
    ``n_comparable_predictions`` (valid ones, per ``require_valid``), ``n_targets_comp_invalid``
    and the matcher settings; with ``return_per_target`` also ``per_target_rms`` (T floats or
    ``None``).
    """
    from pymatgen.core import Structure

    if require_valid not in REQUIRE_VALID:
        raise ValueError(f"require_valid must be one of {REQUIRE_VALID}, got {require_valid!r}")
    if len(preds) != len(targets):
        raise ValueError(f"evaluate_csp: {len(preds)} prediction lists for {len(targets)} targets")
    if len(targets) == 0:
        raise ValueError("evaluate_csp: no targets")
    lists = []
    for i, p in enumerate(preds):
        if p is None or isinstance(p, Structure):
            lists.append([p])
        else:
            lists.append(list(p))
        if targets[i] is None:
            raise ValueError(f"evaluate_csp: target #{i} is None")
    matcher_kw = {"stol": stol, "angle_tol": angle_tol, "ltol": ltol}
    jobs = [(pl, t, matcher_kw, require_valid) for pl, t in zip(lists, targets)]
    results = parallel_map(_match_one_target, jobs, workers=workers, desc="CSP matching", progress=progress)
    best = [r[0] for r in results]
    hits = np.array([b is not None for b in best])
    rms = np.array([b for b in best if b is not None], dtype=float)

    from .validity import smact_validity

    out = {
        "match_rate_pct": float(100.0 * hits.mean()),
        "rmse": float(rms.mean()) if rms.size else None,
        "n_targets": len(targets),
        "n_hits": int(hits.sum()),
        "k_max": max(len(pl) for pl in lists),
        "n_predictions": int(sum(len(pl) for pl in lists)),
        "n_missing_predictions": int(sum(p is None for pl in lists for p in pl)),
        "n_comparable_predictions": int(sum(r[1] for r in results)),
        "n_targets_comp_invalid": int(sum(not smact_validity(t) for t in targets)),
        "require_valid": require_valid,
        "matcher": {**matcher_kw, "primitive_cell": True, "scale": True, "attempt_supercell": False},
        "rms_distribution": rms_distribution(rms, len(targets)),
    }
    if return_per_target:
        out["per_target_rms"] = best
    return out
