"""Choose sampling settings on the held-out slice, never on the test split.

For one CSP checkpoint, this draws one structure per crystal of the held-out slice (the seeded
10 % of the official ``val`` split that training never saw, and that already selected the
checkpoint) for each combination of classifier-free guidance scale ``w``, number of sampling
steps and template start time ``t0`` (0 = no template: the chain starts from the prior; otherwise
from the nearest *training* crystal noised to ``t0``), and reports the match rate and RMSE of each. The best setting is then run once on the
official ``test`` split with ``python -m tgdmat csp --guidance W --steps S``.

Usage::

    python benchmarks/bench_sampler_holdout.py --checkpoint results/checkpoints/perov_5_csp_long_text_facts.pt \
        --guidance 1 1.5 2 3 --steps 100 --out results/sampler_holdout_perov_5_long_text_facts.json
"""
from __future__ import annotations

import argparse
import itertools
import time

import torch


def main(argv=None) -> int:
    from tgdmat.benchmark import csp_benchmark, step_lr_arg, write_result
    from tgdmat.data import model_splits
    from tgdmat.diffusion.time import TIME_SPACINGS
    from tgdmat.sample import from_pretrained

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--guidance", type=float, nargs="+", default=[1.0, 1.5, 2.0, 3.0])
    ap.add_argument("--steps", type=int, nargs="+", default=[100])
    ap.add_argument("--template-t", type=int, nargs="+", default=[0],
                    help="template start times t0 to try (0: no template)")
    ap.add_argument("--property-guide", default=None, metavar="CHECKPOINT",
                    help="noise-aware property predictor (python -m tgdmat.guidance) for property guidance")
    ap.add_argument("--guide-scale", type=float, nargs="+", default=[0.0],
                    help="property-guidance strengths to try (0: unguided; needs --property-guide otherwise)")
    ap.add_argument("--step-lr", type=step_lr_arg, nargs="+", default=[None], metavar="LR",
                    help="Langevin corrector step sizes at sigma_1 to try ('default': the data set's)")
    ap.add_argument("--lattice-eta", type=float, nargs="+", default=[1.0],
                    help="lattice reverse-step noise scales to try (1: DDPM ancestral, 0: deterministic)")
    ap.add_argument("--time-spacing", nargs="+", default=["uniform"], choices=TIME_SPACINGS,
                    help="how the steps are spread over the chain (quadratic: short steps near t = 0)")
    ap.add_argument("--no-corrector", action="store_true", help="predictor only (one network evaluation per step)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N held-out crystals")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = from_pretrained(args.checkpoint, device="cpu")
    cfg = gen.config
    splits = model_splits(cfg, progress=False)
    if any(g != 0 for g in args.guide_scale) and not args.property_guide:
        ap.error("--guide-scale other than 0 needs --property-guide")
    rows = []
    grid = itertools.product(args.template_t, args.steps, args.guidance, args.guide_scale, args.step_lr,
                             args.lattice_eta, args.time_spacing)
    for t0, steps, w, gamma, lr, eta, spacing in grid:
        t_start = time.perf_counter()
        guide = {} if not gamma else {"property_guide": args.property_guide, "guide_scale": gamma}
        res = csp_benchmark(gen, splits.val, n_samples=1, limit=args.limit, progress=False, guidance_scale=w,
                            num_steps=steps, template_t=t0 or None, step_lr=lr, lattice_eta=eta,
                            time_spacing=spacing, corrector=not args.no_corrector, **guide)
        m = res["metrics"]
        rows.append({"template_t": t0, "guidance_scale": w, "num_steps": steps, "property_guide_scale": gamma,
                     "step_lr": res["sampling"].get("step_lr_used", lr), "lattice_eta": eta,
                     "time_spacing": spacing, "corrector": not args.no_corrector,
                     "network_evaluations": steps * (2 if not args.no_corrector else 1) * (2 if w != 1 else 1),
                     "match_rate_pct": m["match_rate_pct"], "rmse": m["rmse"],
                     "rms_distribution": m.get("rms_distribution"),
                     "n_comparable_predictions": m["n_comparable_predictions"], "n_targets": m["n_targets"],
                     "templates": res.get("templates"), "seconds": time.perf_counter() - t_start})
        print({k: v for k, v in rows[-1].items() if k not in ("templates", "rms_distribution")}, flush=True)
    best = max(rows, key=lambda r: (r["match_rate_pct"], -(r["rmse"] or 1e9)))
    ck = [args.checkpoint] + ([args.property_guide] if args.property_guide else [])
    write_result({"checkpoint": args.checkpoint, "split": f"{splits.val.name}/{splits.val.split}",
                  "property_guide": args.property_guide,
                  "note": "sampler settings chosen on the held-out slice; the test split is run once with the best",
                  "rows": rows, "best": best}, args.out, generator=gen, checkpoint=ck)
    print("best:", best)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
