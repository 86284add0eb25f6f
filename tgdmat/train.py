"""Training: a plain PyTorch loop with AdamW, warm-up + cosine decay, clipping, EMA and resumable checkpoints.

One function, :func:`train`, does everything a notebook or ``python -m tgdmat train`` needs:

1. splits under the project's protocol (train = official ``val`` minus a seeded held-out slice;
   the held-out slice selects the model; ``test`` is never touched here);
2. prompts and frozen text embeddings for every crystal (cached on disk);
3. the optimisation loop, with per-epoch logs (``log.csv`` and ``log.json``) and two
   checkpoints: ``last.pt`` (everything needed to resume) and ``best.pt`` (the EMA weights with
   the lowest held-out loss);
4. resumption: a killed run restarts at the epoch after the last completed one and reproduces
   an unbroken run exactly (all randomness of epoch ``e`` comes from generators seeded by
   ``(seed, e)``, never from state carried across epochs).

Data parallel: under ``torchrun`` (``WORLD_SIZE > 1``) every rank draws the same global batch
and noise and trains on its share of the crystals inside ``DistributedDataParallel``; the loss is
normalised by the global counts, so the run matches a single process with the same global batch.

Checkpoints hold only tensors, numbers and strings (config as JSON) and are read with
``torch.load(..., weights_only=True)``: loading never executes code from the file.
"""
from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tgdmat.checkpoint import (  # noqa: F401  (re-exported: the training loop's checkpoint API)
    CHECKPOINT_FORMAT,
    RUN_FILES,
    CheckpointError,
    RunExistsError,
    config_diff,
    load_checkpoint,
    save_checkpoint,
)
from tgdmat.config import Config
from tgdmat.provenance import git_commit, hardware, versions  # noqa: F401  (hardware: re-exported)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def lr_lambda(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to ``min_ratio`` at ``total``."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _epoch_generator(seed: int, epoch: int, salt: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch) * 7919 + salt)


@dataclass
class TrainResult:
    out_dir: Path
    best_epoch: int
    best_holdout_loss: float
    epochs_run: int
    seconds: float
    history: list[dict] = field(default_factory=list)


