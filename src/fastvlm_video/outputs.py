"""Output folders a command may write: checked before any heavy import or model load (errors in well under 2 s)."""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError


def refuse_existing(out: str | Path, overwrite: bool = False) -> None:
    """A non-empty output directory is written into only with ``overwrite``; a file never."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file: choose an output directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} exists and is not empty: choose a new directory or pass --overwrite to write into it")
