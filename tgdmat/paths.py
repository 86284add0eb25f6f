"""Where tgdmat finds its shipped data and keeps its caches.

* Shipped data: ``$TGDMAT_DATA`` if set, else the repository's ``data/`` folder (a clone or an
  editable install), else the copy packaged inside the wheel as ``tgdmat/_data``.
* Caches (processed datasets, text embeddings, converted predictor weights): ``$TGDMAT_CACHE`` if
  set, else ``~/.cache/tgdmat``. Every cache file is keyed by the sha256 of what it was made from
  and holds only arrays/JSON, never pickles.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir() -> Path:
    """Folder holding ``perov_5/``, ``carbon_24/`` and ``text/`` (see ``data/README.md``)."""
    env = os.environ.get("TGDMAT_DATA")
    if env:
        return Path(env)
    for candidate in (_PACKAGE_DIR.parent / "data", _PACKAGE_DIR / "_data"):
        if (candidate / "perov_5").is_dir():
            return candidate
    raise FileNotFoundError(
        "tgdmat cannot find its data folder: set TGDMAT_DATA, or install from a clone of the "
        f"repository (looked in {_PACKAGE_DIR.parent / 'data'} and {_PACKAGE_DIR / '_data'})"
    )


def cache_dir(*parts: str) -> Path:
    """Return (and create) ``<cache root>/<parts...>``."""
    root = Path(os.environ.get("TGDMAT_CACHE") or Path.home() / ".cache" / "tgdmat")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    """Hex sha256 of a UTF-8 string."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def results_dir() -> Path:
    """Committed results (JSON, small checkpoints, logs): ``$TGDMAT_RESULTS``, else the repository's
    ``results/`` (a clone or an editable install), else the copy packaged in the wheel as
    ``tgdmat/_results`` (``pip install git+…`` on Colab), so notebooks find them without a clone."""
    env = os.environ.get("TGDMAT_RESULTS")
    if env:
        return Path(env)
    for candidate in (_PACKAGE_DIR.parent / "results", _PACKAGE_DIR / "_results"):
        if (candidate / "published.json").is_file():
            return candidate
    raise FileNotFoundError(
        "tgdmat cannot find its committed results: set TGDMAT_RESULTS, or install from a clone or from the "
        f"repository (looked in {_PACKAGE_DIR.parent / 'results'} and {_PACKAGE_DIR / '_results'})"
    )
