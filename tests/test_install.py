"""Install metadata: pyproject and environment.yml agree; every package is listed; CI runs the README's test command."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _all_requirements(pp) -> dict[str, str]:
    reqs = list(pp["project"]["dependencies"])
    for extra, items in pp["project"]["optional-dependencies"].items():
        reqs += [r for r in items if not r.startswith("tgdmat[")]
    return {_name(r): r.replace(" ", "") for r in reqs}


def test_environment_yml_matches_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_reqs = {_name(r): r.replace(" ", "") for r in pip_section}
    py_reqs = _all_requirements(_pyproject())
    # torch: a range in pyproject (Colab keeps its CUDA build), the CPU pin in environment.yml
    cpu_pin = next(ln for ln in (ROOT / "constraints/cpu.txt").read_text().splitlines() if ln.startswith("torch"))
    assert env_reqs.pop("torch") == cpu_pin.replace(" ", "")
    py_reqs.pop("torch")
    assert env_reqs == py_reqs


def test_all_extra_covers_every_extra():
    extras = _pyproject()["project"]["optional-dependencies"]
    (all_req,) = extras["all"]
    named = set(re.search(r"\[(.*)\]", all_req).group(1).split(","))
    assert named == set(extras) - {"all"}


def test_every_subpackage_is_packaged():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "tgdmat").rglob("__init__.py")
    }
    assert on_disk <= listed, f"add to pyproject [tool.setuptools] packages: {sorted(on_disk - listed)}"
    for sub in ("perov_5", "carbon_24", "text"):
        assert f"tgdmat._data.{sub}" in listed and (ROOT / "data" / sub).is_dir()


def test_torch_is_pinned_for_cpu_and_ranged_for_colab():
    deps = _pyproject()["project"]["dependencies"]
    torch_req = next(d for d in deps if _name(d) == "torch")
    assert ">=" in torch_req and "==" not in torch_req
    assert "torch==2.13.0" in (ROOT / "constraints/cpu.txt").read_text()
    assert "-c constraints/cpu.txt" in (ROOT / "scripts/install.sh").read_text()
    for forbidden in ("torch_scatter", "torch-scatter", "torch_sparse", "torch-sparse"):
        assert forbidden not in (ROOT / "pyproject.toml").read_text()


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci/run").read_text()
    commands = re.findall(r"^(bash scripts/\S+)", readme, flags=re.M)
    assert commands[:2] == ["bash scripts/book.sh", "bash scripts/test.sh"]
    lines = [ln.strip() for ln in ci.strip().splitlines()]
    # the README's test command, then the book (the README's other command) opened in a real browser
    assert "bash scripts/test.sh" in lines and "bash scripts/book.sh" in lines
    assert lines.index("bash scripts/test.sh") < lines.index("bash scripts/book.sh")
    assert lines[-1] == ".venv/bin/python scripts/check_book.py _build/html"
    assert "rm -rf .venv" in ci and "scripts/install.sh" in ci


def test_jupyter_book_pinned_below_2():
    extras = _pyproject()["project"]["optional-dependencies"]
    assert any(r.replace(" ", "").startswith("jupyter-book>=1.0,<2") for r in extras["book"])
