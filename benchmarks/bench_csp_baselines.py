"""CSP baselines without a model: a random same-size training crystal and retrieval of a template.

On the full official test split, one structure per target:

* ``random_same_size`` — a uniformly drawn training crystal with the target's atom count
  (species relabelled to the target's composition: a no-op on Carbon-24);
* ``nearest_template`` — :class:`tgdmat.retrieval.TemplateIndex` answers the target's short
  prompt (parsed facts: space group, crystal system, property) plus its atom count with the
  nearest training crystal;

each scored with the literature's match rate / RMSE (:func:`tgdmat.metrics.evaluate_csp`), the
strict column and METRe/cRMSE (:func:`tgdmat.metrics.evaluate_csp_strict`) and the match rate on
the test crystals without a training duplicate; plus the duplicate statistics themselves (test
crystals with a structure-identical training crystal, literature and strict tolerances) and
match@k (default k = 20) of the random baseline. Training data: this project's split (official
val minus the seeded held-out slice); the test split is read only as targets and prompts.

    python benchmarks/bench_csp_baselines.py --dataset carbon_24 --out results/baselines_csp_carbon_24.json
    python benchmarks/bench_csp_baselines.py --dataset perov_5 --out results/baselines_csp_perov_5.json
    python benchmarks/bench_csp_baselines.py --dataset carbon_24 --limit 50 --out /tmp/smoke.json  # smoke run

Everything runs in this process (one worker); expect tens of minutes for Carbon-24 on one core.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, flush=True)


def _rounded(d):
    if isinstance(d, float):
        return round(d, 6)
    if isinstance(d, dict):
        return {k: _rounded(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_rounded(v) for v in d]
    return d


def write(out: dict, path: Path, args: argparse.Namespace, argv: list[str]) -> Path:
    """Record command, seed, split protocol and versions (via ``write_result``) and write JSON."""
    import importlib.metadata as md

    from tgdmat.benchmark import write_result
    from tgdmat.train import hardware

    import torch

    command = " ".join(["python", os.path.relpath(__file__, ROOT), *argv])
    out = {
        **out,
        "seed": args.seed,
        "hardware": hardware(torch.device("cpu")),
        "extra_versions": {p: md.version(p) for p in ("spglib", "scipy") if _has(p)},
    }
    return write_result(_rounded(out), path, command=command)


def _has(pkg: str) -> bool:
    import importlib.metadata as md

    try:
        md.version(pkg)
        return True
    except md.PackageNotFoundError:
        return False


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="carbon_24", choices=["carbon_24", "perov_5"])
    p.add_argument("--out", default=None, help="default: results/baselines_csp_<dataset>.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=20, help="draws per target for the random baseline's match@k")
    p.add_argument("--limit", type=int, default=0, help="first N test crystals only (smoke runs; 0 = all)")
    p.add_argument("--no-strict-k", action="store_true", help="skip the strict column for match@k")
    p.add_argument("--metre-targets", type=int, default=500,
                   help="METRe on a seeded sample of this many test targets, each against all predictions "
                        "(exact per target; 0 = all targets: ~10^6 matcher calls on Carbon-24)")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from tgdmat.conditioning import split_prompts
    from tgdmat.data import load_splits
    from tgdmat.metrics import evaluate_csp
    from tgdmat.metrics.strict import (
        DUPLICATE_TOLERANCES,
        evaluate_csp_strict,
        find_duplicates,
        match_rate_without_duplicates,
        reduce_all,
    )
    from tgdmat.retrieval import TemplateIndex, facts_from_prompts, nearest_template, random_same_size

    quiet = args.quiet
    progress = args.progress and not quiet
    timings: dict[str, float] = {}
    t_start = time.perf_counter()

    splits = load_splits(args.dataset, seed=args.seed, progress=False)
    train, test = splits.train, splits.test
    if args.limit:
        test = test.subset(range(min(args.limit, len(test))))
    targets = test.structures()
    n = len(targets)
    _log(f"{splits}; scoring {n} test targets", quiet)

    # ---- queries: what the model sees (prompt facts + the target's composition/atom count)
    t0 = time.perf_counter()
    prompts = split_prompts(test, "short")
    facts = facts_from_prompts(prompts, args.dataset)
    index = TemplateIndex(train, progress=progress)
    timings["prompts_and_index"] = time.perf_counter() - t0

    # ---- predictions
    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    random_k = [random_same_size(train, len(t), rng, composition=t.composition, k=args.k) for t in targets]
    random_1 = [[draws[0]] for draws in random_k]  # the first draw alone: the one-sample baseline
    template = [[nearest_template(index, f, len(t), composition=t.composition)] for f, t in zip(facts, targets)]
    levels: dict[str, int] = {}
    for f, t in zip(facts, targets):
        _, level = index.candidates(f, len(t))
        levels[level] = levels.get(level, 0) + 1
    timings["predictions"] = time.perf_counter() - t0

    # ---- duplicates: which test crystals have a structure-identical training crystal
    t0 = time.perf_counter()
    targets_red = reduce_all(targets, space_group=True, progress=progress, desc="reducing test")
    train_red = reduce_all(train.structures(), space_group=True, progress=progress, desc="reducing train")
    dups = find_duplicates(targets_red, train_red, query_ids=test.material_ids, reference_ids=train.material_ids,
                           progress=progress)
    timings["duplicates"] = time.perf_counter() - t0
    for name, s in dups["settings"].items():
        _log(f"duplicates ({name}): {s['n_with_duplicate']}/{n} test crystals ({s['pct_with_duplicate']:.1f} %) "
             f"in {s['seconds']:.0f} s", quiet)

    def score(preds, label, metre=True, strict=True):
        t0 = time.perf_counter()
        lit = evaluate_csp(preds, targets, workers=1, progress=progress, return_per_target=True)
        row = {"literature": {k: v for k, v in lit.items() if k != "per_target_rms"}}
        row["literature_without_duplicates"] = {
            name: match_rate_without_duplicates(lit["per_target_rms"], s["has_duplicate"])
            for name, s in dups["settings"].items()
        }
        if strict:
            st = evaluate_csp_strict(preds, targets, metre=metre, duplicates=dups, targets_reduced=targets_red,
                                     metre_targets=args.metre_targets or None, metre_seed=args.seed,
                                     progress=progress)
            row["strict_column"] = st
        timings[label] = time.perf_counter() - t0
        sr = row.get("strict_column", {}).get("strict", {})
        pa = row.get("strict_column", {}).get("polymorph_aware", {}).get("literature", {}).get("metre", {})
        _log(f"{label}: match {lit['match_rate_pct']:.2f} % rmse {lit['rmse']}; strict {sr.get('match_rate_pct')} %; "
             f"METRe {pa.get('metre_pct')} %; no-dup (lit) "
             f"{row['literature_without_duplicates']['literature']['match_rate_pct']} % "
             f"({timings[label]:.0f} s)", quiet)
        return row

    rows = {
        "random_same_size": {
            "description": "one uniformly drawn training crystal with the target's atom count "
                           "(species relabelled to the target composition)",
            "k=1": score(random_1, "random_same_size"),
        },
        "nearest_template": {
            "description": "TemplateIndex: same atom count; same space group as the prompt states "
                           "(else crystal system, else any); nearest standardised property value",
            "filter_levels": levels,
            "k=1": score(template, "nearest_template"),
        },
    }
    rows["random_same_size"][f"k={args.k}"] = score(random_k, f"random_same_size_k{args.k}", metre=False,
                                                     strict=not args.no_strict_k)
    timings["total"] = time.perf_counter() - t_start

    dup_summary = {
        "direction": dups["direction"],
        "n_test": dups["n_queries"],
        "n_train": dups["n_references"],
        "settings": {
            name: {k: v for k, v in s.items() if k not in ("has_duplicate", "match_index")}
            for name, s in dups["settings"].items()
        },
    }
    out = {
        "task": "csp",
        "dataset": args.dataset,
        "split": test.split,
        "split_protocol": splits.protocol,
        "training_split": f"{train.split} ({len(train)} crystals)",
        "n_targets": n,
        "limit": args.limit or None,
        "notes": [
            "one structure per target (k=1) unless the key says k=20; rates in percent",
            "literature = evaluate_csp (StructureMatcher stol 0.5, ltol 0.3, angle_tol 10; invalid = miss)",
            "strict_column = evaluate_csp_strict: stol 0.3, ltol 0.2, angle_tol 5 AND equal spglib space "
            "group (symprec 0.1 A, angle 5 deg); polymorph_aware = METRe / cRMSE (arXiv:2509.12178)",
            "a test crystal has a duplicate if some training crystal, put in the prediction's place, matches it "
            "(literature tolerances; strict tolerances + same space group); *_without_duplicates score only the "
            "test crystals without one",
            "METRe is scored on a seeded sample of test targets (polymorph_aware.*.metre.n_targets), each "
            "against all distinct predictions; its block repeats the one-to-one numbers on the same targets",
            "the template baseline reads only the parsed facts of each test prompt and the target's "
            "composition; its index is built from the training split (TemplateIndex refuses a test split)",
        ],
        "duplicates": dup_summary,
        "rows": rows,
        "config": {"dataset": args.dataset, "seed": args.seed, "k": args.k, "workers": 1,
                   "metre_targets": args.metre_targets or "all", "strict_at_k": not args.no_strict_k,
                   "duplicate_tolerances": DUPLICATE_TOLERANCES},
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    }
    path = Path(args.out) if args.out else ROOT / "results" / f"baselines_csp_{args.dataset}.json"
    write(out, path, args, argv)
    _log(f"wrote {path} in {timings['total']:.0f} s", quiet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
