"""Choose the generation sampler on the held-out slice: steps, corrector step size, lattice noise.

For one generation checkpoint this draws ``--n`` unconditioned crystals per sampler setting (atom
counts drawn from the training split, as in the 10,000-sample protocol of CDVAE/DiffCSP, seeded
the same way for every setting) and scores them against the **held-out slice** (the seeded 10 %
of the official ``val`` split that training never saw) with the generation metrics of the test
table: validity, COV-R / COV-P at CDVAE's cut-offs and the density distance. The test split is
not read. Beside the settings, a real-data row: ``--n`` crystals of the training split scored the
same way against the held-out slice — what a generator that reproduces the training
distribution would reach at this reference size (both coverages depend on the slice's size, so
read the columns against that row, not against the test table).

Each row records network evaluations per crystal and seconds per crystal on this machine, so the
step count at which the metrics stop improving can be read off with its cost.

Usage::

    python benchmarks/bench_gen_steps.py --checkpoint results/checkpoints/carbon_24_gen_text_facts.pt \\
        --steps 100 300 1000 --n 256 --out results/sampler_holdout_carbon_24_gen_steps.json
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def score(structures, reference, dataset: str, seed: int) -> dict:
    """Validity, COV and the density distance of ``structures`` against ``reference`` (no predictor)."""
    from tgdmat import metrics

    res = metrics.evaluate_generation(structures, reference, dataset, seed=seed, n_samples=len(structures),
                                      predictor=None, progress=False)
    c = res["coverage"]["standard"]
    return {"struct_valid_pct": res["validity"]["struct_valid_pct"], "valid_pct": res["validity"]["valid_pct"],
            "cov_r_pct": c["cov_recall_pct"], "cov_p_pct": c["cov_precision_pct"],
            "amsd_precision": c.get("amsd_precision"), "amsd_recall": c.get("amsd_recall"),
            "wdist_density": res["property_stats"]["wdist_density"]}


def main(argv=None) -> int:
    from tgdmat.benchmark import step_lr_arg, torch_threads, write_result
    from tgdmat.sample import from_pretrained
    from tgdmat.data import model_splits
    from tgdmat.diffusion.time import TIME_SPACINGS
    from tgdmat.sample_set import training_requests

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--n", type=int, default=256, help="crystals per setting (and in the real-data row)")
    ap.add_argument("--steps", type=int, nargs="+", default=[100])
    ap.add_argument("--step-lr", type=step_lr_arg, nargs="+", default=[None], metavar="LR",
                    help="Langevin corrector step sizes to try ('default': the data set's)")
    ap.add_argument("--lattice-eta", type=float, nargs="+", default=[1.0],
                    help="lattice reverse-step noise scales (1: DDPM ancestral, 0: deterministic)")
    ap.add_argument("--time-spacing", nargs="+", default=["uniform"], choices=TIME_SPACINGS)
    ap.add_argument("--limit-reference", type=int, default=None, metavar="N",
                    help="only the first N crystals of the held-out slice (quick checks; COV depends on it)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.n < 1:
        ap.error(f"--n must be >= 1, got {args.n}")
    torch_threads(args.threads)
    gen = from_pretrained(args.checkpoint, device="cpu", task="gen")
    cfg = gen.config
    dataset = cfg.model.dataset
    splits = model_splits(cfg, progress=False)
    n_ref = len(splits.val) if args.limit_reference is None else min(args.limit_reference, len(splits.val))
    if n_ref < 1:
        ap.error(f"--limit-reference must be >= 1, got {args.limit_reference}")
    holdout = [splits.val.structure(i) for i in range(n_ref)]
    rng = np.random.default_rng(args.seed)
    real_idx = rng.choice(len(splits.train), size=min(args.n, len(splits.train)), replace=False)
    real = score([splits.train.structure(int(i)) for i in real_idx], holdout, dataset, args.seed)
    print({"setting": "real training crystals", **real}, flush=True)
    # the same atom counts for every setting: the draw of the 10,000-sample protocol
    counts = training_requests(gen, args.n, seed=args.seed).num_atoms
    rows = []
    for steps, lr, eta, spacing in itertools.product(args.steps, args.step_lr, args.lattice_eta, args.time_spacing):
        t0 = time.perf_counter()
        made = gen.generate(None, n=args.n, num_atoms=counts, progress=False, num_steps=steps, step_lr=lr,
                            lattice_eta=eta, time_spacing=spacing, seed=args.seed)
        seconds = time.perf_counter() - t0
        sc = gen.settings(num_steps=steps, step_lr=lr, lattice_eta=eta, time_spacing=spacing)
        rows.append({"num_steps": steps, "step_lr": lr, "step_lr_used": cfg.step_lr() if lr is None else lr,
                     "lattice_eta": eta, "time_spacing": spacing, "corrector": sc.corrector,
                     "network_evaluations": steps * (2 if sc.corrector else 1) * (2 if sc.guidance_scale != 1 else 1),
                     "seconds_per_crystal": seconds / args.n, **score(made, holdout, dataset, args.seed)})
        print(rows[-1], flush=True)
    write_result({"checkpoint": args.checkpoint, "split": f"{splits.val.name}/{splits.val.split}",
                  "n_reference": len(holdout), "n_per_setting": args.n, "seed": args.seed,
                  "note": ("unconditioned samples, atom counts drawn from the training split (the same draw for "
                           "every setting), scored against the held-out slice; the test split is not read"),
                  "real_training_crystals": real, "rows": rows}, args.out, generator=gen, checkpoint=[args.checkpoint])
    return 0


if __name__ == "__main__":
    from tgdmat.cli.main import run_script

    raise SystemExit(run_script(main))
