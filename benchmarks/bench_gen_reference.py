"""The real-data band of the generation metrics: real crystals scored as if they were generated.

For several seeds, ``--n`` crystals are drawn from the official ``val`` split (real crystals of the
training distribution; this project trains on ``val`` minus a held-out slice) and scored against
the official ``test`` split with exactly the metrics and settings used for generated crystals
(:func:`tgdmat.metrics.evaluate_generation`). The spread over seeds is the band a perfect
generator would land in; with ~1,000 samples the density and #element distances are already at
that floor, which is why the book prints the band beside them.

    python benchmarks/bench_gen_reference.py --dataset perov_5 --seeds 0 1 2 3 4 --out results/gen_reference_perov_5.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from tgdmat import metrics
    from tgdmat.data import load_dataset
    from tgdmat.provenance import write_result

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="perov_5", choices=["perov_5", "carbon_24"])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--predictor", default="cdvae", choices=["cdvae", "none"])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    val = load_dataset(args.dataset, "val", progress=False)
    test = load_dataset(args.dataset, "test", progress=False)
    test_structures = test.structures()
    rows = []
    for seed in args.seeds:
        idx = np.random.default_rng(seed).choice(len(val), size=min(args.n, len(val)), replace=False)
        real = [val.structure(int(i)) for i in idx]
        res = metrics.evaluate_generation(real, test_structures, args.dataset, seed=seed, n_samples=args.n,
                                          predictor=None if args.predictor == "none" else args.predictor,
                                          workers=args.workers, progress=False)
        rows.append({"seed": seed, **metrics.summary_row(res)})
        print(rows[-1], flush=True)
    keys = [k for k in rows[0] if k != "seed"]
    band = {k: {"min": min(r[k] for r in rows if r[k] is not None), "max": max(r[k] for r in rows if r[k] is not None)}
            for k in keys if all(r[k] is not None for r in rows)}
    write_result({"dataset": args.dataset, "split": "test", "generated_from": f"{args.dataset}/val (real crystals)",
                  "n_per_seed": args.n, "rows": rows, "band": band}, args.out, split="test", dataset=args.dataset)
    print("band:", band)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
