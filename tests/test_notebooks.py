"""The chapters: MyST sources paired with the .ipynb copies Colab and nbval read, one repository URL."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks").glob("*.md"))


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


@pytest.mark.parametrize("md", SOURCES, ids=lambda p: p.name)
def test_each_chapter_is_a_myst_notebook_paired_with_its_ipynb(md):
    import jupytext

    ipynb = md.with_suffix(".ipynb")
    assert ipynb.is_file(), f"{ipynb.name} missing: run `jupytext --sync {md.relative_to(ROOT)}`"
    a, b = jupytext.read(md), jupytext.read(ipynb)
    assert _cells(a) == _cells(b), f"{md.name} and {ipynb.name} differ: run `jupytext --sync {md.relative_to(ROOT)}`"
    assert not any(c.get("outputs") for c in b.cells if c.cell_type == "code"), f"{ipynb.name} has outputs"


@pytest.mark.parametrize("md", SOURCES, ids=lambda p: p.name)
def test_setup_cell_installs_from_the_one_repository_url(md):
    url = (yaml.safe_load((ROOT / "_config.yml").read_text()).get("repository") or {}).get("url") or ""
    text = md.read_text()
    first = text.index("```{code-cell}")
    cell = text[first:text.index("```", first + 5)]
    assert ":tags: [remove-cell]" in cell, "the setup cell is hidden in the book"
    assert re.search(r'^TGDMAT_REPOSITORY = "(.*)"$', cell, re.M).group(1) == url
    assert 'DEVICE = "cuda" if torch.cuda.is_available() else "cpu"' in cell


def test_launch_buttons_only_for_a_real_repository(monkeypatch):
    sys.path.insert(0, str(ROOT / "scripts"))
    import book_config

    cfg = book_config.build_config()
    url = (yaml.safe_load((ROOT / "_config.yml").read_text()).get("repository") or {}).get("url")
    if url:
        assert cfg["launch_buttons"]["colab_url"] and cfg["repository"]["url"] == url
    else:
        assert "launch_buttons" not in cfg and "repository" not in cfg
    assert "notebooks/*.ipynb" in cfg["exclude_patterns"]  # the book builds the MyST sources
