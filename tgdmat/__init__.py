"""tgdmat: a readable implementation of TGDMat, text-guided joint diffusion for periodic crystals.

Nothing heavy happens at import time: submodules are imported on first use.
"""
from __future__ import annotations

from tgdmat._lazy import attach

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

__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
