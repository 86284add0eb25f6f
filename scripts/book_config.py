"""Write the build configuration: _config.yml plus Colab launch buttons when repository.url is set.

Jupyter Book points launch buttons at executablebooks/jupyter-book when the repository is unset,
so the buttons are added only for a real repository URL (the one setting in _config.yml).

    python scripts/book_config.py _build/_config.build.yml
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def build_config() -> dict:
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = (cfg.get("repository") or {}).get("url") or ""
    if url:
        cfg["launch_buttons"] = {"colab_url": "https://colab.research.google.com", "notebook_interface": "classic"}
        cfg.setdefault("html", {})["use_repository_button"] = True
    else:
        cfg.pop("launch_buttons", None)
        cfg.pop("repository", None)
    return cfg


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "_build" / "_config.build.yml")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(build_config(), sort_keys=False))
    print(out)
