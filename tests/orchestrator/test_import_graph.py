"""The house's dependencies point one way: no import circle between orchestrator's modules,
counting every import a file makes (at module level, inside functions, under TYPE_CHECKING),
and trainers/ never imports orchestrator/ (nor Ray, Optuna, MLflow or click). Read from the
source with `ast`, nothing imported."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def modules(package: str) -> dict[str, Path]:
    """Every module of `package` by its dotted name (a package by its __init__'s file)."""
    found = {}
    for file in (ROOT / package).rglob("*.py"):
        parts = file.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return found


def imported(name: str, file: Path) -> set[str]:
    """The dotted names `file` (module `name`) imports, every import statement counted."""
    here = name.split(".") if file.name == "__init__.py" else name.split(".")[:-1]
    names = set()
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package up
                up = here[:len(here) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports (a module's own package's __init__ not
    counted: Python runs it first whatever the module imports)."""
    found = modules(package)

    def owner(dotted: str) -> str | None:
        while dotted and dotted not in found:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    edges = {}
    for name, file in found.items():
        targets = {owner(t) for t in imported(name, file) if t.split(".")[0] == package}
        edges[name] = {t for t in targets if t and t != name and not name.startswith(t + ".")}
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
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


def test_no_module_of_orchestrator_imports_itself_back_through_others():
    edges = graph("orchestrator")
    assert len(edges) > 40 and edges["orchestrator.driver.scheduler"]  # the graph was read
    assert circles(edges) == []


def test_the_packages_import_each_other_one_way():
    """Collapsed to its packages (spec, stores, study, ...; a root module stands alone), the
    graph has no circle either: a package imports only those below it."""
    packages: dict[str, set[str]] = {}
    for module, targets in graph("orchestrator").items():
        package = ".".join(module.split(".")[:2])
        packages.setdefault(package, set()).update(
            ".".join(t.split(".")[:2]) for t in targets)
    for package, targets in packages.items():
        targets.discard(package)
        targets.discard("orchestrator")  # the root __init__: the map, it imports nothing
    assert "orchestrator.study" in packages["orchestrator.tracking"]  # the graph was read
    assert circles(packages) == []


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_trainers_import_no_orchestrator_and_no_orchestration_library():
    banned = ("orchestrator", "ray", "optuna", "mlflow", "click")
    found = {f"{name}: {target}" for name, file in modules("trainers").items()
             for target in imported(name, file) if target.split(".")[0] in banned}
    assert found == set()
