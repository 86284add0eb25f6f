"""Long prompts: Robocrystallographer descriptions, loaded from the shipped files or generated.

TGDMat's long prompt is the text Robocrystallographer (Ganose & Jain, 2019; PyPI ``robocrys``)
writes about a structure. The project ships one for every row of the Perov-5 and Carbon-24
``val``/``test`` splits in ``data/text/<dataset>_<split>.csv.gz`` (columns ``material_id``,
``text``, ``status``, ``seconds``; see ``data/text/README.md``). :func:`load_descriptions`
reads them; a row robocrys could not describe (``status`` not ``ok``) or a data row with no
description falls back to the row's short prompt (fixed order), counted and reported, never a
silent gap.

New data needs the generator, this module's command line::

    python -m tgdmat.text.descriptions --csv data/perov_5/test.csv.gz \\
        --out data/text/perov_5_test.csv.gz [--workers 2] [--limit N]

It describes each row with robocrys' defaults,
``StructureDescriber().describe(StructureCondenser().condense_structure(s))`` with
``s = Structure.from_str(cif, fmt="cif")`` (the CIF as stored, not reduced), under
``PYTHONHASHSEED=0``: robocrys joins some words from Python sets, so the text depends on the
string-hash seed; the command re-executes itself with the seed set when it is not. Two fixes
make it ~2.8× faster and change no text (:func:`apply_speed_fixes`). Rows are appended to
``<out>.partial.csv`` as they finish, so a killed run resumes where it stopped (done ids are
skipped); at the end the rows are written in source order, gzip level 9 without a timestamp, and
``<out stem>.provenance.json`` records versions, date, timings and failures.
"""
from __future__ import annotations

import argparse
import csv
import datetime as _dt
import gzip
import io
import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

COLUMNS = ("material_id", "text", "status", "seconds")
_FIXES_APPLIED = False


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------
@dataclass
class Descriptions(Mapping):
    """material_id → long prompt for one split (a read-only mapping).

    Attributes:
        dataset, split, path: where the texts came from.
        status: material_id → robocrys status (``"ok"`` or ``"error: <type>: <message>"``;
            ``"missing"`` for a data row the file lacks).
        fallback_ids: ids whose text is the short prompt because robocrys failed / was missing.
    """

    dataset: str
    split: str
    path: Path
    texts: dict[str, str]
    status: dict[str, str]
    fallback_ids: list[str] = field(default_factory=list)

    def __getitem__(self, material_id) -> str:
        return self.texts[str(material_id)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.texts)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def n_fallback(self) -> int:
        return len(self.fallback_ids)

    def summary(self) -> str:
        ok = sum(1 for s in self.status.values() if s == "ok")
        return (f"{self.dataset}/{self.split}: {len(self)} long prompts, {ok} from robocrys, "
                f"{self.n_fallback} short-prompt fallbacks ({self.path.name})")


def _read_description_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a description file (.csv or .csv.gz) as dicts of strings; checks the header."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or list(reader.fieldnames[:3]) != list(COLUMNS[:3]):
            raise ValueError(f"{path}: expected columns {list(COLUMNS)}, found "
                             f"{reader.fieldnames}")
        rows = []
        for i, row in enumerate(reader):
            if not row["material_id"]:
                raise ValueError(f"{path}, row {i}: empty material_id")
            if row["status"] is None or row["text"] is None:
                raise ValueError(f"{path}, row {i}: missing fields")
            rows.append(row)
    return rows


