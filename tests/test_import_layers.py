"""The package's layering, read from its source with ``ast`` and enforced (docs/architecture.md, Layers).

Every module under ``snnjax/`` is parsed; every ``import`` / ``from ... import`` anywhere in it (module
level, inside functions, under ``if TYPE_CHECKING``) is an edge to the module it names:

- ``import snnjax.a.b`` -> ``snnjax.a.b``;
- ``from snnjax.a import b`` -> ``snnjax.a.b`` when ``b`` is a module, else ``snnjax.a``;
- relative imports are resolved against the importing module's package.

An edge names only the module written, not the parent packages Python also runs on the way
(``snnjax/__init__.py``, ``snnjax/a/__init__.py``): a parent package is in the same layer as its
modules, and ``snnjax/__init__.py`` is held to the base layer, so those implicit imports never cross a
layer.

Checked:

1. **No cycles** between files (each is reported as the list of module names around it).
2. **No import up the layers.** Each module's layer is the one of its top-level name ``snnjax.<x>``
   (:data:`LAYERS`): a base module imports base modules only; an engine module imports base and engine;
   an upper module imports anything. ``snnjax/__init__.py`` is base (it re-exports base modules only).
   A top-level name missing from :data:`LAYERS` is itself a violation: a new module gets a layer.
3. **No module named up the layers by string.** In a base or engine module, a string constant (not a
   docstring) that starts with ``snnjax.`` and names a module of a higher layer (``importlib.
   import_module("snnjax.methods.x")``, a table of module paths) is the same upward dependency as an
   import, hidden from the import graph.

Run as a script (``python tests/test_import_layers.py``) it prints the graph's violations.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable, Mapping

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "snnjax"

BASE, ENGINE, UPPER = 0, 1, 2
LAYER_NAMES = {BASE: "base", ENGINE: "engine", UPPER: "upper"}

# Top-level name under snnjax -> layer. `progress` and `plotting` import nothing of snnjax (so they are
# base: the engine draws its progress bar, the data tools theirs, analysis its figures through them).
# `user_errors` is upper: it classifies the engine's errors (train.preflight, train.checkpoint, ...)
# for `launch` and the ablation command, the only modules that report errors to the user.
# `workdir_layout` (where each file of a run lives) imports the standard library only: every layer
# builds its paths with it. `epoch_clock` (the epoch fed to scheduled layers) imports jax only: layers read
# it, the engine feeds it.
LAYERS: dict[str, int] = {
    PACKAGE: BASE,  # snnjax/__init__.py
    **{
        f"{PACKAGE}.{name}": BASE
        for name in (
            "data",
            "models",
            "neurons",
            "surrogates",
            "losses",
            "layers",
            "trees",
            "runtime",
            "progress",
            "plotting",
            "workdir_layout",
            "epoch_clock",
        )
    },
    f"{PACKAGE}.train": ENGINE,
    **{
        f"{PACKAGE}.{name}": UPPER
        for name in ("analysis", "export", "interop", "methods", "config", "presets", "launch", "user_errors")
    },
}

_MODULE_IN_STRING = re.compile(rf"^{PACKAGE}(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


# ---------------------------------------------------------------------------------------------
# Reading the package
# ---------------------------------------------------------------------------------------------


def find_modules(root: str = ROOT) -> dict[str, str]:
    """``{module name: file path}`` for every ``.py`` file under ``root/snnjax``."""
    modules = {}
    for directory, subdirs, files in os.walk(os.path.join(root, PACKAGE)):
        subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
        for file in sorted(files):
            if not file.endswith(".py"):
                continue
            parts = os.path.relpath(os.path.join(directory, file), root)[: -len(".py")].split(os.sep)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = os.path.join(directory, file)
    return modules


def _is_package(module: str, modules: Mapping[str, str]) -> bool:
    return os.path.basename(modules[module]) == "__init__.py"


def _known(name: str, modules: Iterable[str]) -> str | None:
    """The longest prefix of dotted ``name`` that is a module of the package, else None."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in modules:
            return prefix
    return None


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def read_module(module: str, modules: Mapping[str, str]) -> tuple[set[str], set[str]]:
    """``(modules it imports, modules of the package it names in string constants)``."""
    with open(modules[module], encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=modules[module])
    package = module if _is_package(module, modules) else module.rpartition(".")[0]
    imports: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _known(alias.name, modules)
                if target is not None:
                    imports.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source != PACKAGE and not source.startswith(PACKAGE + "."):
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in modules:
                    imports.add(submodule)
                else:
                    target = _known(source, modules)
                    if target is not None:
                        imports.add(target)
    docstrings = _docstring_nodes(tree)
    named: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            match = _MODULE_IN_STRING.match(node.value)
            if match:
                target = _known(match.group(0), modules)
                if target is not None:
                    named.add(target)
    imports.discard(module)
    named.discard(module)
    return imports, named


