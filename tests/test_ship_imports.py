"""The shipping modules import each other in one direction only (no import circles, also inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

import fastvlm_video

PACKAGE = Path(fastvlm_video.__file__).parent


def imports_of(path: Path, package: str) -> set[str]:
    """Modules of ``fastvlm_video`` that ``path`` imports, at any depth (function-level imports count)."""
    parts = package.split(".")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = parts[: len(parts) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.startswith("fastvlm_video.")}


def module_graph(folder: Path) -> dict[str, set[str]]:
    names = {f"fastvlm_video.{folder.name}.{p.stem}": p for p in folder.glob("*.py") if p.stem != "__init__"}
    return {name: imports_of(path, name.rsplit(".", 1)[0]) & set(names) for name, path in names.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, stack = [], []

    def visit(node: str) -> None:
        if node in stack:
            found.append(stack[stack.index(node) :] + [node])
            return
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            visit(nxt)
        stack.pop()

    for start in sorted(graph):
        visit(start)
    return found


def test_the_ship_package_has_no_import_circle():
    graph = module_graph(PACKAGE / "ship")
    assert "fastvlm_video.ship.apple" in graph["fastvlm_video.ship.coreml"]  # the graph sees function-level imports
    assert cycles(graph) == []
