"""Is one CSP model better than another? Paired per-target and across-seed comparisons.

Two match rates measured on the same ``T`` targets share their targets, so their difference is
known far better than each rate alone: with per-target hits ``a_i, b_i ∈ {0, 1}`` the difference
``Δ = mean(b_i − a_i)`` has the **paired** standard error ``sd(b_i − a_i) / √T`` (only the targets
one model finds and the other misses contribute; McNemar's setting). That is the sampling noise
of one draw per target.

A second noise source is the training run itself: two runs of one recipe that differ only in their
seed (initialisation, mini-batch order, dropout draws) give different models. With ``n`` seeds per
recipe, :func:`replicate_difference` compares the recipes by the mean of their runs, with the
standard error from the spread between runs (Welch), which already contains the draw noise.

:func:`paired_difference` reads the ``per_target`` block that :func:`tgdmat.benchmark.csp_benchmark`
writes into every CSP result (the material id of each target and the RMS of its best match, ``None``
for a miss); :func:`replicate_difference` takes one match rate per training run.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np


def per_target_hits(result: Mapping) -> dict[str, bool]:
    """``{material_id: hit}`` of a CSP result written by :func:`tgdmat.benchmark.csp_benchmark`."""
    block = result.get("per_target")
    if not block:
        where = result.get("command") or result.get("dataset") or "this result"
        raise ValueError(f"{where}: no per_target block (CSP results record it since it was added; re-make the file)")
    ids, rms = block["material_id"], block["rms"]
    if len(ids) != len(rms):
        raise ValueError(f"per_target: {len(ids)} material ids for {len(rms)} RMS values")
    if len(set(ids)) != len(ids):
        raise ValueError("per_target: a material id occurs twice")
    return {str(i): r is not None for i, r in zip(ids, rms)}


def paired_difference(a: Mapping, b: Mapping) -> dict:
    """Match rate of ``b`` minus that of ``a`` on the same targets, with its paired standard error.

    ``a``, ``b``: CSP results (or ``{"per_target": …}``) over the same set of targets; a target in
    one and not the other is an error naming it. Returns percentages: ``rate_a``, ``rate_b``,
    ``diff_pct`` (b − a), ``se_pct`` (paired), and the counts ``both``, ``only_a``, ``only_b``,
    ``neither``.
    """
    ha, hb = per_target_hits(a), per_target_hits(b)
    if set(ha) != set(hb):
        missing = sorted(set(ha) ^ set(hb))
        raise ValueError(f"paired_difference: the two results cover different targets (e.g. {missing[0]}; "
                         f"{len(missing)} differ)")
    ids = sorted(ha)
    x = np.array([ha[i] for i in ids], dtype=float)
    y = np.array([hb[i] for i in ids], dtype=float)
    d = y - x
    t = len(ids)
    se = float(d.std(ddof=1) / math.sqrt(t)) if t > 1 else float("nan")
    return {"n_targets": t, "rate_a": 100.0 * x.mean(), "rate_b": 100.0 * y.mean(),
            "diff_pct": 100.0 * d.mean(), "se_pct": 100.0 * se,
            "both": int(((x == 1) & (y == 1)).sum()), "only_a": int(((x == 1) & (y == 0)).sum()),
            "only_b": int(((x == 0) & (y == 1)).sum()), "neither": int(((x == 0) & (y == 0)).sum())}


def replicate_difference(rates_a: Sequence[float], rates_b: Sequence[float]) -> dict:
    """Recipe ``b`` minus recipe ``a`` from their training runs' match rates (one rate per seed).

    Returns the means, the sample standard deviations across seeds, ``diff`` (mean b − mean a), its
    Welch standard error ``se`` = √(sd_a²/n_a + sd_b²/n_b), the Welch–Satterthwaite degrees of
    freedom ``df`` and the 95 % interval ``ci95`` = diff ± t_{0.975, df} · se (with three runs per
    recipe t is near 2.8, not 2); at least two runs per recipe.
    """
    from scipy.stats import t as student_t

    a, b = np.asarray(rates_a, dtype=float), np.asarray(rates_b, dtype=float)
    if a.size < 2 or b.size < 2:
        raise ValueError(f"replicate_difference: at least 2 runs per recipe, got {a.size} and {b.size}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("replicate_difference: a match rate is not finite")
    sd_a, sd_b = float(a.std(ddof=1)), float(b.std(ddof=1))
    va, vb = sd_a**2 / a.size, sd_b**2 / b.size
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if se > 0 else float(a.size + b.size - 2)
    diff = float(b.mean() - a.mean())
    half = float(student_t.ppf(0.975, df)) * se
    return {"n_a": int(a.size), "n_b": int(b.size), "mean_a": float(a.mean()), "mean_b": float(b.mean()),
            "sd_a": sd_a, "sd_b": sd_b, "diff": diff, "se": se, "df": float(df), "ci95": (diff - half, diff + half)}
