"""Layers that only point down: no import cycle inside ``selectsearch/``, no import of a higher layer.

Every ``import`` statement of every module counts — at module level, inside functions and under
``TYPE_CHECKING`` — so a lazy import cannot hide a knot. ``from pkg import name`` depends on the
submodule ``pkg.name`` when there is one, else on ``pkg/__init__.py``; importing ``a.b.c`` also
runs the ``__init__.py`` of ``a.b``, so that counts too (except the importer's own packages,
which Python has initialised before the importer runs).

:data:`LAYERS` is the one table of the layer order (README's "How it works" describes it): a
module may import its own layer and the layers below it, never one above.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "selectsearch"

#: lowest first: (layer, top-level modules and packages of ``selectsearch`` in it)
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core", ("errors", "types", "settings", "atomic", "locks", "registry", "ranking", "fusion",
              "selective_metrics", "significance")),
    ("data", ("data", "prompting")),
    ("models", ("train", "cluster", "encode", "models", "distill", "mico", "mtl")),
    ("engines", ("lucene", "partition")),
    ("index", ("index", "dense")),
    ("route", ("route",)),
    ("pipeline", ("pipeline",)),
    ("search", ("search",)),
    ("rerank", ("rerank",)),
    ("evaluation", ("evaluation", "bench")),
    ("interop", ("pyserini_compat", "pyterrier")),
    ("serve", ("serve",)),
    ("cli", ("cli", "__main__", "")),  # "" is selectsearch/__init__.py, the public facade
)


def _modules() -> dict[str, tuple[Path, bool]]:
    """``{dotted name: (file, is package)}`` of every module under ``selectsearch/``."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ["selectsearch", *path.relative_to(ROOT).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_package)
    return out


MODULES = _modules()


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _imports(name: str, path: Path, is_package: bool) -> set[str]:
    """The ``selectsearch`` modules that importing ``name`` may run (see the module docs)."""
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importer's package
                package = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    own = {name, *_ancestors(name)}
    found: set[str] = set()
    for target in targets:
        if target.split(".")[0] != "selectsearch":
            continue
        while target not in MODULES:  # "selectsearch.x.Name" style: the module holding the name
            target = target.rpartition(".")[0]
        if target != name:
            found.add(target)
        found.update(package for package in _ancestors(target) if package not in own)
    return found


GRAPH = {name: _imports(name, path, is_package) for name, (path, is_package) in MODULES.items()}


def layer_of(module: str) -> int:
    """Index in :data:`LAYERS` of ``module`` (by its top-level name under ``selectsearch``)."""
    top = module.split(".")[1] if "." in module else ""
    for i, (_, members) in enumerate(LAYERS):
        if top in members:
            return i
    raise AssertionError(f"{module} is in no layer: add selectsearch.{top} to LAYERS in tests/test_layers.py "
                         "and to README's 'How it works'")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
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
                    if len(component) > 1:
                        out.append(sorted(component))
    return out


def test_every_module_is_in_a_layer() -> None:
    for module in MODULES:
        layer_of(module)
    listed = [m for _, members in LAYERS for m in members]
    assert len(listed) == len(set(listed)), "a name appears in two layers"
    present = {m.split(".")[1] for m in MODULES if "." in m} | {""}
    assert set(listed) <= present, f"LAYERS names what does not exist: {sorted(set(listed) - present)}"


def test_no_import_cycle() -> None:
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles inside selectsearch/: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_import_of_a_higher_layer() -> None:
    upward = sorted(f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
                    for m, targets in GRAPH.items() for t in targets if layer_of(t) > layer_of(m))
    assert not upward, "imports of a higher layer:\n" + "\n".join(upward)


def test_the_walk_sees_lazy_imports(tmp_path: Path) -> None:
    """The walker itself: function-level and TYPE_CHECKING imports, submodules, implicit packages."""
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from selectsearch.search import X\n"
                      "def f():\n    from selectsearch import settings\n    import selectsearch.index.sharded\n")
    found = _imports("selectsearch.route.fake", source, False)
    assert found == {"selectsearch.search", "selectsearch.settings", "selectsearch.index.sharded",
                     "selectsearch.index"}


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_cycle_finder(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert _cycles(graph) == expected
