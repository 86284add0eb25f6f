"""Large, resumable sampling runs: the literature's two generation protocols, written batch by batch.

* **Per prompt** (TGDMat): one sample for every prompt of a split, with that crystal's atom count
  (``prompts`` and ``num_atoms`` from the split, e.g. :func:`split_requests`).
* **N samples** (CDVAE / DiffCSP): ``n`` samples whose atom counts are drawn from the training
  split's distribution, without prompts (unconditioned) or with prompts cycled from a split
  (conditioned).

The requests are fixed up front and cut into batches; batch ``b`` is sampled with the seed
``seed + b`` and written atomically to ``<out>/batches/batch_<b>.json``. A killed run restarts at
the first missing batch, so it loses at most the batch in flight and never duplicates a sample;
the finished run is the same, sample for sample, as an unbroken one. When every batch exists,
``<out>/samples.json`` holds all samples in request order (the format ``python -m tgdmat evaluate``
reads) and ``<out>/run.json`` the settings and timings.

:func:`run_csp` does the same for crystal structure prediction (``python -m tgdmat csp --work``):
``k`` draws for each target composition, ``batch_size // k`` targets per batch file, each
structure stored as pymatgen's JSON dictionary (exact coordinates; nothing is unpickled).
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Request:
    """What to sample: one entry per sample (``prompt`` may be ``None``; ``target_id`` is a label)."""

    num_atoms: list[int]
    prompts: list[str] | None = None
    target_ids: list[str] | None = None

    def __post_init__(self) -> None:
        n = len(self.num_atoms)
        for name in ("prompts", "target_ids"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"Request.{name} has {len(value)} entries for {n} samples")
        if n == 0:
            raise ValueError("Request: nothing to sample")
        if min(self.num_atoms) < 1:
            raise ValueError("Request.num_atoms: every sample needs at least one atom")

    def digest(self) -> str:
        """sha256 of the request, so a resumed run refuses a folder made for other requests."""
        from tgdmat.paths import sha256_text

        return sha256_text(json.dumps([self.num_atoms, self.prompts, self.target_ids]))


def split_requests(generator, split: str = "test", limit: int | None = None) -> Request:
    """One request per crystal of ``split`` of the model's data set: its prompt and its atom count."""
    from tgdmat.conditioning import split_prompts
    from tgdmat.data import load_dataset

    ds = load_dataset(generator.config.model.dataset, split, progress=False)
    if limit is not None:
        ds = ds.subset(range(min(limit, len(ds))))
    prompts = split_prompts(ds, generator.config.model.prompt)
    return Request([int(k) for k in ds.num_atoms], prompts, list(ds.material_ids))


def training_requests(generator, n: int, seed: int = 0, prompts_from: str | None = None) -> Request:
    """``n`` atom counts drawn from the training distribution; prompts cycled from a split when asked.

    With ``prompts_from``, sample ``i`` takes prompt ``i mod len(split)`` of that split and the
    atom count its formula implies (:meth:`CrystalGenerator.generate`'s rule), so that the
    conditioned set states facts the sampled cell can hold.
    """
    rng = np.random.default_rng(seed)
    if prompts_from is None:
        return Request(generator._draw_num_atoms(n, rng))
    base = split_requests(generator, prompts_from)
    idx = [i % len(base.num_atoms) for i in range(n)]
    return Request([base.num_atoms[i] for i in idx], [base.prompts[i] for i in idx],
                   [base.target_ids[i] for i in idx])


def _open_folder(out: Path, meta: dict) -> Path:
    """``out/batches``, after checking that ``out/request.json`` (written on first use) says ``meta``."""
    from tgdmat.provenance import atomic_write_text

    folder = out / "batches"
    folder.mkdir(parents=True, exist_ok=True)
    meta_path = out / "request.json"
    meta = json.loads(json.dumps(meta))  # compared as it is read back (tuples become lists)
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if "checkpoint_sha256" not in old and {**old, "checkpoint_sha256": meta.get("checkpoint_sha256")} == meta:
            old = meta  # a folder written before the checkpoint was recorded: same request, now recorded
            atomic_write_text(meta_path, json.dumps(meta, indent=1))
        if old != meta:
            changed = sorted(k for k in set(old) | set(meta) if old.get(k) != meta.get(k))
            raise ValueError(f"{out} holds a sampling run with other settings or requests ({meta_path}: "
                             f"{', '.join(changed)} differ); use another folder")
    else:
        atomic_write_text(meta_path, json.dumps(meta, indent=1))
    return folder


