"""Lazy re-exports for the package ``__init__`` files: nothing heavy happens at import time.

    __getattr__, __dir__, __all__ = attach(__name__, {"name": "module", ...})

A name is imported from its module (absolute, or relative to the package) the first time it is
looked up; ``dir()`` and ``__all__`` list every name the table offers.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def attach(package: str, table: Mapping[str, str]) -> tuple[Callable, Callable, list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package`` from ``{name: module}``."""
    table = {name: (mod if mod.startswith("tgdmat") else f"{package}.{mod}") for name, mod in table.items()}

    def __getattr__(name: str):
        if name in table:
            return getattr(importlib.import_module(table[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(table) | set(importlib.import_module(package).__dict__))

    return __getattr__, __dir__, sorted(table)
