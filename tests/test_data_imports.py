"""The data package has no import circle (type-checking imports included): the caches are media sources
(``data/media_source.py``) that the dataset uses; they never import the dataset."""

from __future__ import annotations

import ast
from pathlib import Path

import fastvlm_video.data as data_package

PACKAGE = Path(data_package.__file__).parent


def imports_of(path: Path) -> set[str]:
    """Sibling modules of the data package that ``path`` imports (``from .x import``, any nesting)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def test_no_import_circle_in_the_data_package():
    graph = {p.stem: imports_of(p) & {q.stem for q in PACKAGE.glob("*.py")} for p in PACKAGE.glob("*.py")}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})):
                return True
        return False

    circles = sorted(m for m in graph if reaches(m, m, {m}))
    assert circles == [], f"modules in an import circle: {circles}"
    assert "dataset" not in graph["frame_cache"] | graph["feature_cache"]
