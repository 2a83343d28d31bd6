"""``predictions.jsonl``: one JSON row per evaluated sample, appended as results arrive.

A run killed mid-write leaves at most one truncated last line; ``read_rows`` drops it (and says so)
so a resumed run starts cleanly from the last complete row.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..constants import IMAGE_TOKEN

logger = logging.getLogger(__name__)

PREDICTIONS = "predictions.jsonl"
METRICS = "metrics.json"
REPORT = "report.html"
FRAMES = "frames"


def read_rows(path: str | Path, repair: bool = False) -> list[dict]:
    """Every complete row of a predictions file ([] when absent); ``repair`` cuts a broken tail off the file."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="\n") as f:  # "\n" only: U+2028 etc. are legal inside JSON strings
        lines = f.readlines()
    rows = []
    for n, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if n != len(lines) - 1:
                raise ValueError(f"{path}: line {n + 1} is not valid JSON") from None
            logger.warning("%s: dropping a truncated last line (an interrupted run)", path)
            if repair:
                path.write_text("".join(lines[:-1]), encoding="utf-8")
        else:
            if not line.endswith("\n") and repair:  # complete JSON but no newline yet
                path.write_text("".join(lines) + "\n", encoding="utf-8")
    return rows


def append_rows(path: str | Path, rows: list[dict]) -> None:
    """Append rows and flush, so a kill loses at most the batch being generated."""
    with open(path, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_json(path: str | Path, data: dict) -> None:
    Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def question_text(row: dict) -> str:
    """A row's question without media placeholders, for display."""
    return row["question"].replace(IMAGE_TOKEN, "").strip()
