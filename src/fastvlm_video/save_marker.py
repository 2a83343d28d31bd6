"""A marker file that says "this folder is still being written": set before a save, removed after it.

Training writes it into a checkpoint or its output folder first and removes it last, so a save cut
short (kill -9, full disk) leaves a folder that predict, evaluate and resume refuse with a clear line
instead of loading it with missing files or default video settings.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError

SAVE_IN_PROGRESS = "SAVE_IN_PROGRESS"


def mark_incomplete(folder: str | Path) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SAVE_IN_PROGRESS).write_text("This folder is still being written (or its save was interrupted); do not use it.\n")


def mark_complete(folder: str | Path) -> None:
    (Path(folder) / SAVE_IN_PROGRESS).unlink(missing_ok=True)


def is_incomplete(folder: str | Path) -> bool:
    return (Path(folder) / SAVE_IN_PROGRESS).is_file()


def refuse_incomplete(folder: str | Path) -> None:
    """``ConfigError`` when ``folder``'s save never finished."""
    if is_incomplete(folder):
        raise ConfigError(
            f"{folder}: its save did not finish ({SAVE_IN_PROGRESS} is still there), so files may be missing. "
            "Use a complete checkpoint (e.g. its last checkpoint-N folder) or resume the run to save it again."
        )
