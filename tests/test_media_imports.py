"""The media package has no import circle: ``video.py`` imports its sources (PyAV, decord, animations,
frame folders), which take the shared types from the leaf module ``media/index.py``."""

from __future__ import annotations

import ast
from pathlib import Path

import fastvlm_video.media as media

MEDIA = Path(media.__file__).parent


def media_imports(path: Path) -> set[str]:
    """The sibling modules ``path`` imports anywhere in it (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
    return found & {p.stem for p in MEDIA.glob("*.py")}


def test_no_import_circle_in_media():
    graph = {p.stem: media_imports(p) for p in MEDIA.glob("*.py")}
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == "done":
            return
        assert state.get(name) != "open", f"import circle: {' -> '.join([*trail, name])}"
        state[name] = "open"
        for dep in sorted(graph[name]):
            visit(dep, [*trail, name])
        state[name] = "done"

    for name in sorted(graph):
        visit(name, [])
    assert graph["index"] == set()  # the leaf every source shares
    assert "video" not in graph["pyav_backend"] | graph["decord_backend"] | graph["animation"] | graph["frame_folder"]
