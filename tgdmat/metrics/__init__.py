"""Evaluation metrics of the crystal-generation literature (CDVAE, DiffCSP, TGDMat) and ours.

Every function takes pymatgen ``Structure`` lists (``None`` marks a failed sample).

=====================  =============================================================
module                 what
=====================  =============================================================
``csp``                CSP match rate and RMSE (StructureMatcher stol=0.5, angle_tol=10,
                       ltol=0.3; k samples per target; invalid predictions are misses)
``validity``           structural (0.5 Å, 0.1 Å^3) and SMACT compositional validity
``coverage``           CrystalNN/Magpie fingerprints (cached) and COV-R / COV-P
``stats``              Wasserstein distances of density, #elements, a predicted property
``fidelity``           prompt fidelity: formula, elements, crystal system, space group
``generation``         ``evaluate_generation`` / ``evaluate_csp``: everything in one call
``compare``            paired per-target and across-seed differences of match rates
``strict``             ``evaluate_csp_strict``: tight match + space group, METRe/cRMSE
                       (arXiv:2509.12178), train/test duplicate finder
=====================  =============================================================

Submodules are imported on first use, so ``import tgdmat.metrics`` is cheap.
"""
from __future__ import annotations

from tgdmat._lazy import attach

_LAZY = {
    "evaluate_generation": "generation",
    "summary_row": "generation",
    "evaluate_csp": "csp",
    "rms_distance": "csp",
    "make_matcher": "csp",
    "structure_validity": "validity",
    "smact_validity": "validity",
    "crystal_validity": "validity",
    "validity_arrays": "validity",
    "validity_rates": "validity",
    "Validity": "validity",
    "Fingerprints": "coverage",
    "compute_fingerprints": "coverage",
    "fingerprint_one": "coverage",
    "structure_key": "coverage",
    "compute_coverage": "coverage",
    "cov_cutoffs": "coverage",
    "fingerprint_diversity": "coverage",
    "wasserstein": "stats",
    "wasserstein_stats": "stats",
    "sample_valid_indices": "stats",
    "resolve_predictor": "stats",
    "prompt_fidelity": "fidelity",
    "observed_facts": "fidelity",
    "normalise_facts": "fidelity",
    "unseen_elements": "novelty",
    "paired_difference": "compare",
    "replicate_difference": "compare",
    "per_target_hits": "compare",
    "evaluate_csp_strict": "strict",
    "find_duplicates": "strict",
    "match_rate_without_duplicates": "strict",
    "polymorph_metrics": "strict",
    "reduce_all": "strict",
    "STRICT_MATCHER": "strict",
    "SPACE_GROUP_SETTINGS": "strict",
}

__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
