"""The module structure: no import cycle among robust_transfer's modules, and the layers import
downwards only (models below evaluation; evaluation's metrics and attack parameters light).

Imports are read from the source with `ast`, every module and every import statement, also
those inside functions (a lazy import is still a cycle, only a later one), so the check costs
milliseconds and imports nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import ROOT

PACKAGE = "robust_transfer"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """`{module: {robust_transfer modules it imports}}`; `from a.b import c` names the module
    `a.b.c` when there is one, else `a.b`."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                for alias in node.names:
                    targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
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
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_the_package_modules():
    graph = import_graph()
    assert len(graph) > 40 and f"{PACKAGE}.evaluation.splits" in graph  # it read the package
    assert f"{PACKAGE}.report" in graph[f"{PACKAGE}.pipeline"]  # and its imports
    assert cycles(graph) == []


def test_models_sit_below_evaluation():
    graph = import_graph()
    evaluation = {m for m in graph if m == f"{PACKAGE}.evaluation" or m.startswith(f"{PACKAGE}.evaluation.")}
    for module, targets in graph.items():
        if module.startswith(f"{PACKAGE}.models"):
            assert not targets & evaluation, f"{module} imports {sorted(targets & evaluation)}"
        if module in evaluation:
            assert not {t for t in targets if t.startswith(f"{PACKAGE}.models")}, module
    # report.py and the degradation callback compute their metrics with the evaluation package
    assert f"{PACKAGE}.evaluation.metrics" in graph[f"{PACKAGE}.report"]
    assert f"{PACKAGE}.evaluation.metrics" in graph[f"{PACKAGE}.callbacks.degradation"]


def _external_imports(path: Path) -> set[str]:
    """The top-level packages a module imports, its lazy imports included."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_data_and_evaluation_layers_take_plain_arguments_not_the_config():
    graph, modules = import_graph(), _modules()
    layers = [m for m in modules if m.startswith((f"{PACKAGE}.data", f"{PACKAGE}.evaluation"))]
    assert {f"{PACKAGE}.data.tasks", f"{PACKAGE}.evaluation.splits"} <= set(layers)
    for module in layers:
        assert "omegaconf" not in _external_imports(modules[module]), f"{module} reads the config"
        assert f"{PACKAGE}.config" not in graph[module], f"{module} imports robust_transfer.config"
    assert "omegaconf" in _external_imports(modules[f"{PACKAGE}.pipeline"])  # the check can see it