def load_descriptions(dataset: str, split: str, root: str | os.PathLike | None = None,
                      fallback: bool = True, check_ids: bool = True) -> Descriptions:
    """Long prompts of ``data/text/<dataset>_<split>.csv.gz``.

    Args:
        dataset, split: e.g. ``"perov_5"``, ``"test"``.
        root: the data folder (default ``tgdmat.paths.data_dir()``).
        fallback: give failed / missing rows their short prompt (needs the data CSV); with
            False they raise instead.
        check_ids: compare ids with ``<root>/<dataset>/<split>.csv.gz`` (missing rows get the
            fallback; ids the data file lacks are an error).

    Returns:
        :class:`Descriptions` (keys are ``str(material_id)``). A warning states how many rows
        fell back.
    """
    from tgdmat.paths import data_dir

    base = Path(root) if root is not None else data_dir()
    path = base / "text" / f"{dataset}_{split}.csv.gz"
    if not path.exists():
        raise FileNotFoundError(
            f"no description file {path}; generate it with python -m tgdmat.text.descriptions "
            f"--csv {base / dataset / (split + '.csv.gz')} --out {path}")
    rows = _read_description_csv(path)
    texts: dict[str, str] = {}
    status: dict[str, str] = {}
    for i, row in enumerate(rows):
        mid = row["material_id"]
        if mid in status:
            raise ValueError(f"{path}, row {i}: material_id {mid!r} appears twice")
        status[mid] = row["status"]
        if row["status"] == "ok":
            if not row["text"].strip():
                raise ValueError(f"{path}, row {i}: status ok but empty text for {mid!r}")
            texts[mid] = row["text"]
    data_rows = None
    data_path = base / dataset / f"{split}.csv.gz"
    if check_ids:
        import pandas as pd

        if not data_path.exists():
            raise FileNotFoundError(f"cannot check ids: no data file {data_path}")
        data_rows = pd.read_csv(data_path)
        data_ids = data_rows["material_id"].astype(str).tolist()
        extra = set(status) - set(data_ids)
        if extra:
            raise ValueError(f"{path}: {len(extra)} material_ids are not in {data_path}, "
                             f"e.g. {sorted(extra)[:3]}")
        for mid in data_ids:
            status.setdefault(mid, "missing")
        order = {mid: i for i, mid in enumerate(data_ids)}
        status = dict(sorted(status.items(), key=lambda kv: order[kv[0]]))
    need = [mid for mid, s in status.items() if s != "ok"]
    out = Descriptions(dataset, split, path, texts, status)
    if need:
        if not fallback:
            raise ValueError(f"{path}: {len(need)} rows have no description (e.g. "
                             f"{need[0]!r}: {status[need[0]]})")
        out.texts.update(_fallback_prompts(dataset, data_path, need, data_rows))
        out.texts = {mid: out.texts[mid] for mid in status}
        out.fallback_ids = need
        warnings.warn(f"{dataset}/{split}: {len(need)} of {len(status)} rows have no "
                      "robocrys description; using their short prompt instead", stacklevel=2)
    return out


def _fallback_prompts(dataset: str, data_path: Path, ids: list[str], data_rows=None
                      ) -> dict[str, str]:
    import pandas as pd
    from pymatgen.core import Structure

    from tgdmat.text.prompts import DATASET_PROPERTIES, short_prompt

    if data_rows is None:
        if not data_path.exists():
            raise FileNotFoundError(f"short-prompt fallback needs the data file {data_path}")
        data_rows = pd.read_csv(data_path)
    wanted = set(ids)
    out = {}
    for _, row in data_rows.iterrows():
        mid = str(row["material_id"])
        if mid not in wanted:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_str(row["cif"], fmt="cif")
        props = {k: float(row[k]) for k in DATASET_PROPERTIES[dataset]}
        out[mid] = short_prompt(structure, props, dataset)
    lost = wanted - set(out)
    if lost:
        raise ValueError(f"{data_path}: no rows for material_ids {sorted(lost)[:3]}")
    return out


# --------------------------------------------------------------------------------------------
# generating
# --------------------------------------------------------------------------------------------
def _ordered_site_eq(self, other):
    """O(n) ``SiteOrderedIStructure.__eq__``: same lattice, properties and sites in order."""
    if not all(hasattr(other, a) for a in ("lattice", "sites", "properties")):
        return NotImplemented
    if other is self:
        return True
    if len(self) != len(other) or self.lattice != other.lattice:
        return False
    if self.properties != other.properties:
        return False
    return list(self.sites) == list(other.sites)


def apply_speed_fixes() -> None:
    """Two speed-ups that leave robocrys' text byte-identical (idempotent).

    1. robocrys' ``MoleculeNamer`` re-reads its molecule-name database (a gzipped JSON,
       ~1.3 s) for every structure; read it once per process. The database is only read.
    2. pymatgen's ``SiteOrderedIStructure.__eq__`` (the key type of StructureMatcher's
       reduced-structure cache) first runs ``IStructure.__eq__`` — for each site, a search of
       the other structure, O(n²) — and then compares the site lists in order. Equal ordered
       site lists imply the unordered check, so comparing lattice, properties and the ordered
       sites directly gives the same answer in O(n).
    """
    global _FIXES_APPLIED
    if _FIXES_APPLIED:
        return
    import robocrys.condense.molecule as molecule
    from pymatgen.core.structure_matcher import SiteOrderedIStructure

    original_loadfn = molecule.loadfn
    memo: dict[str, object] = {}

    def loadfn_once(fn, *args, **kwargs):
        key = str(fn)
        if args or kwargs or not key.endswith("molecule_db.json.gz"):
            return original_loadfn(fn, *args, **kwargs)
        if key not in memo:
            memo[key] = original_loadfn(fn)
        return memo[key]

    molecule.loadfn = loadfn_once
    SiteOrderedIStructure.__eq__ = _ordered_site_eq
    _FIXES_APPLIED = True


