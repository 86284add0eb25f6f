"""Uniqueness and novelty of generated crystals (StructureMatcher against each other / the training set).

A generator that copies training crystals scores well on coverage (COV-R/P) and on the
Wasserstein distances, because the training and test splits come from one distribution. Two
counts expose it (the definitions of the S.U.N. family of metrics, e.g. MatterGen, Zeni et al.,
*Nature* 2025, and the CDVAE-era "uniqueness / novelty" columns):

    unique_i = no j < i among the evaluated samples with  match(x_j, x_i)
    novel_i  = no training crystal r with                 match(r, x_i)

with ``match`` pymatgen's ``StructureMatcher`` at the literature tolerances (stol 0.5, ltol 0.3,
angle 10°, primitive cells, scaled volumes) — the same test a CSP match uses, so "not novel"
means exactly "would have counted as a correct prediction of a training crystal". The strict
setting (stol 0.3, ltol 0.2, angle 5° and the same spglib space group) is reported beside it.

Matching is done on reduced cells grouped by composition and primitive size and pruned with an
exact lattice bound (:mod:`tgdmat.metrics.strict`), so a few thousand samples against a few
thousand training crystals take seconds to minutes on one core.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from tgdmat.metrics.strict import (
    DUPLICATE_TOLERANCES,
    SPACE_GROUP_SETTINGS,
    _Pool,
    cross_match,
    make_matcher,
    match_reduced,
    reduce_all,
)

__all__ = ["novelty_uniqueness", "NOVELTY_SAMPLE"]

#: Samples scored by default (a seeded subsample of the valid ones), as the W-distances.
NOVELTY_SAMPLE = 1000


def _unique_flags(items: Sequence, stol: float, ltol: float, angle_tol: float,
                  same_space_group: bool) -> tuple[list[bool], int]:
    """``unique[i]``: no earlier *unique* item matches item ``i`` (``None`` items are not unique).

    Comparing only with earlier unique items is enough: matching is treated as an equivalence
    (a duplicate of a duplicate is a duplicate of its representative at these tolerances, up to
    the matcher's tolerance chaining, which the literature accepts too).
    """
    pool = _Pool(list(items))
    matcher = make_matcher(stol=stol, angle_tol=angle_tol, ltol=ltol)
    unique: list[bool] = []
    calls = 0
    for i, q in enumerate(items):
        if q is None:
            unique.append(False)
            continue
        cand, _ = pool.candidates(q, ltol, same_space_group, None)
        hit = False
        for j in cand:
            j = int(j)
            if j >= i or not unique[j]:
                continue
            calls += 1
            if match_reduced(matcher, items[j], q, best=False) is not None:
                hit = True
                break
        unique.append(not hit)
    return unique, calls


def novelty_uniqueness(generated: Sequence, training: Sequence, valid: Sequence[bool] | None = None,
                       n_max: int | None = NOVELTY_SAMPLE, seed: int = 0,
                       tolerances: dict[str, dict] | None = None,
                       training_reduced: Sequence | None = None, progress: bool = False) -> dict:
    """Uniqueness and novelty (percent) of ``generated`` against ``training``.

    Args:
        generated: pymatgen structures (``None`` = a failed sample).
        training: the crystals the model was trained on (pymatgen structures).
        valid: per generated crystal, whether it is valid; only valid ones are scored (default:
            every non-``None`` one).
        n_max: score a seeded subsample of at most this many valid crystals (``None``: all).
        seed: seed of that subsample.
        tolerances: name → ``{"stol", "ltol", "angle_tol", "same_space_group"}`` (default: the
            literature setting and the strict one of :data:`DUPLICATE_TOLERANCES`).
        training_reduced: :func:`reduce_all` of ``training`` (to reuse between calls).

    Returns a JSON-able dict: ``n_scored``, ``n_valid``, ``seed``, and per tolerance setting
    ``unique_pct``, ``novel_pct`` (of the scored crystals), ``unique_and_novel_pct``,
    ``novel_of_unique_pct`` and the matcher settings.
    """
    tolerances = tolerances or DUPLICATE_TOLERANCES
    gen = list(generated)
    ok = np.array([s is not None for s in gen]) if valid is None else np.asarray(valid, dtype=bool) & \
        np.array([s is not None for s in gen])
    if len(ok) != len(gen):
        raise ValueError(f"novelty_uniqueness: {len(ok)} validity flags for {len(gen)} structures")
    idx = np.flatnonzero(ok)
    if n_max is not None and len(idx) > n_max:
        idx = np.sort(np.random.default_rng(seed).choice(idx, size=n_max, replace=False))
    need_sg = any(t.get("same_space_group") for t in tolerances.values())
    t0 = time.perf_counter()
    red = reduce_all([gen[i] for i in idx], space_group=need_sg, progress=progress, desc="reducing generated")
    train_red = list(training_reduced) if training_reduced is not None else reduce_all(
        list(training), space_group=need_sg, progress=progress, desc="reducing training")
    out: dict = {"n_generated": len(gen), "n_valid": int(ok.sum()), "n_scored": int(len(idx)),
                 "n_training": len(train_red), "seed": int(seed), "n_max": n_max,
                 "scored_indices": [int(i) for i in idx], "settings": {}}
    for name, tol in tolerances.items():
        sg = bool(tol.get("same_space_group"))
        unique, calls_u = _unique_flags(red, tol["stol"], tol["ltol"], tol["angle_tol"], sg)
        res = cross_match(red, train_red, stol=tol["stol"], ltol=tol["ltol"], angle_tol=tol["angle_tol"],
                          same_space_group=sg, best=False, progress=progress, desc=f"novelty ({name})")
        novel = [r is not None and m is None for r, m in zip(red, res["index"])]
        n = max(len(red), 1)
        both = [u and v for u, v in zip(unique, novel)]
        out["settings"][name] = {
            "matcher": {"stol": tol["stol"], "ltol": tol["ltol"], "angle_tol": tol["angle_tol"],
                        "primitive_cell": True, "scale": True},
            "same_space_group": sg,
            **({"space_group": SPACE_GROUP_SETTINGS} if sg else {}),
            "unique_pct": 100.0 * sum(unique) / n,
            "novel_pct": 100.0 * sum(novel) / n,
            "unique_and_novel_pct": 100.0 * sum(both) / n,
            "novel_of_unique_pct": 100.0 * sum(both) / max(sum(unique), 1),
            "n_matcher_calls": calls_u + res["n_matcher_calls"],
        }
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def unseen_elements(generated: list, training: list) -> dict:
    """How many generated structures hold an element that no training crystal holds, and which.

    ``generated`` may contain ``None`` (failed samples, not counted). Returns ``n_samples``,
    ``pct`` (of the structures that exist) and ``elements`` (symbol → structures holding it).
    """
    seen = {el.symbol for s in training for el in s.composition.elements}
    found = [sorted({el.symbol for el in s.composition.elements} - seen) for s in generated if s is not None]
    counts: dict[str, int] = {}
    for els in found:
        for el in els:
            counts[el] = counts.get(el, 0) + 1
    n_bad = sum(bool(els) for els in found)
    return {"n_samples": n_bad, "pct": 100.0 * n_bad / len(found) if found else 0.0,
            "elements": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))}
