"""Saved files readable like any other file the user writes.

safetensors (and transformers' shard writer) create weights files with mode 0600, while ``json`` files get
the usual ``0666 & ~umask`` (0644): another user of a shared machine could read the config but not the
weights (``serve``, ``push``, ``evaluate`` fail on them). Each writer of a checkpoint calls
``share_like_other_files`` on its folder once the save is done.
"""

from __future__ import annotations

import os
from pathlib import Path


def current_umask() -> int:
    """The process's umask (read from /proc where it can be, so nothing is changed, even for a moment)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def share_like_other_files(folder: str | Path) -> None:
    """Give every file in ``folder`` (not below it) written owner-only the mode a plain new file gets."""
    wanted = 0o666 & ~current_umask()
    for path in Path(folder).iterdir():
        try:
            mode = path.lstat().st_mode
            if path.is_file() and not path.is_symlink() and (mode & 0o777) == 0o600 and wanted != 0o600:
                path.chmod(wanted)
        except OSError:  # a file removed meanwhile (checkpoint rotation), or not ours to change
            continue
