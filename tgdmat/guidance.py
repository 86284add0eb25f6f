"""Property-guided sampling: the stated property steers the reverse process inside one draw.

Classifier guidance (Dhariwal & Nichol, *Diffusion Models Beat GANs on Image Synthesis*, NeurIPS
2021; for crystals e.g. the property-guided samplers of MatterGen and of Chemeleon) adds the
gradient of a noise-aware predictor's log-likelihood of the target value to the score of every
reverse step:

    ∇ log p_t(x | y*) = ∇ log p_t(x) + ∇ log p(y* | x_t),
    log p(y* | x_t)   = − (ŷ(x_t, t) − y*)² / (2 τ²),

with ``ŷ`` a regressor trained on *noisy* crystals ``x_t = (L_t, F_t)`` drawn from the same
forward processes as the diffusion model, so that it is meaningful at every ``t``, and ``y*`` the
value the prompt states (standardised with the training split's mean and deviation). In the
units the denoiser predicts:

    ŝ_F   ← ŝ_F   + γ ∇_{F_t} log p(y* | x_t) / sqrt(λ_t)            (normalised wrapped-normal score)
    ε̂_L   ← ε̂_L   − γ sqrt(1 − ᾱ_t) ∇_{L_t} log p(y* | x_t)          (DDPM: ε = −sqrt(1 − ᾱ) ∇ log p)

``γ`` (``scale``; ``1/τ²`` folded in) is the guidance strength; ``γ = 0`` is the unguided sampler
(exactly: nothing is computed). Crystals whose prompt states no value are not guided. One
structure is returned per target; the extra cost is one forward and backward pass of the
predictor per network evaluation of the sampler.

* :class:`NoisyPropertyModel` — the predictor (a small CSPNet trunk + a head; invariant, so its
  gradient with respect to ``L`` is equivariant and with respect to ``F`` periodic);
* :func:`train_noisy_property` — trains it on a training split with the diffusion model's own
  forward processes;
* :class:`PropertyGuide` — what :meth:`tgdmat.model.TGDMat.sample` takes.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from tgdmat.denoiser import CSPDenoiser, DenoiserConfig
from tgdmat.diffusion import LatticeDDPM, TorusVE

__all__ = ["NoisyPropertyModel", "PropertyGuide", "train_noisy_property", "load_noisy_property"]

KIND = "noisy_property"


class NoisyPropertyModel(nn.Module):
    """``ŷ(A, F_t, L_t, t)``: the standardised property of the clean crystal, from a noisy one.

    Args:
        denoiser: trunk configuration (``cond_dim``, ``predict_types`` are set here).
        property_name, mean, std: the property column and its training-split statistics.
        num_steps, lattice_schedule, sigma_begin, sigma_end: the diffusion model's forward
            processes (the predictor must see the noise the sampler produces).
    """

    def __init__(self, denoiser: DenoiserConfig, property_name: str, mean: float, std: float,
                 num_steps: int = 1000, lattice_schedule: str = "cosine", sigma_begin: float = 0.005,
                 sigma_end: float = 0.5):
        super().__init__()
        self.meta = {"denoiser": dataclasses.asdict(denoiser), "property_name": property_name,
                     "mean": float(mean), "std": float(std), "num_steps": int(num_steps),
                     "lattice_schedule": lattice_schedule, "sigma_begin": float(sigma_begin),
                     "sigma_end": float(sigma_end)}
        cfg = dataclasses.replace(denoiser, cond_dim=1, predict_types=False, atom_cond_dim=0, sentence_dim=0)
        self.trunk = CSPDenoiser(cfg)
        h = cfg.hidden_dim
        self.head = nn.Sequential(nn.Linear(h, h), nn.SiLU(), nn.Linear(h, 1))
        self.lattice = LatticeDDPM(num_steps, lattice_schedule)
        self.torus = TorusVE(num_steps, sigma_begin, sigma_end)
        self.property_name, self.mean, self.std = property_name, float(mean), float(std)

    @property
    def num_steps(self) -> int:
        return self.meta["num_steps"]

    def forward(self, atom_types: Tensor, frac_coords: Tensor, lattice: Tensor, batch: Tensor,
                t: Tensor) -> Tensor:
        """``[B]`` standardised prediction; ``atom_types`` are atomic numbers Z ``[N]``; ``t`` in ``0..T``."""
        t = torch.as_tensor(t, device=lattice.device)
        tt = t.float() / self.num_steps
        out = self.trunk(atom_types.long() - 1, frac_coords, lattice, batch, tt, None, return_features=True)
        return self.head(out.features).squeeze(-1)

    def predict(self, structures, t: int = 0) -> np.ndarray:
        """Property (data units) of clean pymatgen structures (``t = 0``)."""
        from tgdmat.crystal import collate, structure_to_data

        b = collate([structure_to_data(s) for s in structures])
        dev = next(self.parameters()).device
        with torch.no_grad():
            z = self(b.atom_types.to(dev), b.frac_coords.to(dev).float(), b.lattice.to(dev).float(),
                     b.batch.to(dev), torch.full((b.num_graphs,), t, device=dev))
        return (z * self.std + self.mean).cpu().numpy()


def _noised(model: NoisyPropertyModel, batch, gen: torch.Generator, t: Tensor | None = None):
    B, N = batch.num_graphs, batch.frac_coords.shape[0]
    if t is None:
        t = torch.randint(0, model.num_steps + 1, (B,), generator=gen)  # t = 0: the clean crystal too
    eps_l = torch.randn(B, 3, 3, generator=gen)
    eps_f = torch.randn(N, 3, generator=gen)
    L = batch.lattice.float()
    F = batch.frac_coords.float()
    tt = t.clamp_min(1)
    L_t = torch.where((t > 0).view(-1, 1, 1), model.lattice.q_sample(L, tt, eps_l), L)
    F_t, _ = model.torus.q_sample(F, tt[batch.batch], eps_f)
    F_t = torch.where((t > 0)[batch.batch].unsqueeze(-1), F_t, F)
    return L_t, F_t, t


def evaluate_by_time(model: NoisyPropertyModel, dataset, times=(0, 10, 100, 300, 600, 1000),
                     batch_size: int = 256, seed: int = 123) -> dict[int, float]:
    """RMSE (data units) of the predictor on ``dataset`` noised to each time in ``times``."""
    gen = torch.Generator().manual_seed(seed)
    y = np.asarray(dataset.properties[model.property_name], dtype=np.float64)
    out = {}
    model.eval()
    with torch.no_grad():
        for t in times:
            preds = []
            for lo in range(0, len(dataset), batch_size):
                ids = list(range(lo, min(lo + batch_size, len(dataset))))
                b = dataset.batch(ids)
                L_t, F_t, tt = _noised(model, b, gen, torch.full((len(ids),), int(t)))
                preds.append(model(b.atom_types, F_t, L_t, b.batch, tt) * model.std + model.mean)
            p = torch.cat(preds).numpy()
            out[int(t)] = float(np.sqrt(np.mean((p - y) ** 2)))
    return out


def train_noisy_property(diffusion_cfg, train_ds, holdout_ds, property_name: str | None = None,
                         denoiser: DenoiserConfig | None = None, epochs: int = 100, batch_size: int = 256,
                         lr: float = 2e-3, seed: int = 0, progress: bool = True) -> tuple[NoisyPropertyModel, dict]:
    """Train :class:`NoisyPropertyModel` on ``train_ds`` noised by ``diffusion_cfg``'s processes.

    ``diffusion_cfg`` is the :class:`tgdmat.config.ModelConfig` of the diffusion model to guide
    (its ``num_steps``, lattice schedule and σ range). Every step draws ``t ∈ {0..T}`` per crystal.
    Returns the model with the lowest held-out loss and a log (per epoch: train loss, held-out
    RMSE at random ``t``; at the end: held-out RMSE per ``t``).
    """
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    name = property_name or next(iter(train_ds.properties))
    y = np.asarray(train_ds.properties[name], dtype=np.float64)
    mean, std = float(y.mean()), float(y.std() or 1.0)
    den = denoiser or DenoiserConfig(hidden_dim=128, num_layers=3, num_freqs=32, time_dim=64, cond_proj_dim=16)
    model = NoisyPropertyModel(den, name, mean, std, diffusion_cfg.num_steps, diffusion_cfg.lattice_schedule,
                               diffusion_cfg.sigma_begin, diffusion_cfg.sigma_end)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    z_all = torch.as_tensor((y - mean) / std, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    log, best, best_state = [], math.inf, None
    t0 = time.perf_counter()
    for epoch in tqdm(range(epochs), desc=f"noise-aware {name} predictor", disable=not progress, leave=False):
        model.train()
        perm = torch.randperm(len(train_ds), generator=gen)
        total = 0.0
        for lo in range(0, len(perm), batch_size):
            ids = perm[lo:lo + batch_size]
            b = train_ds.batch(ids.tolist())
            L_t, F_t, t = _noised(model, b, gen)
            loss = ((model(b.atom_types, F_t, L_t, b.batch, t) - z_all[ids]) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += float(loss.detach()) * len(ids)
        sched.step()
        hold = evaluate_by_time(model, holdout_ds, times=(0, 300), seed=seed + 1)
        score = float(np.mean(list(hold.values())))
        log.append({"epoch": epoch + 1, "train_mse_std_units": total / len(perm),
                    **{f"holdout_rmse_t{t}": v for t, v in hold.items()}})
        if score < best:
            best, best_state = score, {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    summary = {"property": name, "mean": mean, "std": std, "epochs": epochs, "seed": seed,
               "seconds": time.perf_counter() - t0, "best_epoch": int(np.argmin(
                   [np.mean([r[k] for k in r if k.startswith("holdout")]) for r in log]) + 1),
               "holdout_rmse_by_t": evaluate_by_time(model, holdout_ds, seed=seed + 2), "log": log}
    return model, summary


def save_noisy_property(model: NoisyPropertyModel, path, summary: dict | None = None) -> None:
    """Save weights and settings as a safe checkpoint (``torch.load(weights_only=True)`` reads it)."""
    from tgdmat.checkpoint import CHECKPOINT_FORMAT, save_checkpoint
    from tgdmat.provenance import git_commit

    save_checkpoint(path, {"format": CHECKPOINT_FORMAT, "kind": KIND, "config": json.dumps(model.meta),
                           "model": model.state_dict(), "commit": git_commit(),
                           "summary": json.dumps(summary or {}, default=str)})


def load_noisy_property(path, device="cpu") -> NoisyPropertyModel:
    """Load a :func:`save_noisy_property` checkpoint (no code from the file runs)."""
    from tgdmat.checkpoint import CheckpointError, load_checkpoint

    ck = load_checkpoint(path, map_location=device)
    if ck.get("kind") != KIND:
        raise CheckpointError(f"{path}: not a noise-aware property predictor (kind {ck.get('kind')!r})")
    meta = json.loads(ck["config"])
    model = NoisyPropertyModel(DenoiserConfig(**meta["denoiser"]), meta["property_name"], meta["mean"], meta["std"],
                               meta["num_steps"], meta["lattice_schedule"], meta["sigma_begin"], meta["sigma_end"])
    model.load_state_dict(ck["model"])
    return model.to(device).eval()


@dataclass
class PropertyGuide:
    """Classifier guidance toward stated property values (module docstring).

    Attributes:
        model: the noise-aware predictor.
        targets: ``[B]`` target values in data units, NaN where a crystal is not guided.
        scale: ``γ`` (0 = unguided).
    """

    model: NoisyPropertyModel
    targets: Tensor
    scale: float = 1.0

    def slice(self, start: int, stop: int) -> "PropertyGuide":
        return PropertyGuide(self.model, self.targets[start:stop], self.scale)

    def gradients(self, atom_types: Tensor, frac: Tensor, lattice: Tensor, batch: Tensor,
                  t: int) -> tuple[Tensor, Tensor]:
        """``(∇_F log p(y*|x_t) [N, 3], ∇_L log p(y*|x_t) [B, 3, 3])``, zero for unguided crystals."""
        m = self.model
        target = self.targets.to(lattice.device).float()
        on = torch.isfinite(target)
        z_star = torch.where(on, (target - m.mean) / m.std, torch.zeros_like(target))
        with torch.enable_grad():
            F = frac.detach().float().requires_grad_(True)
            L = lattice.detach().float().requires_grad_(True)
            z = m(atom_types, F, L, batch, torch.full((lattice.shape[0],), int(t), device=lattice.device))
            logp = -0.5 * ((z - z_star) ** 2 * on.float()).sum()
            gF, gL = torch.autograd.grad(logp, (F, L))
        return gF.to(frac.dtype), gL.to(lattice.dtype)


def main(argv=None) -> int:
    """``python -m tgdmat.guidance``: train the noise-aware predictor for a CSP checkpoint's processes."""
    import argparse

    from tgdmat.checkpoint import load_checkpoint
    from tgdmat.config import Config
    from tgdmat.data import model_splits
    from tgdmat.provenance import write_result

    ap = argparse.ArgumentParser(prog="python -m tgdmat.guidance", description=main.__doc__)
    ap.add_argument("--checkpoint", required=True, help="the CSP diffusion model to guide (its processes and split)")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", required=True, help="predictor checkpoint (.pt)")
    ap.add_argument("--result", required=True, help="results JSON (held-out error per t)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ck = load_checkpoint(args.checkpoint)
    cfg = Config.from_json(ck["config"])
    splits = model_splits(cfg)
    model, summary = train_noisy_property(cfg.model, splits.train, splits.val, epochs=args.epochs,
                                          batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    save_noisy_property(model, args.out, summary)
    write_result({"task": "noise-aware property predictor", "dataset": cfg.model.dataset,
                  "split": splits.val.split, "guides": args.checkpoint, "predictor_checkpoint": args.out,
                  **summary}, args.result, inputs=[args.checkpoint], split=splits.val.split,
                 dataset=cfg.model.dataset)
    print(json.dumps({"holdout_rmse_by_t": summary["holdout_rmse_by_t"], "out": args.out}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
