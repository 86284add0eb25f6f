"""Load time of every shipped data file, cold (parse CIFs) and cached (processed .npz), in a fresh cache.

    python benchmarks/bench_data.py
"""
from __future__ import annotations

import json
import os
import tempfile
import time


def main() -> int:
    os.environ["TGDMAT_CACHE"] = tempfile.mkdtemp(prefix="tgdmat-bench-")
    from tgdmat.benchmark import write_result
    from tgdmat.data import load_dataset
    from tgdmat.provenance import hardware

    import torch

    rows = []
    for name in ("perov_5", "carbon_24"):
        for split in ("val", "test"):
            t0 = time.perf_counter()
            ds = load_dataset(name, split, progress=False)
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            load_dataset(name, split, progress=False)
            cached = time.perf_counter() - t0
            t0 = time.perf_counter()
            ds.batch()
            batching = time.perf_counter() - t0
            rows.append({"file": f"{name}/{split}", "rows": len(ds), "cold_s": round(cold, 2),
                         "cached_s": round(cached, 4), "batch_all_s": round(batching, 2)})
            print(json.dumps(rows[-1]))
    write_result({"rows": rows, "hardware": hardware(torch.device("cpu"))}, "results/bench_data.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
