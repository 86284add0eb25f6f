"""What uniqueness and novelty real crystals score: the reference row beside a generator's.

Real crystals of the official ``test`` split (a seeded sample) are scored exactly as generated ones
(:func:`tgdmat.metrics.novelty.novelty_uniqueness`) against this project's training split (official
``val`` minus the seeded held-out slice). On a data set full of repeated structures (Carbon-24)
even real, never-trained-on crystals are rarely "novel" at the literature's tolerances, so a
generator's novelty has to be read against this row.

Usage::

    python benchmarks/bench_novelty_reference.py --dataset carbon_24 --n 1000 --out results/novelty_reference_carbon_24.json
"""
from __future__ import annotations

import argparse
import time


def main(argv=None) -> int:
    from tgdmat.data import load_dataset, load_splits
    from tgdmat.metrics.novelty import novelty_uniqueness
    from tgdmat.provenance import write_result

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, choices=["perov_5", "carbon_24"])
    ap.add_argument("--n", type=int, default=1000, help="test crystals scored (seeded sample)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--holdout-fraction", type=float, default=0.1)
    ap.add_argument("--holdout-seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    splits = load_splits(args.dataset, holdout_fraction=args.holdout_fraction, seed=args.holdout_seed)
    test = load_dataset(args.dataset, "test")
    res = novelty_uniqueness(test.structures(), splits.train.structures(), n_max=args.n, seed=args.seed)
    res.pop("scored_indices")
    write_result({"task": "novelty reference", "dataset": args.dataset, "split": "test",
                  "training_split": f"{splits.train.split} ({len(splits.train)} crystals)",
                  "what": "real test crystals scored as if generated", **res,
                  "seconds_total": round(time.perf_counter() - t0, 1)},
                 args.out, split="test", dataset=args.dataset)
    for name, s in res["settings"].items():
        print(name, {k: round(v, 2) for k, v in s.items() if k.endswith("_pct")})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