def describe_cif(cif: str) -> str:
    """robocrys' default description of the structure in ``cif`` (as stored, not reduced).

    Warns when Python's string hashing is randomised (run with ``PYTHONHASHSEED=0`` to get the
    shipped texts).
    """
    if sys.flags.hash_randomization:
        warnings.warn("PYTHONHASHSEED is not 0: robocrys' word order in some sentences will "
                      "differ from the shipped descriptions", RuntimeWarning, stacklevel=2)
    from pymatgen.core import Structure
    from robocrys import StructureCondenser, StructureDescriber

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structure = Structure.from_str(cif, fmt="cif")
        condensed = StructureCondenser().condense_structure(structure)
        return StructureDescriber().describe(condensed)


def _worker_init() -> None:
    """Per worker: import robocrys and apply the speed fixes before the first row is timed."""
    apply_speed_fixes()
    import robocrys  # noqa: F401


def _describe_job(job: tuple[str, str]) -> tuple[str, str, str, float, float]:
    """(material_id, cif) → (material_id, text, status, wall seconds, CPU seconds); never raises.

    CPU seconds (this process) are recorded too: on a shared machine wall time mostly measures
    the other load.
    """
    mid, cif = job
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        text, status = describe_cif(cif), "ok"
    except Exception as exc:  # robocrys can fail on unusual structures: record, go on
        message = " ".join(str(exc).split())[:300]
        text, status = "", f"error: {type(exc).__name__}: {message}"
    return (mid, text, status, round(time.perf_counter() - start, 3),
            round(time.process_time() - cpu_start, 3))


def _partial_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial.csv")


