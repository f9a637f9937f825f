"""pynas's imports go one way: the layer table of pynas/ARCHITECTURE.md, checked with `ast`.

Every import of a pynas module counts, also one inside a function. The table is parsed from
ARCHITECTURE.md (its one home); the README names the same order.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "pynas"
ROOT = "pynas"  # the package's own __init__.py
ROOT_MAY_IMPORT_UP_TO = 2  # pynas/__init__.py loads the compiled core: _extension and ops


@dataclass(frozen=True)
class Layer:
    number: int
    name: str
    units: tuple[str, ...]
    independent: bool  # its units may not import each other


def read_layers(text: str) -> list[Layer]:
    """The rows ``| N name | `unit`, ... | note |`` of ARCHITECTURE.md's table."""
    layers = []
    for line in text.splitlines():
        match = re.match(r"\|\s*(\d+)\s+([^|]+?)\s*\|([^|]*)\|([^|]*)\|", line)
        if match:
            units = tuple(re.findall(r"`([\w.]+)`", match.group(3)))
            independent = match.group(4).strip().startswith("independent")
            layers.append(Layer(int(match.group(1)), match.group(2), units, independent))
    return layers


def layer_order(layers: list[Layer]) -> str:
    return " → ".join(layer.name.replace(", ", " / ") for layer in layers)


def module_name(path: Path, top: Path) -> str:
    parts = list(path.relative_to(top).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the pynas modules it imports (at the top or inside functions)."""
    paths = {module_name(p, package.parent): p for p in package.rglob("*.py")}

    def known(name: str) -> str | None:  # `pynas.a.b.attr` -> the module `pynas.a.b`
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {known(a.name) for a in node.names if a.name.split(".")[0] == ROOT}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's package
                    here = module if path.name == "__init__.py" else module.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        here = here.rpartition(".")[0]
                    base = f"{here}.{base}" if base else here
                if base.split(".")[0] != ROOT:
                    continue
                for alias in node.names:  # `from pynas.x import submodule` imports the submodule
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in paths else known(base))
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def violations(graph: dict[str, set[str]], layers: list[Layer]) -> list[str]:
    """Every import that goes up or across an independent layer, and every cycle."""
    layer_of = {unit: layer for layer in layers for unit in layer.units}
    problems = []
    units = {unit_of(m) for m in graph} - {ROOT}
    unlisted = sorted(units - set(layer_of))
    problems += [f"unit {u!r} is in no layer of ARCHITECTURE.md" for u in unlisted]
    unit_graph: dict[str, set[str]] = {}
    for module, targets in sorted(graph.items()):
        source = unit_of(module)
        for target in sorted(targets):
            dest = unit_of(target)
            if dest == source or dest not in layer_of:
                continue
            if source == ROOT:
                if layer_of[dest].number > ROOT_MAY_IMPORT_UP_TO:
                    problems.append(f"{module} imports {target} (pynas/__init__ may load only "
                                    f"layers <= {ROOT_MAY_IMPORT_UP_TO})")  # fmt: skip
                continue
            if source not in layer_of:
                continue
            here, there = layer_of[source], layer_of[dest]
            if there.number > here.number:
                problems.append(
                    f"upward import: {module} (layer {here.number} {here.name}) "
                    f"imports {target} (layer {there.number} {there.name})"
                )
            elif there.number == here.number and here.independent:
                problems.append(f"{module} imports {target}: layer {here.number} "
                                f"({here.name}) is independent")  # fmt: skip
            unit_graph.setdefault(source, set()).add(dest)
    problems += [f"import cycle between units: {' <-> '.join(c)}" for c in cycles(unit_graph)]
    problems += [f"import cycle between modules: {' <-> '.join(c)}" for c in cycles(graph)]
    return problems


def test_table_parses():
    layers = read_layers((PACKAGE / "ARCHITECTURE.md").read_text())
    assert [layer.number for layer in layers] == list(range(len(layers))) and len(layers) >= 9
    units = [u for layer in layers for u in layer.units]
    assert len(units) == len(set(units)), "a unit is in two layers"


def test_imports_go_one_way():
    layers = read_layers((PACKAGE / "ARCHITECTURE.md").read_text())
    problems = violations(import_graph(), layers)
    assert not problems, "\n".join(problems)


def test_readme_names_the_layer_order():
    layers = read_layers((PACKAGE / "ARCHITECTURE.md").read_text())
    readme = " ".join((REPO / "README.md").read_text().split())
    assert layer_order(layers) in readme, f"README.md should name the layers: {layer_order(layers)}"


def test_checker_finds_an_upward_import_a_crossing_and_cycles():
    layers = [Layer(0, "low", ("a", "b"), True), Layer(1, "high", ("c", "d"), False)]
    clean = {"pynas.c.x": {"pynas.a.y", "pynas.d.z"}, "pynas.d.z": {"pynas.b"}, "pynas.a.y": set()}
    assert violations(clean, layers) == []
    up = {**clean, "pynas.a.y": {"pynas.c.x"}}
    assert any(p.startswith("upward import: pynas.a.y") for p in violations(up, layers))
    across = {**clean, "pynas.b": {"pynas.a.y"}}
    assert any("is independent" in p for p in violations(across, layers))
    loop = {**clean, "pynas.d.z": {"pynas.c.x"}}
    found = violations(loop, layers)
    assert any("between units: c <-> d" in p for p in found)
    assert any("between modules: pynas.c.x <-> pynas.d.z" in p for p in found)
    assert any("in no layer" in p for p in violations({"pynas.e": set()}, layers))


def test_graph_sees_imports_inside_functions(tmp_path):
    package = tmp_path / "pynas"
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("")
    (package / "high.py").write_text("")
    (package / "low" / "mod.py").write_text(
        "def f():\n    from pynas.high import thing\n    from . import other\n"
    )
    (package / "low" / "other.py").write_text("")
    graph = import_graph(package)
    assert graph["pynas.low.mod"] == {"pynas.high", "pynas.low.other"}
