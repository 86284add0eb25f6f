"""The run profile: ``quick`` (CPU, minutes; notebooks, CI) or ``paper`` (the paper's sizes, GPU).

Read from the environment variable ``TGDMAT_PROFILE``; notebooks call :func:`profile` once and
pass the result to the config presets (``tgdmat.config``). The default is ``quick`` so that a
fresh checkout never starts an hours-long run by accident.
"""
from __future__ import annotations

import os

PROFILES = ("quick", "paper")


def profile() -> str:
    value = os.environ.get("TGDMAT_PROFILE", "quick").strip().lower() or "quick"
    if value not in PROFILES:
        raise ValueError(f"TGDMAT_PROFILE={value!r}: expected one of {PROFILES}")
    return value


def is_quick() -> bool:
    return profile() == "quick"