def _fill(folder: Path, n_batches: int, make, progress: bool, stop_after_batches: int | None) -> int:
    """Write ``batch_<b>.json = make(b)`` for every missing batch; returns how many were written."""
    from tqdm.auto import tqdm

    from tgdmat.provenance import atomic_write_text

    done_now = 0
    for b in tqdm(range(n_batches), desc="batches", disable=not progress):
        path = folder / f"batch_{b:05d}.json"
        if path.exists():
            continue
        atomic_write_text(path, json.dumps(make(b)))
        done_now += 1
        if stop_after_batches is not None and done_now >= stop_after_batches:
            break
    return done_now


def _collect(folder: Path, n_batches: int) -> list | None:
    """Every batch's records in order, or ``None`` while some batch is missing."""
    have = sorted(folder.glob("batch_*.json"))
    if len(have) != n_batches:
        return None
    return [r for p in have for r in json.loads(p.read_text())]


def run(generator, request: Request, out: str, batch_size: int = 256, seed: int = 0, progress: bool = True,
        stop_after_batches: int | None = None, **overrides) -> dict:
    """Sample ``request`` into ``out`` batch by batch (resumable); returns the run summary.

    Args:
        generator: a loaded :class:`tgdmat.sample.CrystalGenerator` with ``task="gen"``.
        request: what to sample (:class:`Request`).
        out: the run folder.
        batch_size: samples per batch file (also the sampling batch).
        seed: batch ``b`` uses ``seed + b``.
        stop_after_batches: return after this many new batches (tests simulate a kill with it).
        **overrides: :class:`tgdmat.config.SampleConfig` fields (steps, guidance, ...).
    """
    from tgdmat.provenance import atomic_write_text

    if generator.config.model.task != "gen":
        raise ValueError("sample_set.run is for generation models; CSP models: python -m tgdmat csp")
    out = Path(out)
    meta = {"digest": request.digest(), "batch_size": batch_size, "seed": seed,
            "overrides": {k: v for k, v in overrides.items() if v is not None}, "n": len(request.num_atoms),
            "checkpoint_sha256": generator.info.get("checkpoint_sha256")}
    folder = _open_folder(out, meta)
    n = len(request.num_atoms)
    n_batches = (n + batch_size - 1) // batch_size

    def make(b: int) -> list[dict]:
        lo, hi = b * batch_size, min(n, (b + 1) * batch_size)
        prompts = None if request.prompts is None else request.prompts[lo:hi]
        structures = generator.generate(prompts, n=1 if prompts is not None else hi - lo,
                                        num_atoms=request.num_atoms[lo:hi], progress=False,
                                        **{**overrides, "seed": seed + b, "batch_size": batch_size})
        return [{"cif": s.to(fmt="cif"), "prompt": None if prompts is None else prompts[i - lo],
                 "target_id": None if request.target_ids is None else request.target_ids[i],
                 "index": i} for i, s in zip(range(lo, hi), structures)]

    t0 = time.perf_counter()
    done_now = _fill(folder, n_batches, make, progress, stop_after_batches)
    samples = _collect(folder, n_batches)
    summary = {"n_requested": n, "batches_done": len(list(folder.glob("batch_*.json"))), "batches_total": n_batches,
               "batches_this_call": done_now, "seconds_this_call": time.perf_counter() - t0}
    if samples is not None:
        assert [r["index"] for r in samples] == list(range(n)), "batch files do not cover the request exactly"
        atomic_write_text(out / "samples.json", json.dumps(samples))
        summary["samples"] = str(out / "samples.json")
    info = generator.info
    per_prompt = request.target_ids is not None and len(set(request.target_ids)) == n
    made_by = {"checkpoint": {"path": info.get("checkpoint"), "sha256": info.get("checkpoint_sha256"),
                              "protocol": info.get("protocol"), "epoch": info.get("epoch"), "commit": info.get("commit")},
               "protocol_kind": "per prompt" if per_prompt else
               ("conditioned" if request.prompts is not None else "unconditioned"),
               "sampling": {**dataclasses.asdict(generator.config.sample), **meta["overrides"]}}
    atomic_write_text(out / "run.json", json.dumps({**meta, **summary, **made_by}, indent=1, default=str))
    return summary


