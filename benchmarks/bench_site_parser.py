"""How much of the shipped Robocrystallographer descriptions the site-fact parser understands.

Runs :func:`tgdmat.text.sites.parse_description` over every shipped long prompt
(``data/text/<dataset>_<split>.csv.gz`` for Perov-5 and Carbon-24, ``val`` and ``test``) and writes
``results/site_parser_report.json``: per data set and per file, the sentences per kind, the
bond-length forms, the number and share of sentences not understood with the most frequent
not-understood sentence shapes (labels, numbers, count words and formulas replaced by
placeholders), the share of sites with a coordination number / bond lengths / shape / tilt,
consistency checks, and that the sentence splitter gives the text back.

    python benchmarks/bench_site_parser.py [--out results/site_parser_report.json] [--top 20]

Reads the CSV files directly (no pandas, no pymatgen); about half a minute on one core.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tgdmat import provenance  # noqa: E402
from tgdmat.text.sites import parsing_report, split_description  # noqa: E402

DATASETS = ("perov_5", "carbon_24")
SPLITS = ("val", "test")


def read_texts(path: Path) -> list[str]:
    """The ``text`` of every ``ok`` row of a description file."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return [row["text"] for row in csv.DictReader(fh) if row["status"] == "ok"]


def round_trip_failures(texts: list[str]) -> int:
    """Texts whose sentences, joined by single spaces, differ from the text (white space collapsed
    between sentences only: double blanks inside a sentence are kept)."""
    bad = 0
    for t in texts:
        if " ".join(split_description(t)).split() != t.split():
            bad += 1
        elif "".join(split_description(t)) != re.sub(r"(?<=\.)\s+", "", t.strip()):
            bad += 1
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "results" / "site_parser_report.json"))
    parser.add_argument("--top", type=int, default=20, help="not-understood shapes to list")
    args = parser.parse_args(argv)

    result: dict = {"datasets": {}, "files": {}}
    inputs = []
    started = time.perf_counter()
    for ds in DATASETS:
        texts_ds: list[str] = []
        for split in SPLITS:
            path = ROOT / "data" / "text" / f"{ds}_{split}.csv.gz"
            inputs.append(path)
            texts = read_texts(path)
            t0 = time.perf_counter()
            rep = parsing_report(texts, top=args.top)
            rep["seconds"] = round(time.perf_counter() - t0, 2)
            rep["split_round_trip_failures"] = round_trip_failures(texts)
            result["files"][path.name] = rep
            texts_ds.extend(texts)
            print(f"{path.name}: {rep['descriptions']} descriptions, {rep['sentences']} sentences, "
                  f"{100 * rep['share_understood']:.3f} % understood ({rep['seconds']} s)",
                  flush=True)
        rep = parsing_report(texts_ds, top=args.top)
        rep["split_round_trip_failures"] = sum(
            result["files"][f"{ds}_{s}.csv.gz"]["split_round_trip_failures"] for s in SPLITS)
        result["datasets"][ds] = rep
    result["summary"] = {
        ds: {"descriptions": r["descriptions"], "sentences": r["sentences"],
             "not_understood": r["not_understood"],
             "percent_understood": round(100 * r["share_understood"], 4),
             "split_round_trip_failures": r["split_round_trip_failures"]}
        for ds, r in result["datasets"].items()}
    result["seconds_total"] = round(time.perf_counter() - started, 1)
    out = provenance.write_result(result, args.out, inputs=inputs, split="+".join(SPLITS),
                                  dataset="+".join(DATASETS))
    print(f"wrote {provenance.relative(out)} in {result['seconds_total']} s")
    for ds, s in result["summary"].items():
        print(f"  {ds}: {s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
