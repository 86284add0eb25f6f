"""Evaluation time per 1,000 crystals for each metric of tgdmat.metrics, fingerprint cache cold/warm.

Each metric runs in this process (workers=1) on ``--n`` crystals of a shipped test split and is
scaled to 1,000; both wall time and this process's CPU time are printed, because the project's
machines are shared (wall time under load can be several times the CPU time). The cold
fingerprint pass is also timed with ``--workers`` processes (wall time only). Writes
``results/bench_metrics.json`` (command, commit, config, versions, hardware, numbers).

    python benchmarks/bench_metrics.py                 # 60 Perov-5 + 30 Carbon-24 crystals
    python benchmarks/bench_metrics.py --n 200 --workers 2
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


class Timer:
    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.w
        self.cpu = time.process_time() - self.c

    def per_1k(self) -> dict:
        return {"wall_s_per_1k": round(1000 * self.wall / self.n, 2),
                "cpu_s_per_1k": round(1000 * self.cpu / self.n, 2)}


class TempCache:
    """Point ``TGDMAT_CACHE`` at a fresh folder for the block, then restore it."""

    def __enter__(self):
        from tgdmat.metrics import coverage as cov_mod

        self.old = os.environ.get("TGDMAT_CACHE")
        self.tmp = tempfile.TemporaryDirectory()
        os.environ["TGDMAT_CACHE"] = self.tmp.name
        cov_mod.fingerprint_version.cache_clear()
        return self

    def __exit__(self, *exc):
        if self.old is None:
            os.environ.pop("TGDMAT_CACHE", None)
        else:
            os.environ["TGDMAT_CACHE"] = self.old
        self.tmp.cleanup()


def bench_dataset(name: str, n: int, workers: int, seed: int) -> dict:
    from tgdmat import metrics
    from tgdmat.data import load_dataset
    from tgdmat.metrics import coverage as cov_mod
    from tgdmat.metrics import validity as val_mod

    ds = load_dataset(name, "test", progress=False)
    idx = np.sort(np.random.default_rng(seed).choice(len(ds), n, replace=False))
    structures = [ds.structure(int(i)) for i in idx]
    out: dict = {"n": n, "mean_atoms": float(np.mean([len(s) for s in structures]))}

    with Timer(n) as t:
        [metrics.structure_validity(s) for s in structures]
    out["structural_validity"] = t.per_1k()
    val_mod._smact_valid_cached.cache_clear()
    with Timer(n) as t:
        [metrics.smact_validity(s) for s in structures]
    out["smact_validity_cold"] = t.per_1k()

    with TempCache():
        metrics.fingerprint_one(structures[0])  # featurizer construction is not per crystal
        with Timer(n) as t:
            fp = metrics.compute_fingerprints(structures, workers=1, progress=False)
        out["fingerprints_cold_1proc"] = t.per_1k()
        with Timer(n) as t:
            metrics.compute_fingerprints(structures, workers=1, progress=False)
        out["fingerprints_warm"] = t.per_1k()
    if workers > 1:
        with TempCache():
            import tgdmat.parallel as par

            old = par.MIN_ITEMS_FOR_POOL
            par.MIN_ITEMS_FOR_POOL = 1
            try:
                with Timer(n) as t:
                    metrics.compute_fingerprints(structures, workers=workers, progress=False)
            finally:
                par.MIN_ITEMS_FOR_POOL = old
            out[f"fingerprints_cold_{workers}proc_wall_s_per_1k"] = round(1000 * t.wall / n, 2)

    # COV for 1,000 generated vs the full test split size, from fingerprints (tiled)
    reps_g = int(np.ceil(1000 / n))
    reps_r = int(np.ceil(len(ds) / n))
    gen = cov_mod.Fingerprints(np.tile(fp.structure, (reps_g, 1))[:1000], np.tile(fp.composition, (reps_g, 1))[:1000],
                               np.tile(fp.ok, reps_g)[:1000])
    ref = cov_mod.Fingerprints(np.tile(fp.structure, (reps_r, 1))[:len(ds)],
                               np.tile(fp.composition, (reps_r, 1))[:len(ds)], np.tile(fp.ok, reps_r)[:len(ds)])
    with Timer(1000) as t:
        metrics.compute_coverage(gen, ref, 0.2, 4.0)
    out[f"coverage_1k_vs_{len(ds)}"] = t.per_1k()

    from tgdmat.metrics import stats

    with Timer(n) as t:  # per-crystal part of the Wasserstein statistics; W1 itself is ~1 ms
        metrics.wasserstein(stats.densities(structures), stats.num_elements(structures))
    out["wasserstein_density_nelems"] = t.per_1k()

    with Timer(n) as t:
        metrics.prompt_fidelity(structures, [{"formula": s.composition.reduced_formula, "space_group": 1}
                                             for s in structures])
    out["prompt_fidelity_with_symmetry"] = t.per_1k()

    rng = np.random.default_rng(seed)
    perturbed = []
    for s in structures:
        p = s.copy()
        p.perturb(0.05)
        perturbed.append([p])
    with Timer(n) as t:
        r = metrics.evaluate_csp(perturbed, structures, workers=1, progress=False)
    out["csp_match_perturbed_pairs"] = {**t.per_1k(), "match_rate_pct": r["match_rate_pct"]}
    sys.path.insert(0, str(ROOT / "scripts"))
    from baselines import random_structure

    rand = [[random_structure(s.species, s.volume, rng)] for s in structures]
    with Timer(n) as t:
        r = metrics.evaluate_csp(rand, structures, workers=1, progress=False)
    out["csp_match_random_pairs"] = {**t.per_1k(), "match_rate_pct": r["match_rate_pct"]}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=60, help="Perov-5 crystals (Carbon-24 uses n/2)")
    p.add_argument("--workers", type=int, default=2, help="processes for the parallel cold-fingerprint timing")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "results" / "bench_metrics.json"))
    args = p.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(1)
    from tgdmat import provenance

    t0 = time.perf_counter()
    results = {
        "perov_5": bench_dataset("perov_5", args.n, args.workers, args.seed),
        "carbon_24": bench_dataset("carbon_24", max(2, args.n // 2), args.workers, args.seed),
    }
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    record = {
        "seed": args.seed,
        "config": vars(args),
        "load_average_at_end": load,
        "results": results,
        "total_wall_s": round(time.perf_counter() - t0, 1),
    }
    for name, res in results.items():
        print(f"== {name} (n={res['n']}, mean atoms {res['mean_atoms']:.1f}); seconds per 1,000 crystals")
        for k, v in res.items():
            if isinstance(v, dict):
                print(f"  {k:34s} wall {v['wall_s_per_1k']:9.2f}  cpu {v['cpu_s_per_1k']:9.2f}"
                      + (f"  (match {v['match_rate_pct']:.0f} %)" if "match_rate_pct" in v else ""))
            elif k.endswith("per_1k"):
                print(f"  {k:34s} wall {v:9.2f}")
    print(f"load average {load}")
    provenance.write_result(record, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