def run_csp(generator, compositions, prompts, out, n_samples: int = 1, progress: bool = True,
            stop_after_batches: int | None = None, **overrides) -> tuple[list[list] | None, dict]:
    """``n_samples`` CSP draws for every composition, written to ``out`` batch by batch (resumable).

    The settings are ``generator.settings(**overrides)``; batch ``b`` holds targets
    ``[b·m, (b+1)·m)`` with ``m = max(1, batch_size // n_samples)`` and is sampled with the seed
    ``seed + b``, so a resumed run equals an unbroken one sample for sample (it differs from one
    :meth:`~tgdmat.sample.CrystalGenerator.sample_csp` call over all targets, which seeds once).

    Returns ``(predictions, summary)``: ``predictions`` as ``sample_csp`` returns them (a list of
    ``n_samples`` structures per composition) once every batch exists, else ``None``.
    """
    from pymatgen.core import Structure

    from tgdmat.config import SampleConfig
    from tgdmat.sample import check_draw_count

    if generator.config.model.task != "csp":
        raise ValueError("sample_set.run_csp is for CSP models; generation models: sample_set.run")
    compositions = list(compositions)
    check_draw_count(n_samples)
    fields = {f.name for f in dataclasses.fields(SampleConfig)}
    unknown = sorted(set(overrides) - fields - {"allow_unseen_elements", "property_guide", "guide_scale"})
    if unknown:
        raise TypeError(f"sample_set.run_csp: unknown option(s) {', '.join(unknown)} (templates and k-draw "
                        "selection are not resumable; the rest are SampleConfig fields)")
    sc = generator.settings(**{k: v for k, v in overrides.items() if k in fields})
    per = max(1, sc.batch_size // n_samples)
    # every request checked up front (and the prompt count), named by its index in the whole run
    # (errors raise here, not hours in)
    zs = generator.checked_compositions(compositions, prompts, overrides.get("allow_unseen_elements", False))
    from tgdmat.paths import sha256_text

    out = Path(out)
    extra = {k: v for k, v in overrides.items() if k not in fields}  # property_guide, guide_scale
    meta = {"task": "csp", "digest": sha256_text(json.dumps([zs, prompts])), "n": len(zs), "n_samples": n_samples,
            "targets_per_batch": per, "sampling": dataclasses.asdict(sc), "other": {k: str(v) for k, v in extra.items()},
            "checkpoint_sha256": generator.info.get("checkpoint_sha256")}
    folder = _open_folder(out, meta)
    n_batches = (len(zs) + per - 1) // per
    made: list[int] = []

    def make(b: int) -> list[dict]:
        lo, hi = b * per, min(len(zs), (b + 1) * per)
        made.append(hi - lo)
        # checked once above (warnings named by run-wide index): the batch goes straight to the chains
        preds = generator.sample_checked_csp(zs[lo:hi], None if prompts is None else prompts[lo:hi], n_samples,
                                             dataclasses.replace(sc, seed=sc.seed + b),
                                             property_guide=extra.get("property_guide"),
                                             guide_scale=extra.get("guide_scale", 1.0))
        return [{"index": i, "structures": [s.as_dict() for s in group]} for i, group in zip(range(lo, hi), preds)]

    t0 = time.perf_counter()
    done_now = _fill(folder, n_batches, make, progress, stop_after_batches)
    records = _collect(folder, n_batches)
    summary = {"folder": str(out), "batches_total": n_batches, "batches_this_call": done_now,
               "targets_per_batch": per, "seed_rule": "batch b is sampled with seed + b",
               "seconds_this_call": time.perf_counter() - t0, "crystals_this_call": sum(made) * n_samples}
    if records is None:
        return None, summary
    assert [r["index"] for r in records] == list(range(len(zs))), "batch files do not cover the targets exactly"
    preds = [[Structure.from_dict(d) for d in r["structures"]] for r in records]
    return preds, summary
