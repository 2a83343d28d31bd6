"""Animated GIF, WebP and PNG (APNG) as videos: read with PIL, sampled like any clip.

FFmpeg cannot decode animated WebP, so animations are read with PIL for every format. The source
gives ``load_video_tensor`` what PyAV's does, an index (every frame's start time from the frame
durations; every frame is a keyframe) and ``decode``, so the frames are chosen by the same
``plan_frames`` and stacked by the same code as a video's. Each frame is resized as a still image is
(PIL bicubic), so frame k of an animation gets exactly the pixels the same picture gets as an image.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UnreadableMediaError
from .image import to_rgb8
from .index import VideoIndex

ANIMATION_EXTENSIONS = frozenset({".gif", ".webp", ".png", ".apng"})
DEFAULT_FRAME_MS = 100  # a frame with no (or a zero) duration shows for 100 ms, as browsers show it
_PIL_ERRORS = (OSError, EOFError, ValueError, SyntaxError, Image.DecompressionBombError)


def is_animated_image(path: str | Path) -> bool:
    """True for a GIF / WebP / PNG file holding more than one frame (reads the header only).

    A file PIL cannot open is not an animation here; the still-image loader then names the reason.
    """
    if Path(str(path)).suffix.lower() not in ANIMATION_EXTENSIONS:
        return False
    try:
        with Image.open(path) as image:
            return bool(getattr(image, "is_animated", False))
    except _PIL_ERRORS:
        return False


class AnimationSource:
    """One open animation: its frame index and decoding of chosen frames (the ``pyav_backend.Source`` interface)."""

    def __init__(self, path: str, image: Image.Image):
        self.path, self.image = path, image
        durations = []
        for i in range(image.n_frames):
            image.seek(i)
            image.load()  # WebP sets a frame's duration only once it is loaded
            durations.append(float(image.info.get("duration") or DEFAULT_FRAME_MS) / 1000)
        starts = np.concatenate([[0.0], np.cumsum(durations)[:-1]]).tolist()
        self.index = VideoIndex(path, starts, list(range(len(starts))), *image.size)

    def decode(self, wanted: list[int], size_for) -> dict[int, np.ndarray]:
        """The frames at ``wanted`` as (h, w, 3) uint8 RGB, resized to ``size_for(w, h)`` (bicubic) when given."""
        out = {}
        for i in wanted:
            self.image.seek(i)
            frame = to_rgb8(self.image)
            size = frame.size if size_for is None else size_for(*frame.size)
            out[i] = np.asarray(frame if size == frame.size else frame.resize(size, Image.Resampling.BICUBIC))
        return out


@contextmanager
def open_source(path: str) -> Iterator[AnimationSource]:
    """Open an animation; every PIL failure becomes an ``UnreadableMediaError`` naming the file."""
    try:
        with Image.open(path) as image:
            yield AnimationSource(path, image)
    except _PIL_ERRORS as exc:
        raise UnreadableMediaError(path, f"cannot read animation ({exc.__class__.__name__}: {exc})") from exc
