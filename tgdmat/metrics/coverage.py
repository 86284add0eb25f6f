"""Crystal fingerprints and the coverage metrics COV-R / COV-P of CDVAE, DiffCSP and TGDMat.

Fingerprints (per crystal):

* structure: the CrystalNN site fingerprint (matminer ``CrystalNNFingerprint``, preset
  ``"ops"``, 61 local-order parameters) averaged over the N sites,
  f_S = (1/N) Σ_i CNN(site_i) ∈ R^61;
* composition: the Magpie ``ElementProperty`` features of the composition, f_C ∈ R^132,
  standardised before distances are taken: z = (f_C − μ)/σ with NaN → 0. By default μ, σ are
  the fixed numbers CDVAE ships (its ``CompScaler``, also used by DiffCSP and TGDMat; see
  ``_constants.py``) — they do **not** depend on the test set. ``comp_scaler="reference"``
  instead fits μ, σ on the reference set.

Coverage, for generated set G and reference (test) set R, with Euclidean distances
d_S, d_C and cut-offs (δ_S, δ_C):

    COV-R = (1/|R|) Σ_{r∈R} 1[ min_g d_S(g, r) ≤ δ_S  and  min_g d_C(g, r) ≤ δ_C ]
    COV-P = (1/|G|) Σ_{g∈G} 1[ min_r d_S(g, r) ≤ δ_S  and  min_r d_C(g, r) ≤ δ_C ]

exactly as CDVAE's ``compute_cov``: the two minima are taken separately (the nearest structure
and the nearest composition may be different crystals), every generated crystal — valid or not
— is compared, crystals whose fingerprint cannot be computed are left out of the minima but
stay in COV-P's denominator |G|. AMSD/AMCD are the mean of those minima (CDVAE's extras).

Fingerprints cost ~0.05-0.3 s per crystal on one core, so they are computed on a process pool
and cached on disk per crystal under ``tgdmat.paths.cache_dir("fingerprints", <versions>)``:
one ``.npz`` (arrays only, loaded with ``allow_pickle=False``) keyed by the sha256 of a
canonical text form of the crystal (lattice matrix, species, wrapped fractional coordinates,
each rounded to 1e-6).
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ._constants import COV_CUTOFFS, MAGPIE_MEANS, MAGPIE_STDS
from tgdmat.parallel import parallel_map

N_STRUCT_FEATURES = 61
N_COMP_FEATURES = 132

_FEATURIZERS = None


def _featurizers():
    global _FEATURIZERS
    if _FEATURIZERS is None:
        from matminer.featurizers.composition.composite import ElementProperty
        from matminer.featurizers.site.fingerprint import CrystalNNFingerprint

        _FEATURIZERS = (CrystalNNFingerprint.from_preset("ops"), ElementProperty.from_preset("magpie"))
    return _FEATURIZERS


def fingerprint_one(structure) -> tuple[np.ndarray, np.ndarray]:
    """Fingerprints of one crystal: (f_S of shape [61], or shape [0] if CrystalNN fails; f_C [132])."""
    import warnings

    from pymatgen.core import Composition

    site_fp, comp_fp = _featurizers()
    comp = Composition(structure.composition.get_el_amt_dict())
    f_c = np.asarray(comp_fp.featurize(comp), dtype=float)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sites = [site_fp.featurize(structure, i) for i in range(len(structure))]
        f_s = np.asarray(sites, dtype=float).mean(axis=0)
        if f_s.shape != (N_STRUCT_FEATURES,):
            f_s = np.zeros(0)
    except Exception:  # noqa: BLE001 - CDVAE counts any CrystalNN failure as "no fingerprint"
        f_s = np.zeros(0)
    return f_s, f_c


def structure_key(structure) -> str:
    """sha256 of a canonical text form of ``structure`` (lattice, species, wrapped frac coords)."""
    from tgdmat.paths import sha256_text

    def r(x: float) -> str:
        return f"{round(float(x), 6) + 0.0:.6f}"

    frac = np.mod(np.asarray(structure.frac_coords, dtype=float), 1.0)
    frac = np.where(np.round(frac, 6) >= 1.0, 0.0, frac)
    payload = {
        "lattice": [[r(v) for v in row] for row in np.asarray(structure.lattice.matrix)],
        "species": [str(sp) for sp in structure.species],
        "frac": [[r(v) for v in row] for row in frac],
    }
    return sha256_text(json.dumps(payload, separators=(",", ":"), sort_keys=True))


@lru_cache(maxsize=1)
def fingerprint_version() -> str:
    """Folder name recording what made a cached fingerprint (featurizer + library versions)."""
    from importlib.metadata import version

    return f"crystalnn-ops_magpie__matminer-{version('matminer')}_pymatgen-{version('pymatgen')}"


def _cache_path(root: Path, key: str) -> Path:
    return root / key[:2] / f"{key}.npz"


def _cache_load(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            f_s, f_c = np.asarray(z["structure"], dtype=float), np.asarray(z["composition"], dtype=float)
    except (OSError, KeyError, ValueError):
        return None
    if f_c.shape != (N_COMP_FEATURES,) or f_s.shape not in ((N_STRUCT_FEATURES,), (0,)):
        return None
    return f_s, f_c


def _cache_save(path: Path, f_s: np.ndarray, f_c: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez(tmp, structure=f_s, composition=f_c)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@dataclass
class Fingerprints:
    """Fingerprints of N crystals.

    ``structure``: [N, 61] site-averaged CrystalNN fingerprints (NaN rows where unavailable);
    ``composition``: [N, 132] raw Magpie features (NaN rows for ``None`` inputs);
    ``ok``: [N] bool, both fingerprints available; ``stats``: cache hits / computed counts.
    """

    structure: np.ndarray
    composition: np.ndarray
    ok: np.ndarray
    stats: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ok)

    def subset(self, idx) -> Fingerprints:
        idx = np.asarray(idx)
        return Fingerprints(self.structure[idx], self.composition[idx], self.ok[idx], dict(self.stats))


def compute_fingerprints(
    structures: Sequence,
    workers: int | None = None,
    cache: bool = True,
    progress: bool = True,
    desc: str = "fingerprints",
) -> Fingerprints:
    """Fingerprints of ``structures`` (pymatgen ``Structure`` or ``None``), cached on disk.

    ``workers``: processes for the cache misses (default 2); ``cache=False`` neither reads nor
    writes the cache.
    """
    n = len(structures)
    f_struct = np.full((n, N_STRUCT_FEATURES), np.nan)
    f_comp = np.full((n, N_COMP_FEATURES), np.nan)
    ok = np.zeros(n, dtype=bool)
    root = None
    if cache:
        from tgdmat.paths import cache_dir

        root = cache_dir("fingerprints", fingerprint_version())
    todo: list[int] = []
    keys: dict[int, str] = {}
    n_hit = 0
    for i, s in enumerate(structures):
        if s is None:
            continue
        if root is not None:
            keys[i] = structure_key(s)
            hit = _cache_load(_cache_path(root, keys[i]))
            if hit is not None:
                n_hit += 1
                _store(i, hit, f_struct, f_comp, ok)
                continue
        todo.append(i)

    def keep(j: int, res) -> None:
        i = todo[j]
        _store(i, res, f_struct, f_comp, ok)
        if root is not None:
            _cache_save(_cache_path(root, keys[i]), *res)

    parallel_map(fingerprint_one, [structures[i] for i in todo], workers=workers, desc=desc,
                 progress=progress, on_result=keep)
    stats = {"n": n, "cache_hits": n_hit, "computed": len(todo),
             "failed": int(sum(s is not None for s in structures) - ok.sum())}
    return Fingerprints(f_struct, f_comp, ok, stats)


def _store(i, res, f_struct, f_comp, ok) -> None:
    f_s, f_c = res
    f_comp[i] = f_c
    if f_s.shape == (N_STRUCT_FEATURES,):
        f_struct[i] = f_s
        ok[i] = True


def cov_cutoffs(dataset: str, which: str = "standard") -> dict[str, float]:
    """COV cut-offs ``{"struc": δ_S, "comp": δ_C}`` for ``dataset``.

    ``which="standard"``: CDVAE/DiffCSP's (Perov-5 0.2/4, Carbon-24 0.2/4, MP-20 0.4/10), the
    ones to report. ``which="tgdmat"``: the looser values in TGDMat's released code (Perov-5
    0.2/5, Carbon-24 0.8/4); label any number made with them.
    """
    if which not in COV_CUTOFFS:
        raise ValueError(f"unknown cut-off set {which!r}; choose one of {sorted(COV_CUTOFFS)}")
    table = COV_CUTOFFS[which]
    if dataset not in table:
        raise ValueError(f"no COV cut-offs for dataset {dataset!r}; known: {sorted(table)}")
    return dict(table[dataset])


def composition_scaler(comp_scaler: str = "cdvae", reference: np.ndarray | None = None):
    """Return (μ [132], σ [132]) for standardising Magpie features.

    ``"cdvae"``: CDVAE's fixed numbers. ``"reference"``: fitted on ``reference`` ([M, 132]) the
    way CDVAE's ``StandardScaler.fit`` does (NaN-aware; NaN means → 0, zero/NaN stds → 1).
    """
    if comp_scaler == "cdvae":
        return np.asarray(MAGPIE_MEANS), np.asarray(MAGPIE_STDS)
    if comp_scaler == "reference":
        if reference is None or len(reference) == 0:
            raise ValueError("comp_scaler='reference' needs the reference composition features")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mu = np.nanmean(reference, axis=0)
            sd = np.nanstd(reference, axis=0)
        mu = np.where(np.isnan(mu), 0.0, mu)
        sd = np.where(np.isnan(sd) | (sd == 0), 1.0, sd)
        return mu, sd
    raise ValueError(f"unknown comp_scaler {comp_scaler!r}; choose 'cdvae' or 'reference'")


def _standardise(x: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    z = (x - mu) / sd
    return np.where(np.isnan(z), 0.0, z)


def _min_dists(a: np.ndarray, b: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """(min over rows of a for each row of b [len(b)], min over b for each row of a [len(a)])."""
    from scipy.spatial.distance import cdist

    to_b = np.full(len(b), np.inf)
    to_a = np.empty(len(a))
    for start in range(0, len(a), chunk):
        d = cdist(a[start:start + chunk], b)
        to_a[start:start + chunk] = d.min(axis=1)
        np.minimum(to_b, d.min(axis=0), out=to_b)
    return to_b, to_a


def compute_coverage(
    gen: Fingerprints,
    ref: Fingerprints,
    struc_cutoff: float,
    comp_cutoff: float,
    comp_scaler: str = "cdvae",
) -> dict:
    """COV-R / COV-P (percent) and AMSD/AMCD of generated vs reference fingerprints.

    Returns ``cov_recall_pct``, ``cov_precision_pct``, ``amsd_recall``, ``amsd_precision``,
    ``amcd_recall``, ``amcd_precision``, the counts used and the cut-offs.
    """
    ref_ok = ref.ok
    if not ref_ok.any():
        raise ValueError("coverage: no reference crystal has a fingerprint")
    n_gen = len(gen)
    if n_gen == 0:
        raise ValueError("coverage: no generated crystals")
    mu, sd = composition_scaler(comp_scaler, ref.composition[ref_ok])
    r_s, r_c = ref.structure[ref_ok], _standardise(ref.composition[ref_ok], mu, sd)
    out = {"struc_cutoff": float(struc_cutoff), "comp_cutoff": float(comp_cutoff), "comp_scaler": comp_scaler,
           "n_generated": int(n_gen), "n_generated_with_fingerprint": int(gen.ok.sum()),
           "n_reference": int(ref_ok.sum())}
    if not gen.ok.any():
        out.update(cov_recall_pct=0.0, cov_precision_pct=0.0, amsd_recall=None, amsd_precision=None,
                   amcd_recall=None, amcd_precision=None)
        return out
    g_s, g_c = gen.structure[gen.ok], _standardise(gen.composition[gen.ok], mu, sd)
    s_rec, s_prec = _min_dists(g_s, r_s)
    c_rec, c_prec = _min_dists(g_c, r_c)
    recall = np.mean((s_rec <= struc_cutoff) & (c_rec <= comp_cutoff))
    precision = np.sum((s_prec <= struc_cutoff) & (c_prec <= comp_cutoff)) / n_gen
    out.update(
        cov_recall_pct=float(100.0 * recall),
        cov_precision_pct=float(100.0 * precision),
        amsd_recall=float(s_rec.mean()),
        amsd_precision=float(s_prec.mean()),
        amcd_recall=float(c_rec.mean()),
        amcd_precision=float(c_prec.mean()),
    )
    return out


def fingerprint_diversity(fps: Fingerprints, comp_scaler: str = "cdvae", reference: Fingerprints | None = None) -> dict:
    """CDVAE's diversity: mean pairwise distance of f_S (``struct_div``) and of z (``comp_div``)."""
    from scipy.spatial.distance import pdist

    sel = fps.ok
    if sel.sum() < 2:
        return {"struct_div": None, "comp_div": None}
    ref_comp = reference.composition[reference.ok] if reference is not None else None
    mu, sd = composition_scaler(comp_scaler, ref_comp)
    return {
        "struct_div": float(pdist(fps.structure[sel]).mean()),
        "comp_div": float(pdist(_standardise(fps.composition[sel], mu, sd)).mean()),
    }
