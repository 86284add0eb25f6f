"""Checkpoint files: atomic writes, safe reads, and the config comparison used on resume.

A checkpoint is a ``dict`` of tensors, numbers and strings (the config as JSON) saved with
``torch.save``; it is read with ``torch.load(..., weights_only=True)``, so loading one never runs
code from the file. :func:`load_checkpoint` turns every failure into one
:class:`CheckpointError` that names the file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from tgdmat.config import Config

CHECKPOINT_FORMAT = 1

# --------------------------------------------------------------------------------------------


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Atomic ``torch.save`` (write to a temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


class CheckpointError(ValueError):
    """A checkpoint file cannot be used; the message names the file and why."""


class RunExistsError(FileExistsError):
    """``out_dir`` already holds a run and the caller asked neither to resume nor to overwrite it."""


RUN_FILES = ("last.pt", "best.pt", "log.csv", "log.json", "config.json")


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Read a checkpoint with ``weights_only=True`` (no code from the file runs).

    Raises :class:`CheckpointError` naming the file when it is missing, truncated or corrupt,
    holds anything but tensors, numbers and strings, or is not a tgdmat checkpoint. (torch's own
    message for a refused object suggests loading with ``weights_only=False``, which would run
    code from the file; it is never passed on.)
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt zip, truncated file, refused global, ...
        text = str(exc)
        if "Unsupported global" in text or "GLOBAL" in text:
            why = "it names Python objects that tgdmat never writes (refused without running them)"
        else:
            detail = next((ln.split("error:", 1)[1].strip() for ln in text.splitlines() if "Unpickler error:" in ln), "")
            detail = detail or next((ln.strip() for ln in text.splitlines() if ln.strip() and "weights_only" not in ln
                                     and "torch.load" not in ln), type(exc).__name__)
            why = f"the file is truncated, corrupt or not a torch checkpoint ({detail[:100] or type(exc).__name__})"
        raise CheckpointError(f"{path}: cannot read this checkpoint: {why}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a tgdmat checkpoint (format {CHECKPOINT_FORMAT})")
    missing = [k for k in ("config", "model") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: tgdmat checkpoint without {', '.join(missing)}")
    return ckpt


def config_diff(old: str | dict, new: str | dict) -> list[str]:
    """Fields that differ between two configs (JSON or dict), as ``"train.epochs: 800 → 1000"``.

    Both sides first go through :meth:`Config.from_json`, so fields added to the config after a
    checkpoint was written take their defaults on both sides and are not reported.
    """
    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    a = flat(json.loads(Config.from_json(old).to_json()))
    b = flat(json.loads(Config.from_json(new).to_json()))
    return [f"{k}: {a.get(k)!r} → {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


