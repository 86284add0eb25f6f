"""Our own property regressor: a small CSPNet-style encoder trained on this project's training split.

The property Wasserstein distance of the generation tables needs a property predictor. The
literature's (CDVAE's DimeNet++, :mod:`tgdmat.predictors.cdvae`) is comparable with published
tables; this one is ours, trained on exactly our training split (official ``val`` minus the
held-out slice), so the column can be computed wherever the CDVAE wheel is absent, labelled as ours.

Model: atom-type embedding → ``num_layers`` invariant message-passing layers on the fully
connected graph of each cell (:class:`tgdmat.denoiser.CSPLayer`: O(3)-invariant lattice features,
Fourier features of fractional differences, so periodic translations and rotations change
nothing) → mean over atoms → MLP → ``ŷ = μ + s·f``, trained with the L1 loss on the normalised
property (``μ, s`` the training split's mean and standard deviation).

    python -m tgdmat.predictors.regressor --dataset perov_5 --epochs 40 --out results/checkpoints/regressor_perov_5.pt
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tgdmat.denoiser import CSPLayer, _atom_counts, fourier_features, fully_connected_edges, lattice_invariants


class PropertyRegressor(nn.Module):
    """``ŷ = μ + s · MLP(mean_i h_i)`` from a CSPNet-style invariant encoder; output ``[B]``."""

    def __init__(self, hidden_dim: int = 128, num_layers: int = 3, num_freqs: int = 32, mean: float = 0.0,
                 std: float = 1.0):
        super().__init__()
        self.config = {"hidden_dim": hidden_dim, "num_layers": num_layers, "num_freqs": num_freqs}
        self.num_freqs = num_freqs
        self.embed = nn.Embedding(100, hidden_dim)
        self.layers = nn.ModuleList(CSPLayer(hidden_dim, 6, 6 * num_freqs) for _ in range(num_layers))
        self.head = nn.Sequential(nn.LayerNorm(hidden_dim), nn.Linear(hidden_dim, hidden_dim), nn.SiLU(),
                                  nn.Linear(hidden_dim, 1))
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, atom_types: torch.Tensor, frac_coords: torch.Tensor, lattice: torch.Tensor,
                batch: torch.Tensor) -> torch.Tensor:
        """``atom_types`` Z ``[N]``, ``frac_coords [N,3]``, ``lattice [B,3,3]``, ``batch [N]`` → ``[B]``."""
        n_graphs = lattice.shape[0]
        counts = _atom_counts(batch, n_graphs)
        src, dst = fully_connected_edges(batch, n_graphs)
        fourier = fourier_features(frac_coords[dst] - frac_coords[src], self.num_freqs)
        lat = lattice_invariants(lattice)
        h = self.embed(atom_types - 1)
        for layer in self.layers:
            h = layer(h, lat, fourier, src, dst, batch, counts)
        pooled = torch.zeros(n_graphs, h.shape[1], dtype=h.dtype, device=h.device).index_add_(0, batch, h)
        pooled = pooled / counts.unsqueeze(-1).to(h.dtype)
        return self.mean + self.std * self.head(pooled).squeeze(-1)


class RegressorPredictor:
    """Wraps a trained :class:`PropertyRegressor` as a metrics predictor (``predict(structures)``)."""

    def __init__(self, model: PropertyRegressor, name: str, sha256: str, property_name: str):
        self.model = model.eval()
        self.name = name
        self.sha256 = sha256
        self.property = property_name

    @torch.no_grad()
    def predict(self, structures, batch_size: int = 256) -> np.ndarray:
        from tgdmat.crystal import collate, structure_to_data

        out = []
        for start in range(0, len(structures), batch_size):
            b = collate([structure_to_data(s) for s in structures[start : start + batch_size]])
            out.append(self.model(b.atom_types, b.frac_coords, b.lattice, b.batch).numpy())
        return np.concatenate(out) if out else np.zeros(0)

    __call__ = predict

    def info(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "property": self.property,
                "note": "tgdmat's own regressor trained on this project's training split (not CDVAE's)"}


def load_regressor(path: str | Path) -> RegressorPredictor:
    """Load a checkpoint written by :func:`train_regressor` (``weights_only=True``)."""
    from tgdmat.paths import sha256_file

    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    cfg = json.loads(ckpt["config"])
    model = PropertyRegressor(**cfg["model"])
    model.load_state_dict(ckpt["model"])
    return RegressorPredictor(model, f"tgdmat-regressor-{cfg['dataset']}", sha256_file(path), cfg["property"])


def _batches(ds, idx, size):
    for start in range(0, len(idx), size):
        yield ds.batch(idx[start : start + size].tolist()), idx[start : start + size]


def train_regressor(dataset: str, out: str | Path, epochs: int = 40, batch_size: int = 64, lr: float = 2e-3,
                    seed: int = 0, hidden_dim: int = 128, num_layers: int = 3, progress: bool = True) -> dict:
    """Train on val-minus-holdout, select on the held-out slice, report MAE/R² on the official test split."""
    from tqdm.auto import tqdm

    from tgdmat.data import load_splits
    from tgdmat.provenance import git_commit

    torch.manual_seed(seed)
    splits = load_splits(dataset, seed=seed, progress=progress)
    prop = list(splits.train.properties)[0]
    y_train = torch.tensor(splits.train.properties[prop], dtype=torch.float32)
    mean, std = float(y_train.mean()), float(y_train.std())
    model = PropertyRegressor(hidden_dim, num_layers, mean=mean, std=std)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    steps = epochs * math.ceil(len(splits.train) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)

    def evaluate(ds):
        model.eval()
        preds = []
        with torch.no_grad():
            for b, _ in _batches(ds, np.arange(len(ds)), 256):
                preds.append(model(b.atom_types, b.frac_coords, b.lattice, b.batch))
        model.train()
        p = torch.cat(preds).numpy()
        y = ds.properties[prop]
        from sklearn.metrics import mean_absolute_error, r2_score

        return {"mae": float(mean_absolute_error(y, p)), "r2": float(r2_score(y, p))}

    best, best_state, t0, history = math.inf, None, time.perf_counter(), []
    gen = torch.Generator().manual_seed(seed)
    for epoch in tqdm(range(epochs), desc=f"regressor {dataset}", disable=not progress):
        perm = torch.randperm(len(splits.train), generator=gen).numpy()
        for b, idx in _batches(splits.train, perm, batch_size):
            pred = model(b.atom_types, b.frac_coords, b.lattice, b.batch)
            loss = ((pred - y_train[idx]).abs() / std).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        val = evaluate(splits.val)
        history.append({"epoch": epoch + 1, **{f"holdout_{k}": v for k, v in val.items()}})
        if val["mae"] < best:
            best, best_state = val["mae"], {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    test = evaluate(splits.test)
    mean_mae = float(np.abs(splits.test.properties[prop] - mean).mean())
    cfg = {"dataset": dataset, "property": prop, "seed": seed, "epochs": epochs, "batch_size": batch_size, "lr": lr,
           "model": model.config, "protocol": splits.protocol}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "config": json.dumps(cfg), "commit": git_commit()}, out)
    return {"config": cfg, "test": test, "test_mae_mean_predictor": mean_mae, "holdout_best_mae": best,
            "seconds": time.perf_counter() - t0, "history": history, "checkpoint": str(out)}


def main(argv=None) -> int:
    from tgdmat.provenance import write_result

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="perov_5", choices=["perov_5", "carbon_24", "mp_20"])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--out", required=True, help="checkpoint path")
    ap.add_argument("--result", help="results JSON (default: results/property_regressor_<dataset>.json)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    res = train_regressor(args.dataset, args.out, epochs=args.epochs, seed=args.seed)
    write_result(res, args.result or f"results/property_regressor_{args.dataset}.json", inputs=[args.out],
                 split=res.get("split"), dataset=res.get("dataset"))
    print(json.dumps({k: res[k] for k in ("test", "test_mae_mean_predictor", "seconds")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
