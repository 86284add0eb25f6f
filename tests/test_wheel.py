"""What Colab sees: a chapter runs from an installed wheel, outside the repository, offline.

The wheel is built from this checkout (no network: ``--no-deps --no-build-isolation``) and
installed into a folder of its own; the chapter is executed in a temporary directory with that
folder first on the path, so ``import tgdmat`` finds the wheel's copy, and the data, committed
results and checkpoints must come from inside the wheel (``tgdmat/_data``, ``tgdmat/_results``).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def test_a_chapter_runs_from_the_wheel_outside_the_repository(tmp_path):
    wheels, target, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
                   check=True, cwd=tmp_path)
    wheel = next(wheels.glob("tgdmat-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGDMAT_")}
    env.update(PYTHONPATH=str(target), TGDMAT_PROFILE="quick", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               MPLBACKEND="Agg", TGDMAT_CACHE=str(tmp_path / "cache"))
    probe = subprocess.run([sys.executable, "-c", "import tgdmat, tgdmat.paths as p; print(tgdmat.__file__); "
                            "print(p.data_dir()); print(p.results_dir())"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert all(str(target) in line for line in probe), probe   # package, data and results from the wheel
    nb = nbformat.read(ROOT / "notebooks" / "01_data.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import tgdmat, tgdmat.paths\n"
        f"assert tgdmat.__file__.startswith({str(target)!r}), tgdmat.__file__\n"
        f"assert str(tgdmat.paths.results_dir()).startswith({str(target)!r})"))
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "TGDMAT_REPOSITORY" in first.source  # the Colab setup cell ran (and found tgdmat installed)