class _Rank:
    """Rank/world of a torchrun launch (1 process otherwise)."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def prepare(cfg: Config, splits=None, progress: bool = True):
    """Splits, prompt tables and property statistics for ``cfg`` (shared by training and evaluation)."""
    from tgdmat.conditioning import build_prompt_table
    from tgdmat.data import model_splits

    if splits is None:
        splits = model_splits(cfg, progress=progress)
    train_ds = splits.train
    if cfg.train.max_train is not None and cfg.train.max_train < len(train_ds):
        train_ds = train_ds.subset(range(cfg.train.max_train))
    names = list(train_ds.properties)
    mean = np.array([train_ds.properties[k].mean() for k in names])
    std = np.array([train_ds.properties[k].std() for k in names])
    train_table = build_prompt_table(train_ds, cfg.model, seed=cfg.train.seed, progress=progress)
    val_table = build_prompt_table(splits.val, cfg.model, variants=1, progress=progress)
    text_dim = 0 if train_table.embeddings is None else int(train_table.embeddings.shape[-1])
    return splits, train_ds, train_table, val_table, (names, mean, std), text_dim


def build_model(cfg: Config, text_dim: int, stats):
    from tgdmat.model import TGDMat

    names, mean, std = stats
    return TGDMat(cfg.model, text_dim, property_mean=mean, property_std=std, property_names=names)


def _cond(model, table, crystal_ids, variant, device):
    emb, facts = table.lookup(crystal_ids, variant)
    emb = None if emb is None else emb.to(device)
    grounding = None if table.grounding is None else table.grounding.lookup(crystal_ids)
    return model.condition(emb, facts.to(device) if model.facts is not None else None, grounding)


@torch.no_grad()
def holdout_loss(model, dataset, table, batch_size: int, device, seed: int = 12345) -> dict[str, float]:
    """Mean loss over the held-out slice with a fixed noise draw (comparable across epochs)."""
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    totals: dict[str, float] = {}
    count = 0
    for start in range(0, len(dataset), batch_size):
        ids = torch.arange(start, min(start + batch_size, len(dataset)))
        batch = dataset.batch(ids.tolist())
        noise = model.draw_noise(batch, gen)
        noise.drop_cond[:] = False
        batch, noise = batch.to(device), _noise_to(noise, device)
        parts = model.loss(batch, _cond(model, table, ids, 0, device), noise)
        for k, v in parts.items():
            totals[k] = totals.get(k, 0.0) + float(v) * len(ids)
        count += len(ids)
    model.train(was_training)
    return {k: v / count for k, v in totals.items()}


@torch.no_grad()
def holdout_match_rate(model, dataset, table, cfg: Config, device) -> float:
    """CSP match rate (%) of one draw for the first ``cfg.train.eval_csp_samples`` held-out crystals.

    Uses the model's own sampling settings (``cfg.sample``) and a fixed seed, so the numbers of
    successive evaluations are comparable; logged next to the held-out loss, never used for
    selecting the checkpoint.
    """
    from tgdmat.crystal import arrays_to_structures, batch_to_structures
    from tgdmat.metrics import evaluate_csp

    was_training = model.training
    model.eval()
    ids = torch.arange(min(cfg.train.eval_csp_samples, len(dataset)))
    batch = dataset.batch(ids.tolist())
    sc = cfg.sample
    gen = torch.Generator(device=device).manual_seed(sc.seed)
    A, F, L = model.sample(batch.num_atoms, _cond(model, table, ids, 0, device), batch.atom_types.to(device),
                           cfg.sample, generator=gen)
    preds = arrays_to_structures(A.cpu(), F.cpu(), L.cpu(), batch.num_atoms)
    model.train(was_training)
    return evaluate_csp(preds, batch_to_structures(batch), workers=1, progress=False)["match_rate_pct"]


def _noise_to(noise, device):
    from tgdmat.model import Noise

    return Noise(*(getattr(noise, f).to(device) for f in ("t", "eps_lattice", "eps_frac", "type_uniform", "drop_cond")))


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


def train(
    cfg: Config,
    out_dir: str | os.PathLike,
    splits=None,
    device: str | torch.device | None = None,
    resume: bool = True,
    progress: bool = True,
    stop_after_epochs: int | None = None,
    overwrite: bool = False,
) -> TrainResult:
    """Train ``cfg`` and write checkpoints and logs to ``out_dir`` (see the module docstring).

    Args:
        cfg: :class:`tgdmat.config.Config` (``cfg.train.seed`` seeds everything).
        out_dir: folder for ``last.pt``, ``best.pt``, ``log.csv``, ``log.json``, ``config.json``.
        splits: precomputed :class:`tgdmat.data.Splits` (default: the shipped data set).
        device: ``"cpu"``/``"cuda"``; default: CUDA when available.
        resume: continue from ``out_dir/last.pt`` when it exists (its config must match; a
            mismatch raises and lists the differing fields).
        overwrite: delete the run files in ``out_dir`` (``last.pt``, ``best.pt``, logs,
            ``config.json``) and start afresh. Without it, a folder that holds a run is never
            replaced: ``resume=False`` then raises :class:`RunExistsError`.
        stop_after_epochs: return after this many epochs *of this call* (simulates a killed
            run in tests; the checkpoint is complete).
    """
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
    from tqdm.auto import tqdm

    rank = _Rank()
    if rank.world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and (device is None or str(device).startswith("cuda")) else "gloo"
        torch.distributed.init_process_group(backend)
    device = torch.device(device) if device is not None else default_device()
    if device.type == "cuda" and rank.world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    out = Path(out_dir)
    existing = [f for f in RUN_FILES if (out / f).exists()]
    if existing and overwrite:
        if rank.main:
            for f in existing:
                (out / f).unlink()
        existing = []
    if existing and not resume:
        raise RunExistsError(f"{out} already holds a run ({', '.join(existing)}); resume it, choose another "
                             f"folder, or pass overwrite=True (CLI: --overwrite) to replace it")
    if existing and resume and not (out / "last.pt").exists():
        raise RunExistsError(f"{out} holds run files ({', '.join(existing)}) but no last.pt to resume from; "
                             f"choose another folder or pass overwrite=True (CLI: --overwrite)")
    out.mkdir(parents=True, exist_ok=True)
    tc = cfg.train
    torch.manual_seed(tc.seed)
    np.random.seed(tc.seed % 2**32)

    splits, train_ds, train_table, val_table, stats, text_dim = prepare(cfg, splits, progress and rank.main)
    model = build_model(cfg, text_dim, stats).to(device)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(tc.ema_decay), use_buffers=True)
    net = model
    if rank.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    n = len(train_ds)
    steps_per_epoch = math.ceil(n / tc.batch_size)
    total_steps = steps_per_epoch * tc.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_lambda(s, tc.warmup_steps, total_steps, tc.min_lr_ratio)
    )

    start_epoch, step, best, best_epoch, history = 0, 0, float("inf"), -1, []
    last_path, best_path = out / "last.pt", out / "best.pt"
    if resume and last_path.exists():
        ckpt = load_checkpoint(last_path, map_location=device)
        diff = config_diff(ckpt["config"], cfg.to_json())
        if diff:
            raise CheckpointError(f"{last_path} was written with a different config ({'; '.join(diff)}); "
                                  f"use the same settings, another folder, or overwrite=True (CLI: --overwrite)")
        model.load_state_dict(ckpt["model"])
        ema.module.load_state_dict(ckpt["ema"])
        ema.n_averaged.copy_(ckpt["ema_n_averaged"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        start_epoch, step = int(ckpt["epoch"]) + 1, int(ckpt["step"])
        best, best_epoch = float(ckpt["best"]), int(ckpt["best_epoch"])
        history = json.loads(ckpt["history"])
    if rank.main:
        (out / "config.json").write_text(json.dumps(json.loads(cfg.to_json()), indent=2))

    meta = {
        "seed": tc.seed,
        "commit": git_commit(),
        "text_dim": text_dim,
        "property_names": json.dumps(stats[0]),
        "property_mean": torch.tensor(stats[1], dtype=torch.float64),
        "property_std": torch.tensor(stats[2], dtype=torch.float64),
        "protocol": splits.protocol,
        "num_atoms_hist": json.dumps({int(k): int(v) for k, v in zip(*np.unique(train_ds.num_atoms, return_counts=True))}),
        "train_elements": json.dumps(sorted(int(z) for z in np.unique(train_ds.atom_types))),
        "versions": json.dumps(versions()),
    }
    t_start = time.perf_counter()
    epochs_here = 0
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if (tc.bf16 and device.type == "cuda") else None
    model.train()
    for epoch in range(start_epoch, tc.epochs):
        torch.manual_seed(tc.seed * 1_000_003 + epoch)  # dropout and anything else global
        gen = _epoch_generator(tc.seed, epoch)
        perm = torch.randperm(n, generator=gen)
        sums: dict[str, float] = {}
        t0 = time.perf_counter()
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{tc.epochs}", disable=not (progress and rank.main), leave=False)
        for b in bar:
            ids = perm[b * tc.batch_size : (b + 1) * tc.batch_size]
            glob = train_ds.batch(ids.tolist())
            noise = model.draw_noise(glob, gen)
            variant = torch.randint(0, max(1, train_table.variants), (len(ids),), generator=gen)
            if train_table.null is not None:  # a variant that states nothing is the null condition
                noise.drop_cond = noise.drop_cond | train_table.null_rows(ids, variant)
            mine = torch.arange(rank.rank, len(ids), rank.world)
            atom_mask = torch.isin(glob.batch, mine)
            local = train_ds.batch(ids[mine].tolist()) if rank.world > 1 else glob
            local_noise = noise.select(mine, atom_mask) if rank.world > 1 else noise
            local, local_noise = local.to(device), _noise_to(local_noise, device)
            cond = _cond(model, train_table, ids[mine], variant[mine], device)
            ctx = autocast if autocast is not None else torch.autocast("cpu", enabled=False)
            with ctx:
                if len(mine) == 0:
                    parts = {"loss": sum(p.sum() * 0.0 for p in model.parameters())}
                else:
                    parts = _loss_call(net, model, local, cond, local_noise, (len(ids), glob.frac_coords.shape[0]))
            opt.zero_grad(set_to_none=True)
            (parts["loss"] * rank.world).backward()
            if tc.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            opt.step()
            sched.step()
            ema.update_parameters(model)
            step += 1
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            if b % 10 == 0:
                bar.set_postfix(loss=f"{float(parts['loss'].detach()):.3f}")
        record = {"epoch": epoch + 1, "step": step, "lr": sched.get_last_lr()[0], "seconds": time.perf_counter() - t0}
        record.update({f"train_{k}": v / steps_per_epoch for k, v in sums.items()})
        if rank.world > 1:
            # every rank logged only its share: sum the shares for the log
            for k in [k for k in record if k.startswith("train_")]:
                t = torch.tensor([record[k]], dtype=torch.float64)
                torch.distributed.all_reduce(t)
                record[k] = float(t)
        is_eval = (epoch + 1) % tc.eval_every == 0 or epoch + 1 == tc.epochs
        if is_eval:
            hl = holdout_loss(ema.module, splits.val, val_table, tc.batch_size, device)
            record.update({f"holdout_{k}": v for k, v in hl.items()})
            if tc.eval_csp_samples and cfg.model.task == "csp" and rank.main:
                record["holdout_match_rate_pct"] = holdout_match_rate(ema.module, splits.val, val_table, cfg, device)
            if hl["loss"] < best:
                best, best_epoch = hl["loss"], epoch + 1
                if rank.main:
                    save_checkpoint(best_path, {"format": CHECKPOINT_FORMAT, "model": ema.module.state_dict(),
                                                "config": cfg.to_json(), "epoch": epoch, "holdout_loss": best, **meta})
        history.append(record)
        if rank.main:
            save_checkpoint(last_path, {
                "format": CHECKPOINT_FORMAT, "model": model.state_dict(), "ema": ema.module.state_dict(),
                "ema_n_averaged": ema.n_averaged, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "epoch": epoch, "step": step, "best": best, "best_epoch": best_epoch, "history": json.dumps(history),
                "config": cfg.to_json(), **meta,
            })
            _write_logs(out, history)
        epochs_here += 1
        if stop_after_epochs is not None and epochs_here >= stop_after_epochs:
            break
    if rank.world > 1:
        torch.distributed.barrier()
    return TrainResult(out, best_epoch, best, epochs_here, time.perf_counter() - t_start, history)


def _loss_call(net, model, batch, cond, noise, norm):
    if net is model:
        return model.loss(batch, cond, noise, norm=norm)
    # DistributedDataParallel hooks gradients on forward(); route the loss through it
    return net(batch, cond, noise, norm)


def _write_logs(out: Path, history: list[dict]) -> None:
    keys = sorted({k for r in history for k in r}, key=lambda k: (k != "epoch", k))
    with open(out / "log.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(history)
    (out / "log.json").write_text(json.dumps(history, indent=1))
