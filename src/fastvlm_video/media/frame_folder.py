"""A folder of frames is a video: its images in natural order ("2.jpg" before "10.jpg"), frame i at i / fps.

The rate comes from, first to last: the ``MediaRef``'s own ``fps`` (a benchmark reader that knows it),
a sidecar file in the folder (``fps.txt`` holding a number, or ``meta.json`` with ``{"fps": 3}``), then
``--frames_fps`` (``VideoConfig.frames_fps``, default 1: frame i is at i seconds). Every frame is a
keyframe, so uniform, fps and keyframe sampling and segment ``start``/``end`` work as for a video file.

Listing the folder reads names only (and the first frame's header for the index's size); only the
frames a request samples are decoded, each exactly as a still image is (``image.load_image``: EXIF
orientation, 16-bit scaling) and resized as ``image_to_tensor`` resizes (PIL bicubic), so frame k of a
folder has the pixels the same file gets as an image. Files that are not images (the sidecar, notes),
hidden files and subfolders are ignored.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from ..constants import DEFAULT_FRAMES_FPS
from ..errors import MediaError, UnreadableMediaError
from .image import load_image
from .index import SizeFn, VideoIndex
from .kinds import FRAME_EXTENSIONS

FPS_SIDECAR = "fps.txt"
META_SIDECAR = "meta.json"
_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key putting "frame_2" before "frame_10" (digit runs compare as numbers, text case-insensitively)."""
    parts = _DIGITS.split(name)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts) + ((1, 0, name),)


def list_frames(folder: str | Path) -> list[str]:
    """The image file names of ``folder`` in natural order; ``UnreadableMediaError`` naming the folder when there are none."""
    folder = str(folder)
    try:
        with os.scandir(folder) as entries:
            listing = [(e.name, e.is_dir()) for e in entries if not e.name.startswith(".")]
    except FileNotFoundError:
        raise UnreadableMediaError(folder, "folder not found") from None
    except OSError as exc:
        raise UnreadableMediaError(folder, f"cannot list the frame folder ({exc.strerror or exc})") from None
    names = [name for name, is_dir in listing if not is_dir and Path(name).suffix.lower() in FRAME_EXTENSIONS]
    if not names:
        raise UnreadableMediaError(folder, f"a folder is read as a video of its frames, but it holds no image "
                                           f"({', '.join(sorted(FRAME_EXTENSIONS))}); it holds {_describe(listing)}")  # fmt: skip
    return sorted(names, key=natural_key)


def _describe(listing: list[tuple[str, bool]]) -> str:
    """What a folder holds instead of frames, e.g. "3 file(s) (.mp4 x3), 1 folder(s)"."""
    folders = sum(is_dir for _, is_dir in listing)
    suffixes = Counter(Path(name).suffix.lower() or "no extension" for name, is_dir in listing if not is_dir)
    files = sum(suffixes.values())
    if not files and not folders:
        return "nothing (empty)"
    kinds = ", ".join(f"{s} x{n}" for s, n in suffixes.most_common(4))
    return ", ".join(p for p in (f"{files} file(s) ({kinds})" if files else "", f"{folders} folder(s)" if folders else "") if p)


def folder_fps(folder: str | Path, default: float = DEFAULT_FRAMES_FPS) -> float:
    """Frames per second of a frame folder: its ``fps.txt`` or ``meta.json`` ``fps``, else ``default``.

    A sidecar that is there but unusable is a ``MediaError`` naming it (never silently ignored).
    """
    folder = Path(folder)
    txt, meta = folder / FPS_SIDECAR, folder / META_SIDECAR
    if txt.is_file():
        where, raw = txt, txt.read_text(errors="replace").strip()
    elif meta.is_file():
        try:
            data = json.loads(meta.read_text(errors="replace"))
        except json.JSONDecodeError as exc:
            raise MediaError(str(meta), f"not valid JSON ({exc.msg}): write e.g. {{\"fps\": 3}}") from None
        if not isinstance(data, dict) or "fps" not in data:
            return default
        where, raw = meta, data["fps"]
    else:
        return default
    try:
        fps = float(raw)
    except (TypeError, ValueError):
        fps = math.nan
    if not math.isfinite(fps) or fps <= 0:
        raise MediaError(str(where), f"frames per second must be a number > 0, got {raw!r}")
    return fps


def folder_stamp(folder: str | Path) -> tuple[int, int] | None:
    """``(total bytes, fingerprint)`` of a folder's listing: every file's name, size and mtime (the sidecar
    included), so adding, removing, renaming or editing a frame changes it. ``None`` when unreadable."""
    digest, total = hashlib.blake2b(digest_size=8), 0
    try:
        with os.scandir(folder) as entries:
            rows = sorted((e.name, e.stat()) for e in entries if e.is_file())
    except OSError:
        return None
    for name, st in rows:
        total += st.st_size
        digest.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return total, int.from_bytes(digest.digest(), "big") >> 1  # fits a signed 64-bit integer


def read_index(folder: str | Path, fps: float = DEFAULT_FRAMES_FPS) -> VideoIndex:
    """The ``VideoIndex`` of a frame folder (names and the first frame's header only)."""
    with open_source(str(folder), fps) as source:
        return source.index


class FrameFolderSource:
    """One frame folder: its index and decoding of chosen frames (the ``pyav_backend.Source`` interface)."""

    def __init__(self, folder: str, fps: float):
        self.path = folder
        self.names = list_frames(folder)
        width, height = self._size(self.names[0])
        self.index = VideoIndex(folder, [i / fps for i in range(len(self.names))], list(range(len(self.names))), width, height)

    def _file(self, i: int) -> str:
        return os.path.join(self.path, self.names[i])

    def _size(self, name: str) -> tuple[int, int]:
        """Display size of one frame from its header (EXIF rotation applied)."""
        path = os.path.join(self.path, name)
        try:
            with Image.open(path) as im:
                w, h = im.size
                rotated = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise UnreadableMediaError(self.path, f"frame {name!r} cannot be read ({exc.__class__.__name__}: {exc})") from exc
        return (h, w) if rotated else (w, h)

    def decode(self, wanted: list[int], size_for: SizeFn | None) -> dict[int, np.ndarray]:
        """The frames at ``wanted`` as (h, w, 3) uint8 RGB, resized to ``size_for(w, h)`` (bicubic) when given."""
        out = {}
        for i in wanted:
            try:
                frame = load_image(self._file(i))
            except MediaError as exc:
                raise UnreadableMediaError(self.path, f"frame {self.names[i]!r}: {exc.reason}") from exc
            size = frame.size if size_for is None else size_for(*frame.size)
            out[i] = np.asarray(frame if size == frame.size else frame.resize(size, Image.Resampling.BICUBIC))
        return out


@contextmanager
def open_source(folder: str, fps: float = DEFAULT_FRAMES_FPS) -> Iterator[FrameFolderSource]:
    """``with open_source(folder, fps) as src: src.index, src.decode(...)``."""
    yield FrameFolderSource(folder, fps)
