"""decord backend (the seed's decoder): ``get_batch`` at the requested size.

Uses the same frame index as PyAV, so both backends return the same frames for a request.
Where decord is known to go wrong the clip is handed to PyAV (logged): decord 0.6 ignores
rotation metadata (and fails on rotated clips when asked for a size), a frame count that
disagrees with the packet index means decord's frame numbers are not ours, and any decord
error (e.g. a truncated tail) gets a second chance with PyAV, which raises if it fails too.
"""

from __future__ import annotations

import logging

import numpy as np

from . import pyav_backend
from .index import SizeFn, VideoIndex

logger = logging.getLogger(__name__)


def decode(index: VideoIndex, wanted: list[int], size_for: SizeFn | None) -> dict[int, np.ndarray]:
    """Decode the frames at ``wanted`` with decord, resized inside the decoder."""
    import decord

    if pyav_backend.read_rotation(index.path):
        return _with_pyav(index, wanted, size_for, "rotation metadata")
    w, h = (index.width, index.height) if size_for is None else size_for(index.width, index.height)
    try:
        reader = decord.VideoReader(index.path, ctx=decord.cpu(0), width=w, height=h, num_threads=1)
        if len(reader) != index.num_frames:
            return _with_pyav(index, wanted, size_for, f"decord counts {len(reader)} frames, the packets {index.num_frames}")
        batch = reader.get_batch(wanted).asnumpy()
    except (decord.DECORDError, RuntimeError, IndexError) as exc:
        # PyAV already indexed this file, so it may well decode what decord cannot (a truncated tail)
        return _with_pyav(index, wanted, size_for, f"decord failed: {exc.__class__.__name__}: {str(exc)[-200:]}")
    return dict(zip(wanted, batch))


def _with_pyav(index: VideoIndex, wanted: list[int], size_for: SizeFn | None, why: str) -> dict[int, np.ndarray]:
    logger.info("%s: decoding with PyAV instead of decord (%s)", index.path, why)
    return pyav_backend.decode(index, wanted, size_for)
