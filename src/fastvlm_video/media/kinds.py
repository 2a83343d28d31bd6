"""What a media path is: a video file (by extension), a folder of frames (a directory), or an image.

The one rule every command uses to decide how a path is read: a directory is a video whose frames
are its images (``frame_folder.py``); a file with a video extension is a video; anything else is an
image (an animated GIF/WebP/PNG is then read as a video by ``animation.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".flv", ".wmv", ".webm", ".m4v", ".mpg", ".mpeg", ".3gp", ".ts"})
# still images a frame folder's frames may be (PIL reads them all; 16-bit PNG/TIFF included)
FRAME_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


def is_video_file(path: str | Path) -> bool:
    """True when the file name ends with a video extension (case-insensitive)."""
    return Path(str(path)).suffix.lower() in VIDEO_EXTENSIONS


def is_frame_folder(path: str | Path) -> bool:
    """True when ``path`` is a directory: it is read as a video of its images (``frame_folder.py``)."""
    return os.path.isdir(path)


STILL_EXTENSIONS = FRAME_EXTENSIONS | {".gif", ".apng"}  # named as images: no need to look at the disk


def media_type(path: str | Path) -> str:
    """``"video"`` for a video file or a folder of frames, else ``"image"``.

    A name with a video or image extension is decided by the name alone (no ``stat``: records are
    parsed by the million); any other path is a video when it is a directory. Decoding checks for a
    directory again (``dataset.media_kind``), so even a folder named like an image is read as frames.
    """
    suffix = Path(str(path)).suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    if suffix in STILL_EXTENSIONS:
        return "image"
    return "video" if is_frame_folder(path) else "image"
