"""Accuracy and CPU cost of the three diffusion processes (no network involved).

    python benchmarks/bench_diffusion_math.py                # defaults: B=256 crystals, 20 atoms each
    python benchmarks/bench_diffusion_math.py --threads 2 --atoms 5

Numbers it prints (and writes to ``results/bench_diffusion_math.json`` with command, commit,
seed, versions and hardware):

* build time of ``LatticeDDPM``, ``TorusVE`` (score-norm quadrature) and ``D3PM`` for T = 1000;
* wrapped-normal truncation error of the default 3 images against 12 images (float64);
* ``score_norm`` quadrature against a 10⁶-sample Monte Carlo estimate;
* sample spread of strided lattice chains driven by the exact ε̂ of Gaussian data (std 0.5);
* the mean resultant length reached by strided torus chains with the exact score of WN(μ, 0.05)
  (target exp(−2π²τ²) = 0.9518);
* milliseconds per sampler step / per loss evaluation for B crystals.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tgdmat import provenance  # noqa: E402

from tgdmat.diffusion.d3pm import D3PM  # noqa: E402
from tgdmat.diffusion import LatticeDDPM, strided_timesteps  # noqa: E402
from tgdmat.diffusion.torus import TorusVE, wrapped_normal_log_prob, wrapped_normal_score  # noqa: E402


def _time(fn, repeats: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crystals", type=int, default=256)
    ap.add_argument("--atoms", type=int, default=20, help="atoms per crystal")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench_diffusion_math.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(args.seed)
    res: dict = {}

    # ---------------------------------------------------------------- build
    t0 = time.perf_counter(); lat = LatticeDDPM(1000); res["build_lattice_s"] = time.perf_counter() - t0
    t0 = time.perf_counter(); tor = TorusVE(1000); res["build_torus_s"] = time.perf_counter() - t0
    t0 = time.perf_counter(); typ = D3PM(); res["build_d3pm_s"] = time.perf_counter() - t0

    # ---------------------------------------------------------------- accuracy
    x = torch.linspace(-0.5, 0.5, 20001, dtype=torch.float64)
    res["truncation_n3_vs_n12"] = {
        str(s): {
            "log_prob_max_abs": float((wrapped_normal_log_prob(x, s, 3) - wrapped_normal_log_prob(x, s, 12)).abs().max()),
            "score_max_abs": float((wrapped_normal_score(x, s, 3) - wrapped_normal_score(x, s, 12)).abs().max()),
        }
        for s in (0.005, 0.05, 0.5)
    }
    mc = {}
    for t in (1, 250, 500, 750, 1000):
        sig = tor.sigmas[t].double()
        xs = sig * torch.randn(1_000_000, generator=g, dtype=torch.float64)
        est = float((wrapped_normal_score(xs, sig) ** 2).mean())
        mc[str(t)] = {"sigma": float(sig), "quadrature": float(tor.score_norm[t]), "monte_carlo": est,
                      "rel_diff": float(tor.score_norm[t]) / est - 1}
    res["score_norm_vs_mc_1e6"] = mc

    mu = torch.tensor([[4.0, 0.0, 0.0], [-1.0, 5.0, 0.0], [0.0, 2.0, 6.0]], dtype=torch.float64)
    tau, n = 0.5, 4000
    chains = {}
    for eta in (1.0, 0.0):
        for steps in (1000, 250, 100, 50, 25):
            L = lat.prior(n, generator=g).double()
            grid = strided_timesteps(1000, steps)
            for t, s in zip(grid[:-1], grid[1:]):
                ab = lat.alpha_bars[t].double()
                eps = (1 - ab).sqrt() * (L - ab.sqrt() * mu) / (ab * tau ** 2 + 1 - ab)
                z = torch.randn(n, 3, 3, generator=g, dtype=torch.float64) if s > 0 else None
                L = lat.reverse_step(L, eps, t, s, z, eta=eta)
            chains[f"eta={eta},steps={steps}"] = {"std": float(L.std(0).mean()),
                                                   "mean_err": float((L.mean(0) - mu).abs().max())}
    res["lattice_gaussian_chain_std_target_0.5"] = chains

    mu_f = torch.tensor([0.1, 0.5, 0.97], dtype=torch.float64)
    tau_f, n = 0.05, 4000
    tor_res = {}
    for steps in (1000, 100, 25):
        for step_lr in (0.0, 1e-5):
            f = tor.prior(n, generator=g).double()
            grid = strided_timesteps(1000, steps)
            for t, s in zip(grid[:-1], grid[1:]):
                def pred(ff, tt=t):
                    sg = math.sqrt(tau_f ** 2 + float(tor.sigmas[tt]) ** 2)
                    return wrapped_normal_score(ff - mu_f, sg) / tor.score_norm[tt].double().sqrt()
                if step_lr:
                    f = tor.corrector_step(f, pred(f), t, step_lr, torch.randn(n, 3, generator=g, dtype=torch.float64))
                z = torch.randn(n, 3, generator=g, dtype=torch.float64) if s > 0 else None
                f = tor.reverse_step(f, pred(f), t, s, z)
            tor_res[f"steps={steps},step_lr={step_lr}"] = float(torch.cos(2 * math.pi * (f - mu_f)).mean())
    res["torus_exact_score_R_target_0.9518"] = tor_res

    # ---------------------------------------------------------------- speed
    B, N = args.crystals, args.crystals * args.atoms
    L = torch.randn(B, 3, 3, generator=g); eL = torch.randn(B, 3, 3, generator=g)
    F = torch.rand(N, 3, generator=g); eF = torch.randn(N, 3, generator=g)
    a0 = torch.randint(0, 100, (N,), generator=g)
    logits = torch.randn(N, 100, generator=g, requires_grad=True)
    t_atom = torch.randint(1, 1001, (N,), generator=g)
    a_t = typ.q_sample(a0, t_atom, g)
    ms = {
        "lattice.q_sample": _time(lambda: lat.q_sample(L, 500, eL), args.repeats),
        "lattice.reverse_step": _time(lambda: lat.reverse_step(L, eL, 500, 499, eL), args.repeats),
        "torus.q_sample": _time(lambda: tor.q_sample(F, t_atom, eF), args.repeats),
        "torus.reverse_step": _time(lambda: tor.reverse_step(F, eF, 500, 499, eF), args.repeats),
        "torus.corrector_step": _time(lambda: tor.corrector_step(F, eF, 500, 1e-5, eF), args.repeats),
        "d3pm.q_sample": _time(lambda: typ.q_sample(a0, t_atom, g), args.repeats),
        "d3pm.reverse_step": _time(lambda: typ.reverse_step(a_t, logits.detach(), 500, 499, g), args.repeats),
        "d3pm.loss_fwd_bwd": _time(lambda: typ.loss(logits, a0, a_t, t_atom)["loss"].backward(), args.repeats),
    }
    res["ms_per_call"] = {k: 1e3 * v for k, v in ms.items()}

    record = {
        "seed": args.seed,
        "config": {"crystals": B, "atoms_per_crystal": args.atoms, "threads": args.threads,
                   "repeats": args.repeats, "T": 1000},
        "results": res,
    }
    print(json.dumps(res, indent=1))
    provenance.write_result(record, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
