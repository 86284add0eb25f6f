"""Training and sampling throughput, and CSP match rate against the number of sampling steps.

Prints numbers and writes ``results/bench_train_sample.json`` (command, commit, hardware, seed).

* training throughput: crystals per second of full optimisation steps (forward, backward, AdamW)
  for the ``quick`` and ``paper`` network sizes, Perov-5 batches, measured after a warm-up;
* sampling throughput: crystals per second of the predictor–corrector chain at several step
  counts (the paper's 1000 steps = 2000 network evaluations per crystal);
* match rate against steps: CSP with a trained checkpoint on the first ``--csp-targets`` crystals
  of the official Perov-5 test split, one sample each, for each step count.

Usage::

    python benchmarks/bench_train_sample.py --checkpoint results/checkpoints/perov_5_csp_quick.pt
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import torch


def train_throughput(preset_name: str, dataset, batch_size: int, steps: int, device) -> dict:
    from tgdmat.config import preset
    from tgdmat.model import TGDMat

    cfg = preset(preset_name, dataset=dataset.name, task="csp")
    model = TGDMat(cfg.model, text_dim=384).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    batch = dataset.batch(range(batch_size))
    cond = torch.randn(batch_size, 384)

    def step():
        noise = model.draw_noise(batch, gen)
        loss = model.loss(batch.to(device), cond.to(device), _to(noise, device))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dt = (time.perf_counter() - t0) / steps
    params = sum(p.numel() for p in model.parameters())
    return {"preset": preset_name, "batch_size": batch_size, "seconds_per_step": dt,
            "crystals_per_second": batch_size / dt, "parameters": params}


def _to(noise, device):
    from tgdmat.model import Noise

    return Noise(*(getattr(noise, f).to(device) for f in ("t", "eps_lattice", "eps_frac", "type_uniform", "drop_cond")))


def sample_throughput(gen, dataset, n: int, steps: int) -> dict:
    targets = dataset.subset(range(n)).structures()
    t0 = time.perf_counter()
    gen.sample_csp(targets, n_samples=1, progress=False, num_steps=steps, batch_size=n)
    dt = time.perf_counter() - t0
    return {"steps": steps, "network_evaluations_per_crystal": 2 * steps, "crystals": n, "seconds": dt,
            "crystals_per_second": n / dt}


def main(argv=None) -> int:
    from tgdmat.benchmark import csp_benchmark, write_result
    from tgdmat.data import load_dataset
    from tgdmat.sample import from_pretrained
    from tgdmat.provenance import hardware

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="results/checkpoints/perov_5_csp_quick.pt")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--train-steps", type=int, default=5)
    ap.add_argument("--sample-crystals", type=int, default=64)
    ap.add_argument("--sample-steps", type=int, nargs="+", default=[1000, 250, 100, 50])
    ap.add_argument("--csp-targets", type=int, default=200)
    ap.add_argument("--csp-steps", type=int, nargs="+", default=[25, 50, 100, 250, 1000])
    ap.add_argument("--skip-paper", action="store_true", help="skip the paper-size training step (slow on CPU)")
    ap.add_argument("--out", default="results/bench_train_sample.json")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    test = load_dataset("perov_5", "test", progress=False)
    out = {"device": str(device), "hardware": hardware(device), "threads": torch.get_num_threads(), "seed": 0}
    torch.manual_seed(0)
    out["training"] = [train_throughput("quick", test, 64, args.train_steps, device)]
    if not args.skip_paper:
        out["training"].append(train_throughput("paper", test, 64, max(1, args.train_steps // 2), device))
    for row in out["training"]:
        print(f"train {row['preset']:6s}: {row['crystals_per_second']:.1f} crystals/s ({row['parameters']:,} parameters)")
    gen = from_pretrained(args.checkpoint, device=device)
    gen.config.sample = dataclasses.replace(gen.config.sample, seed=0)
    out["sampling"] = []
    for steps in args.sample_steps:
        row = sample_throughput(gen, test, args.sample_crystals, steps)
        out["sampling"].append(row)
        print(f"sample {steps:4d} steps: {row['crystals_per_second']:.2f} crystals/s")
    out["csp_vs_steps"] = []
    for steps in args.csp_steps:
        res = csp_benchmark(gen, test, n_samples=1, limit=args.csp_targets, progress=False, num_steps=steps)
        m = res["metrics"]
        out["csp_vs_steps"].append({"steps": steps, "match_rate_pct": m["match_rate_pct"], "rmse": m["rmse"],
                                    "targets": res["n_targets"], "sampling_seconds": res["seconds"]["sampling"]})
        print(f"CSP {steps:4d} steps: match {m['match_rate_pct']:.1f} %, RMSE {m['rmse']}")
    out["checkpoint"] = args.checkpoint
    write_result(out, args.out, checkpoint=args.checkpoint)
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
