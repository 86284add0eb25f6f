"""tgdmat: a readable implementation of TGDMat, text-guided joint diffusion for periodic crystals.

Nothing heavy happens at import time: submodules are imported on first use.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "load_dataset": "tgdmat.data",
    "load_splits": "tgdmat.data",
    "CrystalDataset": "tgdmat.data",
    "CrystalRecord": "tgdmat.data",
    "collate": "tgdmat.crystal",
    "structure_to_data": "tgdmat.crystal",
    "data_to_structure": "tgdmat.crystal",
    "from_pretrained": "tgdmat.sample",
    "CrystalGenerator": "tgdmat.sample",
    "preset": "tgdmat.config",
    "Config": "tgdmat.config",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tgdmat' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
