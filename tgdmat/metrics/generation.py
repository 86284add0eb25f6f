"""One-call evaluation of generated crystals (and, re-exported, of CSP predictions).

``evaluate_generation`` follows CDVAE's / DiffCSP's ``GenEval`` and adds prompt fidelity:

1. validity of every generated crystal (structural, compositional; ``None`` is invalid), at
   most ``validity_time_limit_s`` per crystal (a crystal past it is skipped: counted invalid
   and listed);
2. fingerprints of generated and reference crystals (cached; CrystalNN failures make a crystal
   invalid, as in the papers: ``valid`` = structural ∧ compositional ∧ fingerprint);
3. COV-R / COV-P over *all* generated crystals with the standard cut-offs, and the same with
   TGDMat's looser cut-offs under a separate, labelled key;
4. ``n_samples`` (1,000) valid crystals drawn with ``seed``: Wasserstein distances of density,
   number of elements and (with a predictor) the property against every reference crystal,
   and CDVAE's fingerprint diversities;
5. prompt fidelity, if prompt facts are given (invalid crystals count as misses; symmetry
   facts are looked for on a ladder of tolerances up to ``symprec``, see ``fidelity.py``).

All rates are percentages (keys ending ``_pct``).
"""
from __future__ import annotations

import time
from collections.abc import Sequence

from .coverage import compute_coverage, compute_fingerprints, cov_cutoffs, fingerprint_diversity
from .csp import evaluate_csp
from .fidelity import prompt_fidelity
from .stats import predictor_info, resolve_predictor, sample_valid_indices, wasserstein_stats
from .validity import validity_arrays

__all__ = ["evaluate_generation", "evaluate_csp"]


