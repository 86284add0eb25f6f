"""Numeric-aware conditioning (issue 9): probes of the conditioning vectors and CSP with each variant.

For two checkpoints trained with the same budget — ``conditioning="text"`` (sentence embedding
only, as the paper) and ``conditioning="text+facts"`` (sentence embedding plus the learned
embedding of the facts parsed from the prompt) — this script reports

* a probe on held-out prompts (Perov-5 official ``test`` split, fixed sentence order): how well
  each model's conditioning vector ``c`` predicts the property value (ridge regression, R², fitted
  on the training split's prompts) and the crystal system (logistic regression, accuracy);
* CSP on the official test split with one sample per crystal (match rate, RMSE), read from the
  ``python -m tgdmat csp`` result files given on the command line (or computed with ``--run-csp``);
* optionally, CSP with ``k`` draws of which one is returned (``python -m tgdmat csp --select-from k``,
  :mod:`tgdmat.rerank`): the stated number chooses among the draws at inference time;
* optionally (``--diagnose N``), on the first ``N`` test crystals: how many single draws match the
  target once the atoms' species are permuted among the sites (best permutation). The gap between
  that and the plain match rate is the share lost to the *arrangement* (which cation takes which
  site) rather than to the geometry — the part only the stated number can decide.

Usage::

    python benchmarks/bench_numeric_conditioning.py \
        --text runs/perov_csp_text/best.pt --facts runs/perov_csp_text_facts/best.pt \
        --csp-text results/csp_perov_5_text.json --csp-facts results/csp_perov_5_text_facts.json \
        --out results/numeric_conditioning.json
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def conditioning_vectors(gen, dataset) -> np.ndarray:
    from tgdmat.conditioning import split_prompts

    prompts = split_prompts(dataset, "short")
    with torch.no_grad():
        return gen.condition(prompts, len(prompts)).cpu().numpy()


def probe(gen, train_ds, test_ds, seed: int = 0) -> dict:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import r2_score
    from sklearn.preprocessing import StandardScaler

    from tgdmat.text.prompts import structure_facts

    xtr, xte = conditioning_vectors(gen, train_ds), conditioning_vectors(gen, test_ds)
    prop = list(train_ds.properties)[0]
    ytr, yte = train_ds.properties[prop], test_ds.properties[prop]
    sc = StandardScaler().fit(xtr)
    ridge = Ridge(alpha=1.0).fit(sc.transform(xtr), ytr)
    r2 = r2_score(yte, ridge.predict(sc.transform(xte)))
    def systems(ds):
        return [structure_facts(r.structure, r.properties, ds.name).crystal_system for r in ds]

    systems_tr, systems_te = systems(train_ds), systems(test_ds)
    clf = LogisticRegression(max_iter=2000, random_state=seed).fit(sc.transform(xtr), systems_tr)
    acc = float((clf.predict(sc.transform(xte)) == np.array(systems_te)).mean())
    return {"property": prop, "r2_property": float(r2), "crystal_system_accuracy": acc,
            "n_train": len(train_ds), "n_test": len(test_ds), "dim": int(xtr.shape[1])}


def arrangement_diagnosis(gen, test_ds, n: int, seed: int = 0) -> dict:
    """Match rate of single draws as they are, and after the best permutation of species over sites."""
    import itertools

    from tgdmat.conditioning import split_prompts
    from tgdmat.metrics.csp import make_matcher
    from tgdmat.metrics.validity import structure_validity

    ds = test_ds.subset(range(min(n, len(test_ds))))
    targets = ds.structures()
    preds = [p[0] for p in gen.sample_csp(targets, prompts=split_prompts(ds, gen.config.model.prompt), progress=False,
                                          seed=seed)]
    matcher = make_matcher()
    as_is = any_perm = valid = 0
    for pred, target in zip(preds, targets):
        if not structure_validity(pred):
            continue
        valid += 1
        if matcher.fit(pred, target):
            as_is += 1
            any_perm += 1
            continue
        species = [site.specie for site in pred]
        for perm in set(itertools.permutations(species)):
            if list(perm) == species:
                continue
            q = pred.copy()
            for i, sp in enumerate(perm):
                q.replace(i, sp)
            if matcher.fit(q, target):
                any_perm += 1
                break
    return {"n_targets": len(targets), "valid_pct": 100.0 * valid / len(targets),
            "match_pct": 100.0 * as_is / len(targets), "match_best_permutation_pct": 100.0 * any_perm / len(targets),
            "note": "single draws, structurally valid ones only; best permutation = species permuted over the "
                    "predicted sites, geometry kept"}


def main(argv=None) -> int:
    from tgdmat.benchmark import csp_benchmark
    from tgdmat.data import load_dataset
    from tgdmat.sample import from_pretrained

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", required=True, help="checkpoint trained with conditioning=text")
    ap.add_argument("--facts", required=True, help="checkpoint trained with conditioning=text+facts")
    ap.add_argument("--csp-text", help="results JSON of `python -m tgdmat csp` for --text (with --select-from k: "
                                       "its first draws give the one-sample numbers)")
    ap.add_argument("--csp-facts", help="results JSON of `python -m tgdmat csp` for --facts")
    ap.add_argument("--csp-text-select", help="results JSON of `python -m tgdmat csp --select-from k` for --text")
    ap.add_argument("--csp-facts-select", help="results JSON of `python -m tgdmat csp --select-from k` for --facts")
    ap.add_argument("--diagnose", type=int, default=0, help="arrangement diagnosis on the first N test crystals")
    ap.add_argument("--run-csp", action="store_true", help="compute CSP here when a results JSON is not given")
    ap.add_argument("--probe-train", type=int, default=2000, help="training prompts for the probe (first N)")
    ap.add_argument("--probe-test", type=int, default=2000, help="test prompts for the probe (first N)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default="results/numeric_conditioning.json")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from tgdmat.data import model_splits

    out = {"variants": {}}
    for name, ckpt, csp_path, sel_path in (("text", args.text, args.csp_text, args.csp_text_select),
                                           ("text+facts", args.facts, args.csp_facts, args.csp_facts_select)):
        gen = from_pretrained(ckpt, device="cpu")
        cfg = gen.config
        splits = model_splits(cfg, progress=False)
        train_ds = splits.train.subset(range(min(args.probe_train, len(splits.train))))
        test_ds = load_dataset(cfg.model.dataset, "test", progress=False)
        t0 = time.perf_counter()
        entry = {"checkpoint": ckpt, "config": json.loads(cfg.to_json()), "info": {k: str(v) for k, v in gen.info.items()},
                 "probe": probe(gen, train_ds, test_ds.subset(range(min(args.probe_test, len(test_ds)))))}
        entry["probe"]["seconds"] = time.perf_counter() - t0
        if csp_path:
            res = json.loads(open(csp_path).read())
            if "selection" in res:  # a --select-from run: its first draws are the one-sample result
                entry["csp"] = {"source": f"{csp_path} (first draw of each target)",
                                **res["selection"]["first_draw_metrics"], "n_targets": res["n_targets"],
                                "sampling": res["sampling"]}
                sel_path = sel_path or csp_path
            else:
                entry["csp"] = {"source": csp_path, **res["metrics"], "n_targets": res["n_targets"],
                                "sampling": res["sampling"]}
        elif args.run_csp:
            res = csp_benchmark(gen, test_ds, n_samples=1)
            entry["csp"] = {**res["metrics"], "n_targets": res["n_targets"], "sampling": res["sampling"]}
        if sel_path:
            if sel_path != csp_path:
                res = json.loads(open(sel_path).read())
            entry["csp_selected"] = {"source": sel_path, **res["metrics"], "n_targets": res["n_targets"],
                                     "selection": res["selection"], "sampling": res["sampling"]}
        if args.diagnose:
            entry["arrangement_diagnosis"] = arrangement_diagnosis(gen, test_ds, args.diagnose)
        out["variants"][name] = entry
        print(name, json.dumps(entry["probe"]), entry.get("csp", {}).get("match_rate_pct"))
    from tgdmat.provenance import write_result as write_with_inputs

    write_with_inputs(out, args.out, inputs=[p for p in (args.text, args.facts) if p], split="test", dataset="perov_5")
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
