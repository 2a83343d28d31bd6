"""The cheap check every media file passes before a decoder sees it."""

from __future__ import annotations

import os
import stat

from ..errors import UnreadableMediaError


def check_media_file(path: str) -> None:
    """Raise ``UnreadableMediaError`` naming the reason for what is plainly not a file to read.

    Any failure to look the path up counts (a name too long for the file system, a folder without
    permission, an I/O error, a NUL byte), never a bare ``OSError``: the dataset skips the sample
    and ``check`` reports it, as for a missing file.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise UnreadableMediaError(path, "file not found") from None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UnreadableMediaError(path, f"cannot access the file ({reason})") from None
    if not stat.S_ISREG(info.st_mode):
        raise UnreadableMediaError(path, "not a regular file (a directory?)")
    if info.st_size == 0:
        raise UnreadableMediaError(path, "empty file (0 bytes)")