def evaluate_generation(
    gen_structures: Sequence,
    test_structures: Sequence,
    dataset: str,
    prompts_facts: Sequence | None = None,
    predictor=None,
    seed: int = 0,
    n_samples: int = 1000,
    comp_scaler: str = "cdvae",
    symprec: float | Sequence[float] = 0.1,
    angle_tolerance: float = 5.0,
    workers: int | None = None,
    cache: bool = True,
    progress: bool = True,
    test_fingerprints=None,
    validity_time_limit_s: float | None = 2.0,
    training_structures: Sequence | None = None,
    novelty_max: int | None = 1000,
) -> dict:
    """Generation metrics of ``gen_structures`` against ``test_structures``.

    Args:
        gen_structures: N generated pymatgen ``Structure``s (``None`` = a failed sample).
        test_structures: M reference crystals (the test split).
        dataset: ``"perov_5"``, ``"carbon_24"`` or ``"mp_20"`` (chooses the COV cut-offs).
        prompts_facts: optional N prompt-fact objects/dicts (see ``fidelity.py``).
        predictor: ``predict(list[Structure]) -> np.ndarray [n]``, ``"cdvae"`` (load CDVAE's
            property model if installed) or ``None``; when unavailable the property column is
            reported missing with the reason.
        seed: seed of the draw of ``n_samples`` valid crystals for the Wasserstein statistics.
        comp_scaler: ``"cdvae"`` (the papers' fixed standardisation) or ``"reference"``.
        symprec: loosest distance tolerance (Å) of prompt fidelity's symmetry ladder, or the
            ladder itself (0.1 -> 0.01, 0.02, 0.05, 0.1 Å; see ``fidelity.symprec_ladder``).
        angle_tolerance: angle tolerance of prompt fidelity (degrees).
        workers, cache, progress: fingerprint process count, disk cache, progress bars.
        test_fingerprints: precomputed ``Fingerprints`` of ``test_structures`` (optional).
        validity_time_limit_s: seconds the validity checks of one crystal may take (None: no
            limit); ``validity`` reports ``skipped_count``, ``skipped_indices`` and
            ``time_limit_s``.
        training_structures: the crystals the model was trained on; when given, uniqueness and
            novelty of (a seeded subsample of at most ``novelty_max``) valid generated crystals
            are reported (:func:`tgdmat.metrics.novelty.novelty_uniqueness`).

    Returns a JSON-serialisable dict with ``validity``, ``coverage`` (``standard`` and
    ``tgdmat_loose_cutoffs``), ``property_stats``, ``diversity``, ``fidelity`` (or ``None``),
    ``n_generated``, ``n_reference`` and ``timings_s``.
    """
    timings: dict[str, float] = {}
    gen = list(gen_structures)
    ref = list(test_structures)
    if not gen:
        raise ValueError("evaluate_generation: no generated structures")
    if not ref:
        raise ValueError("evaluate_generation: no test structures")
    if prompts_facts is not None and len(prompts_facts) != len(gen):
        raise ValueError(f"evaluate_generation: {len(prompts_facts)} prompt facts for {len(gen)} structures")
    standard = cov_cutoffs(dataset, "standard")
    loose = cov_cutoffs(dataset, "tgdmat")

    t = time.perf_counter()
    val = validity_arrays(gen, progress=progress, time_limit_s=validity_time_limit_s)
    timings["validity"] = time.perf_counter() - t

    t = time.perf_counter()
    fp_gen = compute_fingerprints(gen, workers=workers, cache=cache, progress=progress, desc="fingerprints (generated)")
    timings["fingerprints_generated"] = time.perf_counter() - t
    t = time.perf_counter()
    fp_ref = test_fingerprints
    if fp_ref is None:
        fp_ref = compute_fingerprints(ref, workers=workers, cache=cache, progress=progress, desc="fingerprints (test)")
    elif len(fp_ref) != len(ref):
        raise ValueError(f"test_fingerprints has {len(fp_ref)} rows for {len(ref)} test structures")
    timings["fingerprints_test"] = time.perf_counter() - t

    valid = val["valid"] & fp_gen.ok
    validity = {
        "comp_valid_pct": float(100.0 * val["compositional"].mean()),
        "struct_valid_pct": float(100.0 * val["structural"].mean()),
        "valid_pct": float(100.0 * valid.mean()),
        "n_missing": int(sum(s is None for s in gen)),
        "n_fingerprint_failed": int(fp_gen.stats.get("failed", 0)),
        "skipped_count": int(val["skipped"].sum()),
        "skipped_indices": [int(i) for i in val["skipped"].nonzero()[0]],
        "time_limit_s": validity_time_limit_s,
    }

    t = time.perf_counter()
    cov = {
        "standard": compute_coverage(fp_gen, fp_ref, standard["struc"], standard["comp"], comp_scaler),
        "tgdmat_loose_cutoffs": compute_coverage(fp_gen, fp_ref, loose["struc"], loose["comp"], comp_scaler),
    }
    timings["coverage"] = time.perf_counter() - t

    t = time.perf_counter()
    idx = sample_valid_indices(valid, n_samples, seed)
    sample = [gen[i] for i in idx]
    pred_fn, missing = resolve_predictor(dataset, predictor, progress=progress)
    if len(sample) == 0:
        stats = {"wdist_density": None, "wdist_num_elems": None, "wdist_prop": None,
                 "prop_status": "missing: no valid generated crystal"}
    else:
        stats = wasserstein_stats(sample, ref, pred_fn, missing)
    stats.update(n_valid_samples=int(len(idx)), n_samples_requested=int(n_samples), seed=int(seed),
                 predictor=predictor_info(pred_fn) if pred_fn is not None else None)
    if len(idx) < n_samples:
        stats["note"] = f"only {len(idx)} valid crystals; the papers use {n_samples}"
    timings["property_stats"] = time.perf_counter() - t
    diversity = fingerprint_diversity(fp_gen.subset(idx), comp_scaler, fp_ref) if len(idx) else {}

    fidelity = None
    if prompts_facts is not None:
        t = time.perf_counter()
        fidelity = prompt_fidelity(gen, prompts_facts, symprec=symprec, angle_tolerance=angle_tolerance,
                                   valid=valid)
        timings["fidelity"] = time.perf_counter() - t

    novelty = None
    if training_structures is not None:
        from tgdmat.metrics.novelty import novelty_uniqueness

        t = time.perf_counter()
        novelty = novelty_uniqueness(gen, training_structures, valid=valid, n_max=novelty_max, seed=seed,
                                     progress=progress)
        timings["novelty"] = time.perf_counter() - t

    return {
        "dataset": dataset,
        "n_generated": len(gen),
        "n_reference": len(ref),
        "validity": validity,
        "coverage": cov,
        "property_stats": stats,
        "diversity": diversity,
        "fidelity": fidelity,
        "novelty": novelty,
        "fingerprint_cache": {"generated": fp_gen.stats, "test": fp_ref.stats},
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }


def summary_row(metrics: dict) -> dict:
    """Flatten ``evaluate_generation`` output into the papers' table columns."""
    v, c, s = metrics["validity"], metrics["coverage"]["standard"], metrics["property_stats"]
    row = {
        "struct_valid_pct": v["struct_valid_pct"], "comp_valid_pct": v["comp_valid_pct"],
        "cov_r_pct": c["cov_recall_pct"], "cov_p_pct": c["cov_precision_pct"],
        "wdist_density": s["wdist_density"], "wdist_prop": s["wdist_prop"], "wdist_num_elems": s["wdist_num_elems"],
    }
    fid = metrics.get("fidelity")
    if fid:
        for f in ("formula", "elements", "crystal_system", "space_group"):
            row[f"{f}_match_pct"] = fid[f"{f}_match_pct"]
    nov = metrics.get("novelty")
    if nov:
        lit = nov["settings"]["literature"]
        row.update(unique_pct=lit["unique_pct"], novel_pct=lit["novel_pct"],
                   unique_and_novel_pct=lit["unique_and_novel_pct"])
    return row
