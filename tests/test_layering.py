"""The house's layering: crimemap's imports form no circle, and no module imports from a layer above its own.

Every ``import`` and ``from ... import`` in ``src/crimemap`` counts, wherever
it stands: at module level, inside a function, under ``TYPE_CHECKING``. An
import inside a function may put off loading an optional heavy library
(pyogrio, psycopg, the PostGIS store), but it cannot hide a circle from this
test. ``from package import name`` is an edge to the submodule when ``name`` is
one, else to the package; a package's parents, which Python runs first, are
not counted (as import-linter and pydeps count them).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "leaf modules: plain values and vocabulary",
        (
            "crimemap", "crimemap.cli_help", "crimemap.console", "crimemap.deadline", "crimemap.echo",
            "crimemap.errors", "crimemap.geo", "crimemap.numerals", "crimemap.wire",
            "crimemap.lifeline", "crimemap.months", "crimemap.query", "crimemap.records", "crimemap.rings",
            "crimemap.settings", "crimemap.stopping", "crimemap.vocab", "crimemap.vocab_stops",
        ),
    ),
    ("area geometry", ("crimemap.geometry.*",)),
    (
        "queries and renderers",
        (
            "crimemap.cql", "crimemap.policeuk_json", "crimemap.stats_output", "crimemap.stats_query",
            "crimemap.stats_stops_query", "crimemap.where", "crimemap.where_columns", "crimemap.where_syntax",
        ),
    ),
    ("the store", ("crimemap.store.*",)),
    (
        "loading and exporting, and readers over the store",
        ("crimemap.load.*", "crimemap.export.*", "crimemap.boundaries", "crimemap.neighbourhoods",
         "crimemap.neighbourhood_stats"),
    ),
    ("harvesting", ("crimemap.harvest.*",)),
    ("the HTTP APIs", ("crimemap.api.*",)),
    ("the command line", ("crimemap.cli", "crimemap.__main__")),
)  # fmt: skip
"""Layers from the bottom up: a module may import from its own layer and the layers below, never above.

``name`` is that module; ``name.*`` is a package and everything in it."""


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_edges(src: Path = SRC, top: str = "crimemap") -> dict[str, dict[str, int]]:
    """Module -> {module it imports: first line that does}, for every module under ``src/top``."""
    paths = {module_name(p, src): p for p in sorted((src / top).rglob("*.py"))}
    edges: dict[str, dict[str, int]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in _targets(node, package):
                while target not in paths and "." in target:
                    target = target.rpartition(".")[0]
                if target in paths and target != name and (target.startswith(top + ".") or target == top):
                    found.setdefault(target, node.lineno)  # type: ignore[attr-defined]
        edges[name] = found
    return edges


def _targets(node: ast.AST, package: str) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            parts = parts[: len(parts) - node.level + 1]
            base = ".".join([*parts, base] if base else parts)
        for alias in node.names:
            yield f"{base}.{alias.name}"  # a submodule if there is one, else trimmed back to the module


def circles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def layer_of(module: str) -> int | None:
    for rank, (_, members) in enumerate(LAYERS):
        for member in members:
            if module == member.removesuffix(".*") or (member.endswith(".*") and module.startswith(member[:-1])):
                return rank
    return None


EDGES = import_edges()


def test_the_import_graph_has_no_circle() -> None:
    found = circles(EDGES)
    described = [
        "; ".join(f"{a} -> {b} (line {EDGES[a][b]})" for a in circle for b in EDGES[a] if b in circle)
        for circle in found
    ]
    assert not found, "import circles:\n" + "\n".join(described)


def test_every_module_has_a_layer() -> None:
    assert [m for m in EDGES if layer_of(m) is None] == [], "add the modules to LAYERS"


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    climbs = [
        f"{a} ({LAYERS[layer_of(a) or 0][0]}) -> {b} ({LAYERS[layer_of(b) or 0][0]}), line {line}"
        for a, targets in sorted(EDGES.items())
        for b, line in targets.items()
        if (layer_of(a) or 0) < (layer_of(b) or 0)
    ]
    assert climbs == [], "imports that climb:\n" + "\n".join(climbs)


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_a_circle_hidden_in_a_function_is_found(tmp_path: Path) -> None:
    src = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from pkg.b import helper\n",
            "b.py": "def helper():\n    from pkg import a  # put off to dodge the circle\n    return a\n",
            "c.py": "from . import a\n",
        },
    )
    edges = import_edges(src, "pkg")
    assert edges["pkg.b"] == {"pkg.a": 2}
    assert edges["pkg.c"] == {"pkg.a": 1}
    assert circles(edges) == [["pkg.a", "pkg.b"]]


@pytest.mark.parametrize(
    ("module", "layer"),
    [("crimemap.records", 0), ("crimemap.geometry.areas", 1), ("crimemap.store.sqlite.writer", 3), ("crimemap.cli", 7)],
)
def test_layers_are_found_by_module_and_by_package(module: str, layer: int) -> None:
    assert layer_of(module) == layer
