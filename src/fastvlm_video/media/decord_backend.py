"""decord backend (the seed's decoder): ``get_batch`` at the requested size.

Uses the same frame index as PyAV, so both backends return the same frames for a request.
"""

from __future__ import annotations

import numpy as np

from ..errors import MediaError
from .pyav_backend import SizeFn
from .video import VideoIndex


def decode(index: VideoIndex, wanted: list[int], size_for: SizeFn | None) -> dict[int, np.ndarray]:
    """Decode the frames at ``wanted`` with decord, resized inside the decoder."""
    import decord

    w, h = (index.width, index.height) if size_for is None else size_for(index.width, index.height)
    try:
        reader = decord.VideoReader(index.path, ctx=decord.cpu(0), width=w, height=h, num_threads=1)
        n = len(reader)
        batch = reader.get_batch([min(i, n - 1) for i in wanted]).asnumpy()
    except (decord.DECORDError, RuntimeError, IndexError) as exc:
        raise MediaError(index.path, f"decord cannot decode ({exc.__class__.__name__}: {exc})") from exc
    return {i: frame for i, frame in zip(wanted, batch)}
