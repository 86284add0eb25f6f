"""Forward/backward time and peak memory of the CSPNet denoiser vs crystal size (CPU).

Each (size, cond_mode) case runs in a fresh subprocess so that its peak resident memory
(``VmHWM`` minus the resident size just before the first forward pass) is its own.

    python benchmarks/bench_denoiser.py                      # sizes 5 20 24, batch 64, film
    python benchmarks/bench_denoiser.py --modes film concat --threads 2 --repeats 5

Prints a table and writes ``results/bench_denoiser.json`` (command, commit, seed, config,
versions, hardware, numbers).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tgdmat import provenance  # noqa: E402


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def run_case(n_atoms: int, batch_size: int, cond_mode: str, repeats: int, threads: int,
             seed: int) -> dict:
    """Time one configuration in this process; returns a JSON-able dict."""
    import torch

    from tgdmat.denoiser import CSPDenoiser, DenoiserConfig

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    cfg = DenoiserConfig(cond_mode=cond_mode)
    model = CSPDenoiser(cfg)
    n = n_atoms * batch_size
    batch = torch.repeat_interleave(torch.arange(batch_size), n_atoms)
    types = torch.softmax(torch.randn(n, cfg.num_atom_types), -1)       # noisy types, as in training
    frac = torch.rand(n, 3)
    lattice = 4.0 * torch.eye(3) + torch.randn(batch_size, 3, 3)
    t = torch.rand(batch_size)
    cond = torch.randn(batch_size, cfg.cond_dim)
    drop = torch.rand(batch_size) < 0.1
    args = (types, frac, lattice, batch, t, cond, drop)

    def loss_of(out):
        return (out.lattice_eps.square().mean() + out.frac_score.square().mean()
                + out.type_logits.logsumexp(-1).mean())

    # peak memory of the first inference forward, then of the first training step
    base = _rss_kib("VmRSS")
    with torch.no_grad():
        model(*args)
    peak_inf = _rss_kib("VmHWM") - base
    loss_of(model(*args)).backward()
    peak_train = _rss_kib("VmHWM") - base
    model.zero_grad(set_to_none=True)

    fwd_nograd, fwd, bwd = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with torch.no_grad():
            model(*args)
        t1 = time.perf_counter()
        loss = loss_of(model(*args))
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        fwd_nograd.append(t1 - t0)
        fwd.append(t2 - t1)
        bwd.append(t3 - t2)
    return dict(
        n_atoms=n_atoms, batch_size=batch_size, cond_mode=cond_mode,
        num_edges=batch_size * n_atoms ** 2, params=model.num_parameters(),
        forward_nograd_s=statistics.median(fwd_nograd), forward_s=statistics.median(fwd),
        backward_s=statistics.median(bwd),
        train_step_s=statistics.median([a + b for a, b in zip(fwd, bwd)]),
        peak_mem_inference_mib=peak_inf / 1024, peak_mem_train_mib=peak_train / 1024,
        config=dataclasses.asdict(cfg),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[5, 20, 24])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--modes", nargs="+", default=["film"], choices=["film", "concat"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "results" / "bench_denoiser.json"))
    ap.add_argument("--_case", nargs=2, help=argparse.SUPPRESS)     # internal: size, mode
    a = ap.parse_args()

    if a._case:
        size, mode = a._case
        print(json.dumps(run_case(int(size), a.batch_size, mode, a.repeats, a.threads, a.seed)))
        return

    load_start = os.getloadavg()
    rows = []
    print(f"{'atoms':>5} {'mode':>6} {'edges':>7} {'fwd(no grad) s':>14} {'fwd s':>7} "
          f"{'bwd s':>7} {'step s':>7} {'peak inf MiB':>12} {'peak train MiB':>14}")
    for mode in a.modes:
        for size in a.sizes:
            cmd = [sys.executable, __file__, "--batch-size", str(a.batch_size), "--repeats",
                   str(a.repeats), "--threads", str(a.threads), "--seed", str(a.seed),
                   "--_case", str(size), mode]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                                  env=dict(os.environ, PYTHONPATH=str(ROOT)))
            if proc.returncode:
                raise RuntimeError(f"benchmark case {size} atoms / {mode} failed:\n{proc.stderr}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(r)
            print(f"{size:>5} {mode:>6} {r['num_edges']:>7} {r['forward_nograd_s']:>14.3f} "
                  f"{r['forward_s']:>7.3f} {r['backward_s']:>7.3f} {r['train_step_s']:>7.3f} "
                  f"{r['peak_mem_inference_mib']:>12.0f} {r['peak_mem_train_mib']:>14.0f}",
                  flush=True)
    out = provenance.write_result(
        dict(seed=a.seed, threads=a.threads, repeats=a.repeats,
             load=dict(loadavg_at_start=load_start, loadavg_at_end=list(os.getloadavg())), results=rows),
        a.out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