def provenance_path(out: Path) -> Path:
    """``perov_5_test.csv.gz`` → ``perov_5_test.provenance.json`` (same folder)."""
    name = out.name
    for suffix in (".csv.gz", ".csv", ".gz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return out.with_name(name + ".provenance.json")


def _read_partial(path: Path) -> list[dict[str, str]]:
    """Complete rows of a work file; a last row cut short by a kill is dropped (and rewritten)."""
    rows: list[dict[str, str]] = []
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is not None and list(reader.fieldnames) != list(COLUMNS):
            raise ValueError(f"{path}: expected columns {list(COLUMNS)}, found "
                             f"{reader.fieldnames}")
        try:
            for row in reader:
                rows.append(row)
        except csv.Error:
            pass
    complete = [r for r in rows if r.get("material_id") and r.get("status")
                and r.get("seconds") not in (None, "")]
    if rows and complete != rows:
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(COLUMNS)
            writer.writerows([r[c] for c in COLUMNS] for r in complete)
        os.replace(tmp, path)
    return complete


def _load_done(out: Path) -> dict[str, dict[str, str]]:
    done: dict[str, dict[str, str]] = {}
    for path, reader in ((out, _read_description_csv), (_partial_path(out), _read_partial)):
        if path.exists():
            try:
                rows = reader(path)
            except (ValueError, EOFError, OSError, csv.Error) as exc:
                raise ValueError(f"cannot resume from {path} ({exc}); move it away to start "
                                 "over") from exc
            for row in rows:
                done[row["material_id"]] = {k: row.get(k, "") or "" for k in COLUMNS}
    return done


def _read_source(csv_path: Path) -> list[tuple[str, str]]:
    import pandas as pd

    df = pd.read_csv(csv_path)
    for col in ("material_id", "cif"):
        if col not in df.columns:
            raise ValueError(f"{csv_path}: no {col!r} column (found {list(df.columns)})")
    ids = df["material_id"].astype(str).tolist()
    if len(set(ids)) != len(ids):
        raise ValueError(f"{csv_path}: material_id is not unique")
    return list(zip(ids, df["cif"].astype(str).tolist()))


def _versions() -> dict[str, str]:
    from tgdmat.install_check import package_versions

    return package_versions(["robocrys", "pymatgen", "pymatgen-core", "matminer", "numpy", "spglib"],
                            missing="not installed")


def generate_descriptions(csv_path: str | os.PathLike, out: str | os.PathLike,
                          workers: int = 2, limit: int | None = None,
                          retry_failed: bool = False,
                          describe: Callable[[tuple[str, str]], tuple[str, str, str, float, float]]
                          | None = None, progress: bool = True) -> dict:
    """Describe the rows of a CDVAE-style CSV (``material_id``, ``cif``), resumably.

    Args:
        csv_path: source CSV (.csv or .csv.gz).
        out: output ``.csv.gz``; ``<out>.partial.csv`` holds finished rows until the end.
        workers: processes (1 = in this process).
        limit: only the first ``limit`` rows of the source.
        retry_failed: describe again rows recorded with an error.
        describe: the per-row function (default robocrys, :func:`_describe_job`); tests pass a
            fast stand-in.
        progress: show a tqdm bar.

    Returns:
        The provenance dict that is also written next to ``out``.
    """
    from tqdm.auto import tqdm

    csv_path, out = Path(csv_path), Path(out)
    source = _read_source(csv_path)
    if limit is not None:
        source = source[:limit]
    done = _load_done(out)
    todo = [(mid, cif) for mid, cif in source
            if mid not in done or (retry_failed and done[mid]["status"] != "ok")]
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial_path(out)
    new_file = not partial.exists() or partial.stat().st_size == 0
    run_started = time.perf_counter()
    job = describe or _describe_job
    with open(partial, "a", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        if new_file:
            writer.writerow(COLUMNS)
            fh.flush()
        bar = tqdm(total=len(todo), desc=f"robocrys {csv_path.name}", disable=not progress)
        from tgdmat.parallel import parallel_imap

        serial = workers <= 1 or len(todo) <= 1 or describe is not None
        if serial and describe is None:
            apply_speed_fixes()
        cpu_seconds: list[float] = []
        try:
            for _, (mid, text, status, seconds, cpu) in parallel_imap(
                    job, todo, workers=1 if serial else workers, chunksize=1, initializer=_worker_init,
                    start_method="fork", min_items=2):
                cpu_seconds.append(cpu)
                writer.writerow((mid, text, status, str(seconds)))
                fh.flush()
                done[mid] = {"material_id": mid, "text": text, "status": status,
                             "seconds": str(seconds)}
                bar.update(1)
        finally:
            bar.close()
    wall = time.perf_counter() - run_started

    # final file: rows of the source (all of it that is done) in source order
    order = [mid for mid, _ in _read_source(csv_path) if mid in done]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for mid in order:
        writer.writerow([done[mid][c] for c in COLUMNS])
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9,
                                               mtime=0, filename="") as gz:
        gz.write(buffer.getvalue().encode("utf-8"))
    os.replace(tmp, out)
    partial.unlink(missing_ok=True)

    from tgdmat.paths import sha256_file

    seconds = [float(done[m]["seconds"]) for m in order if done[m]["seconds"]]
    failures = {m: done[m]["status"] for m in order if done[m]["status"] != "ok"}
    info = {
        "source_csv": str(csv_path),
        "source_sha256": sha256_file(csv_path),
        "output": out.name,
        "output_sha256": sha256_file(out),
        "rows_in_source": len(_read_source(csv_path)),
        "rows_described": len(order),
        "rows_ok": len(order) - len(failures),
        "failures": failures,
        "described_this_run": len(todo),
        "wall_seconds_this_run": round(wall, 1),
        "median_seconds_per_row": round(statistics.median(seconds), 3) if seconds else None,
        "median_cpu_seconds_per_row_this_run": round(statistics.median(cpu_seconds), 3)
        if cpu_seconds else None,
        "workers": workers,
        "method": "StructureDescriber().describe(StructureCondenser().condense_structure("
                  "Structure.from_str(cif, fmt='cif'))), robocrys defaults"
                  if describe is None else "custom describe function",
        "pythonhashseed": os.environ.get("PYTHONHASHSEED"),
        "hash_randomization": bool(sys.flags.hash_randomization),
        "speed_fixes": ["molecule-name database read once per process",
                        "ordered O(n) SiteOrderedIStructure.__eq__"],
        "versions": _versions(),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    provenance_path(out).write_text(json.dumps(info, indent=2) + "\n")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tgdmat.text.descriptions",
        description="Robocrystallographer descriptions (long prompts) for a CDVAE-style CSV; "
                    "resumable, parallel, byte-identical to robocrys' defaults.")
    parser.add_argument("--csv", required=True, help="source CSV with material_id and cif")
    parser.add_argument("--out", required=True, help="output .csv.gz")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows")
    parser.add_argument("--retry-failed", action="store_true",
                        help="describe again rows that failed before")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if sys.flags.hash_randomization:
        if argv is not None:
            raise RuntimeError("run with PYTHONHASHSEED=0 (robocrys' word order depends on it)")
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(sys.executable, [sys.executable, "-m", "tgdmat.text.descriptions",
                                   *sys.argv[1:]], env)
    info = generate_descriptions(args.csv, args.out, workers=args.workers, limit=args.limit,
                                 retry_failed=args.retry_failed, progress=not args.no_progress)
    print(json.dumps({k: info[k] for k in ("output", "rows_described", "rows_ok",
                                           "described_this_run", "wall_seconds_this_run",
                                           "median_seconds_per_row",
                                           "median_cpu_seconds_per_row_this_run")}))
    if info["failures"]:
        print(f"{len(info['failures'])} rows failed; see {provenance_path(Path(args.out))}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