def read_package(root: str = ROOT) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """The package's import graph and string references: two ``{module: {module, ...}}``."""
    modules = find_modules(root)
    graph, strings = {}, {}
    for module in modules:
        graph[module], strings[module] = read_module(module, modules)
    return graph, strings


# ---------------------------------------------------------------------------------------------
# Checking a graph (any graph: the tests below feed made-up ones)
# ---------------------------------------------------------------------------------------------


def layer_of(module: str, layers: Mapping[str, int] = LAYERS) -> int | None:
    """The layer of ``module``: the one of its longest prefix listed in ``layers``.

    The root package's entry covers ``snnjax/__init__.py`` only, not every module under it.
    """
    if module in layers:
        return layers[module]
    parts = module.split(".")
    for end in range(len(parts) - 1, 1, -1):
        prefix = ".".join(parts[:end])
        if prefix in layers:
            return layers[prefix]
    return None


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """For each module on a cycle, a shortest cycle through it (duplicates dropped).

    Each cycle is ``[a, b, ..., a]`` read as "a imports b imports ... imports a", starting at its
    alphabetically first module.
    """
    graph = {node: sorted(set(edges)) for node, edges in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = [0]

    def strongconnect(start: str) -> None:  # Tarjan, iterative
        work = [(start, iter(graph.get(start, ())))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            advanced = False
            for succ in edges:
                if succ not in index:
                    index[succ] = low[succ] = counter[0]
                    counter[0] += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(graph.get(succ, ()))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)

    cycles: set[tuple[str, ...]] = set()
    for component in components:
        members = set(component)
        if len(members) < 2:
            continue
        for start in sorted(members):
            # Breadth-first from `start` inside the component back to `start`: a shortest cycle through it.
            parent: dict[str, str] = {}
            frontier, seen, last = [start], {start}, None
            while frontier and last is None:
                following = []
                for node in frontier:
                    for succ in graph.get(node, ()):
                        if succ == start and succ in members:
                            last = node
                            break
                        if succ in members and succ not in seen:
                            seen.add(succ)
                            parent[succ] = node
                            following.append(succ)
                    if last is not None:
                        break
                frontier = following
            path = [last]
            while path[-1] != start:
                path.append(parent[path[-1]])
            ring = list(reversed(path))  # start, ..., last
            first = ring.index(min(ring))
            ring = ring[first:] + ring[:first]
            cycles.add((*ring, ring[0]))
    return sorted(list(cycle) for cycle in cycles)


def find_violations(
    graph: Mapping[str, Iterable[str]],
    strings: Mapping[str, Iterable[str]] | None = None,
    layers: Mapping[str, int] = LAYERS,
) -> list[str]:
    """Every violation of the layer rules in ``graph`` (and ``strings``), one readable line each."""
    violations = []
    for cycle in find_cycles(graph):
        violations.append(f"import cycle: {cycle}")
    for module in sorted(graph):
        own = layer_of(module, layers)
        if own is None:
            violations.append(f"{module}: in no layer (add its top-level name to LAYERS)")
            continue
        for target in sorted(set(graph[module])):
            theirs = layer_of(target, layers)
            if theirs is not None and theirs > own:
                violations.append(
                    f"upward import: {module} ({LAYER_NAMES[own]}) imports {target} ({LAYER_NAMES[theirs]})"
                )
        if own == UPPER:
            continue
        for target in sorted(set((strings or {}).get(module, ()))):
            theirs = layer_of(target, layers)
            if theirs is not None and theirs > own:
                violations.append(
                    f"upward string: {module} ({LAYER_NAMES[own]}) names {target!r} ({LAYER_NAMES[theirs]})"
                )
    return violations


def _report(violations: list[str]) -> str:
    return f"{len(violations)} layering violation(s) (docs/architecture.md, Layers):\n" + "\n".join(
        f"  - {line}" for line in violations
    )


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


def test_package_keeps_its_layers():
    graph, strings = read_package()
    assert f"{PACKAGE}.train.loop" in graph and f"{PACKAGE}.methods" in graph  # the walk found the package
    violations = find_violations(graph, strings)
    assert not violations, _report(violations)


def test_checker_catches_a_made_up_cycle_and_upward_imports():
    graph = {
        "snnjax.data.a": {"snnjax.data.b"},
        "snnjax.data.b": {"snnjax.data.c"},
        "snnjax.data.c": {"snnjax.data.a"},  # cycle a -> b -> c -> a
        "snnjax.train.loop": {"snnjax.methods.x", "snnjax.data.a"},  # engine -> upper
        "snnjax.methods.x": {"snnjax.train.loop", "snnjax.data.a"},  # cycle with train.loop; upper -> any is fine
        "snnjax.newthing": set(),
        "snnjax.data.d": {"snnjax.train.loop"},  # base -> engine
    }
    strings = {"snnjax.data.d": {"snnjax.methods.x"}, "snnjax.methods.x": {"snnjax.train.loop"}}
    violations = find_violations(graph, strings)
    assert violations == [
        "import cycle: ['snnjax.data.a', 'snnjax.data.b', 'snnjax.data.c', 'snnjax.data.a']",
        "import cycle: ['snnjax.methods.x', 'snnjax.train.loop', 'snnjax.methods.x']",
        "upward import: snnjax.data.d (base) imports snnjax.train.loop (engine)",
        "upward string: snnjax.data.d (base) names 'snnjax.methods.x' (upper)",
        "snnjax.newthing: in no layer (add its top-level name to LAYERS)",
        "upward import: snnjax.train.loop (engine) imports snnjax.methods.x (upper)",
    ]
    assert find_violations({"snnjax.data.a": {"snnjax.layers"}, "snnjax.layers": set()}) == []
    # Two cycles through one module are both reported.
    assert find_cycles({"a": {"b", "c"}, "b": {"a"}, "c": {"a"}}) == [["a", "b", "a"], ["a", "c", "a"]]


def test_reader_resolves_every_import_form(tmp_path):
    package = tmp_path / PACKAGE
    (package / "data").mkdir(parents=True)
    (package / "methods" / "m").mkdir(parents=True)
    (package / "__init__.py").write_text("from snnjax import layers\n")
    (package / "layers.py").write_text("")
    (package / "data" / "__init__.py").write_text("from .pipeline import load\n")
    (package / "data" / "pipeline.py").write_text(
        "import snnjax.layers as L\n"
        "from snnjax.data import stats\n"  # a module
        "from . import stats as s2\n"
        "def f():\n"
        "    from snnjax.methods.m import models  # inside a function\n"
        "    import importlib\n"
        "    return importlib.import_module('snnjax.methods.m.models'), f'snnjax.methods.{1}'\n"
    )
    (package / "data" / "stats.py").write_text(
        '"""snnjax.methods is named by a docstring only."""\nfrom ..layers import X\n'
    )
    (package / "methods" / "__init__.py").write_text("from snnjax.data import load\n")  # a name: the package
    (package / "methods" / "m" / "__init__.py").write_text("")
    (package / "methods" / "m" / "models.py").write_text("from ...data.stats import mean\n")
    graph, strings = read_package(str(tmp_path))
    assert graph == {
        "snnjax": {"snnjax.layers"},
        "snnjax.layers": set(),
        "snnjax.data": {"snnjax.data.pipeline"},
        "snnjax.data.pipeline": {"snnjax.layers", "snnjax.data.stats", "snnjax.methods.m.models"},
        "snnjax.data.stats": {"snnjax.layers"},
        "snnjax.methods": {"snnjax.data"},
        "snnjax.methods.m": set(),
        "snnjax.methods.m.models": {"snnjax.data.stats"},
    }
    assert strings["snnjax.data.pipeline"] == {"snnjax.methods.m.models", "snnjax.methods"}
    assert strings["snnjax.data.stats"] == set()


if __name__ == "__main__":
    found = find_violations(*read_package())
    print(_report(found) if found else "no layering violations")
    raise SystemExit(1 if found else 0)
