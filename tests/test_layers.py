"""The package's house plan: no import cycles, and every module imports on its own.

The import graph is read from the source (every ``import``/``from … import`` of a tgdmat module,
also those inside functions, which are how the package stays lazy); names re-exported through a
package's lazy ``_LAZY`` table are followed to the module that defines them.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tgdmat"


def _modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = p.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def _lazy_table(path: Path) -> dict[str, str]:
    """``{name: module}`` of a package ``__init__``'s ``_LAZY`` dict (relative names made absolute)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_LAZY" for t in node.targets):
            table = ast.literal_eval(node.value)
            pkg = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
            return {k: (v if v.startswith("tgdmat") else f"{pkg}.{v}") for k, v in table.items()}
    return {}


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    lazy = {name: _lazy_table(p) for name, p in mods.items() if p.name == "__init__.py"}

    def resolve(module: str, name: str | None) -> str | None:
        if name is not None and name in lazy.get(module, {}):
            return lazy[module][name]
        if name is not None and f"{module}.{name}" in mods:
            return f"{module}.{name}"
        return module if module in mods else None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tgdmat"):
                targets = [resolve(node.module, a.name) for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [resolve(a.name, None) for a in node.names if a.name.startswith("tgdmat")]
            graph[m].update(t for t in targets if t and t != m and not m.startswith(t + "."))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 30 and graph["tgdmat.model"] >= {"tgdmat.denoiser", "tgdmat.diffusion"}
    assert cycles(graph) == []


def test_every_module_imports_on_its_own():
    names = sorted(_modules())
    code = (
        "import importlib, sys\n"
        f"failed = []\n"
        f"for name in {names!r}:\n"
        "    for k in [k for k in sys.modules if k == 'tgdmat' or k.startswith('tgdmat.')]:\n"
        "        del sys.modules[k]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as e:\n"
        "        failed.append(f'{name}: {type(e).__name__}: {e}')\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=PACKAGE.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
