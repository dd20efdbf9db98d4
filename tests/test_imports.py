"""No import circles among the package's modules, and every module imports on its own.

The graph is built from the source (``ast``): an edge A -> B for every import that runs when A is
imported (module level, class bodies, ``if``/``try`` blocks at module level; not function bodies,
which import lazily). ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else
to ``pkg`` itself (a package's facade, ``__init__.py``). Importing ``a.b.c`` also runs the parent
packages' ``__init__``, but that is Python's order, not a dependency of ``c``: those implicit edges are
left out, so a cycle found here is one that the code itself closes.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import entropy_engine

ROOT = Path(entropy_engine.__file__).resolve().parent
PKG = "entropy_engine"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _import_time_nodes(tree: ast.Module):
    """Import statements executed when the module is imported (not inside functions)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        else:
            stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        here = mod.split(".") if is_pkg else mod.split(".")[:-1]   # the package a relative import starts in
        for node in _import_time_nodes(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = here[: len(here) - node.level + 1]
                    src = ".".join(base + ([node.module] if node.module else []))
                else:
                    src = node.module or ""
                targets = [f"{src}.{a.name}" if f"{src}.{a.name}" in mods else src for a in node.names]
            for t in targets:
                # the longest module of ours that the name starts with (``import a.b.c`` -> a.b.c)
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != mod:
                    graph[mod].add(t)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {n: WHITE for n in graph}
    path: list[str] = []

    def visit(n):
        colour[n] = GREY
        path.append(n)
        for m in sorted(graph[n]):
            if colour[m] == GREY:
                return path[path.index(m):] + [m]
            if colour[m] == WHITE:
                found = visit(m)
                if found:
                    return found
        path.pop()
        colour[n] = BLACK
        return None

    for n in sorted(graph):
        if colour[n] == WHITE:
            found = visit(n)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_relative_and_absolute_imports():
    g = import_graph()
    assert len(g) > 50
    assert "entropy_engine.core.state" in g["entropy_engine.core.world"]        # from .state import ...
    assert "entropy_engine.core.step" in g["entropy_engine.core.world"]         # from . import step
    assert "entropy_engine.envs.shm_worker" in g["entropy_engine.envs.shm"]
    assert "entropy_engine.training.network" in g["entropy_engine.training.policy"]


def test_no_import_cycle_among_the_package_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_module_imports_in_a_fresh_interpreter():
    """Each module imported first, in a new interpreter (a circle or a missing lazy import of an
    optional dependency shows up as an ImportError here): one interpreter per module would be slow
    (torch), so each interpreter imports one module first and then the rest of its subpackage."""
    mods = sorted(m for m in _modules() if not m.endswith("__main__"))
    code = ("import importlib, sys\n"
            "for name in sys.argv[1:]:\n"
            "    importlib.import_module(name)\n")
    groups: dict[str, list[str]] = {}
    for m in mods:
        groups.setdefault(".".join(m.split(".")[:2]), []).append(m)
    for group, names in sorted(groups.items()):
        deepest_first = sorted(names, key=lambda n: -n.count("."))   # a leaf before its package facade
        r = subprocess.run([sys.executable, "-c", code, *deepest_first], capture_output=True, text=True,
                           cwd=ROOT.parent, timeout=300)
        assert r.returncode == 0, f"importing {deepest_first[0]} first failed:\n{r.stderr[-3000:]}"
