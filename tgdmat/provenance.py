"""Provenance of every checkpoint and result: commit, versions, hardware, inputs, atomic writes.

One module, used by training, sampling benchmarks, ``evaluate`` and the scripts in
``benchmarks/``, so that every file in ``results/`` records the same things the same way:

* ``commit``: ``git rev-parse HEAD`` of the repository, with the single suffix ``+dirty`` when a
  tracked file outside ``results/`` differs from it (untracked files such as ``runs/`` and the
  results a run has just written do not count), or
  ``"unknown"`` outside a clone (an installed wheel);
* ``versions``: the installed versions of the packages that change a number;
* ``hardware``: CPU model, cores and torch threads, or the GPU's name;
* ``command``: how a reader re-runs it (``python -m tgdmat …`` or ``python benchmarks/….py …``),
  with paths inside the repository written relative to its root;
* ``inputs``: each checkpoint or file the result used, with its sha256, so that a result names
  exactly the weights it came from;
* ``protocol``: taken from the data the run actually used (the split names and the checkpoint's
  training protocol), never typed by the writer.

Writes are atomic (a temporary file, then ``os.replace``), so a killed run never leaves half a
JSON file behind.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from tgdmat.paths import sha256_file

REPO_ROOT = Path(__file__).resolve().parent.parent

#: version of the provenance block (1: the older, partial blocks written before this module existed)
PROVENANCE_FORMAT = 2

#: packages whose versions are recorded by default
DEFAULT_PACKAGES = ("torch", "torch_geometric", "numpy", "pymatgen", "spglib", "smact", "matminer", "transformers")


def git_commit(root: str | os.PathLike | None = None) -> str:
    """HEAD of the repository, ``+dirty`` when tracked files differ from it; ``"unknown"`` without git."""
    root = Path(root) if root is not None else REPO_ROOT
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0 or not sha.stdout.strip():
            return "unknown"
        # results/ is what runs write: a result written a moment ago does not make the code dirty
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        return sha.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def is_clean(commit: str) -> bool:
    """True for a plain 40-hex commit (not ``+dirty``, not ``unknown``)."""
    return len(commit) == 40 and all(c in "0123456789abcdef" for c in commit)


def versions(names=DEFAULT_PACKAGES) -> dict[str, str]:
    """``{package: version}`` for ``names`` plus Python and tgdmat (``"absent"`` when not installed)."""
    from tgdmat.install_check import package_versions

    import tgdmat

    return {"python": platform.python_version(), "tgdmat": tgdmat.__version__, **package_versions(list(names))}


def hardware(device=None) -> dict:
    """What ran it: the GPU's name, or the CPU model, cores and torch threads (plus the load average)."""
    info: dict = {"machine": platform.machine(), "cpu_count": os.cpu_count()}
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if device is not None and str(device).startswith("cuda"):
            info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    except Exception:  # noqa: BLE001 - torch missing or no CUDA: CPU facts only
        pass
    cpu = platform.processor() or None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info["cpu"] = cpu
    if hasattr(os, "getloadavg"):
        info["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    return info


def relative(path: str | os.PathLike) -> str:
    """``path`` relative to the repository root when it lies inside it (else as given)."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(p)


def command_line(argv: list[str] | None = None) -> str:
    """The command a reader types to re-run this process, with repository paths made relative.

    ``python -m tgdmat …`` for the CLI, ``python benchmarks/x.py …`` for a script. A command that
    came from ``python -c`` cannot be re-run and is refused.
    """
    argv = list(sys.argv if argv is None else argv)
    if not argv or argv[0] in ("-c", ""):
        raise ValueError("a result must come from a re-runnable command (a script or python -m tgdmat), "
                         "not python -c or an interactive session")
    package = Path(__file__).resolve().parent
    head = Path(argv[0]) if Path(argv[0]).is_absolute() else REPO_ROOT / argv[0]
    head = head.resolve()
    if head.suffix == ".py" and head.is_relative_to(package):  # python -m tgdmat / -m tgdmat.<pkg>.<module>
        parts = ["tgdmat", *head.relative_to(package).with_suffix("").parts]
        if parts[-1] == "__main__":
            parts.pop()
        prog = ["python", "-m", ".".join(parts)]
    else:
        prog = ["python", relative(head)]
    import shlex

    rest = []
    for a in argv[1:]:
        rest.append(relative(a) if os.path.isabs(a) and Path(a).exists() else a)
    return " ".join(shlex.quote(x) for x in [*prog, *rest])


def file_record(path: str | os.PathLike) -> dict:
    """``{"path": <relative path>, "sha256": …, "bytes": …, "committed": bool}`` of an input file."""
    p = Path(path)
    rel = relative(p)
    committed = False
    try:
        out = subprocess.run(["git", "ls-files", "--error-unmatch", rel], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10)
        committed = out.returncode == 0 and not os.path.isabs(rel)
    except (OSError, subprocess.SubprocessError):
        pass
    return {"path": rel, "sha256": sha256_file(p), "bytes": p.stat().st_size, "committed": committed}


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def record(command: str | None = None, inputs=(), device=None, packages=DEFAULT_PACKAGES) -> dict:
    """The provenance block of a result: command, commit, date, versions, hardware, inputs."""
    return {
        "provenance_format": PROVENANCE_FORMAT,
        "command": command or command_line(),
        "commit": git_commit(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "versions": versions(packages),
        "hardware": hardware(device),
        "inputs": [file_record(p) for p in inputs],
    }


def protocol_of(split: str | None = None, dataset: str | None = None, checkpoint_protocol: str | None = None) -> str:
    """The protocol sentence of a result, from what the run used.

    ``checkpoint_protocol`` is what the training run stored (``Splits.protocol``), ``split`` and
    ``dataset`` name the data the result was computed on.
    """
    parts = []
    if checkpoint_protocol:
        parts.append(f"model trained with: {checkpoint_protocol}")
    if split is not None:
        official = split in ("test", "val", "train")
        parts.append(f"evaluated on {dataset + '/' if dataset else ''}{split}"
                     + (" (the official split)" if official else ""))
    return "; ".join(parts)


def write_result(result: dict, path: str | os.PathLike, *, inputs=(), command: str | None = None,
                 split: str | None = None, dataset: str | None = None, checkpoint_protocol: str | None = None,
                 device=None) -> Path:
    """Add provenance to ``result`` and write it to ``path`` as JSON (atomically).

    Args:
        result: the numbers (JSON-serialisable; numpy scalars and paths are converted).
        inputs: checkpoint and data files the result used (recorded with sha256).
        command: override the re-runnable command (default: this process's command line).
        split, dataset, checkpoint_protocol: see :func:`protocol_of`.
    """
    block = record(command, inputs, device)
    proto = protocol_of(split, dataset, checkpoint_protocol)
    if proto:
        block["protocol"] = proto
    text = json.dumps({**block, **result}, indent=2, default=_json_default)
    return atomic_write_text(path, text + "\n")


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def source_note(*results, names=None) -> str:
    """One Markdown line per result saying where a table's or figure's numbers come from.

    Each result (a dict read from ``results/``, or the path of one) gives: its file, the command
    that re-makes it, its commit (flagged when made from uncommitted changes, or when the result
    predates this module), and every checkpoint it used with the start of its sha256. Notebooks
    show it under each table and figure, so a reader can re-run and cite the exact numbers.

    Args:
        results: dicts or paths of result files.
        names: the file names to show for dict results (default: ``results/<name>`` unknown → omitted).
    """
    lines = []
    for k, res in enumerate(results):
        name = None
        if isinstance(res, (str, os.PathLike)):
            name = Path(res).name
            res = json.loads(Path(res).read_text())
        elif names is not None:
            name = names[k]
        commit = str(res.get("commit") or "unknown")
        dirty = " (made from uncommitted changes)" if commit.endswith("+dirty") else ""
        parts = [f"`results/{name}`"] if name else []
        parts.append(f"made by `{res.get('command', '?')}`")
        parts.append(f"at commit `{commit[:10]}`{dirty}")
        if res.get("provenance_format", 1) < PROVENANCE_FORMAT:
            parts.append("(older provenance block: no checkpoint hashes)")
        for inp in res.get("inputs", []) or []:
            if isinstance(inp, dict) and str(inp.get("path", "")).endswith(".pt"):
                parts.append(f"checkpoint `{Path(inp['path']).name}` (sha256 `{str(inp.get('sha256', ''))[:12]}…`)")
        lines.append("Source: " + " · ".join(parts) + ".")
    return "\n\n".join(lines)
