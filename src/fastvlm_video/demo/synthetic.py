"""Synthetic H.264 clips written with PyAV: the demo's motion task and the tests' fixtures."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

DIRECTIONS = ("left", "right", "up", "down")
_STEP = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}


def write_video(
    path: str | Path, frames: np.ndarray, fps: int = 10, gop: int = 12, codec: str = "libx264", pix_fmt: str = "yuv420p"
) -> Path:
    """Encode (T, H, W, 3) uint8 RGB frames to ``path`` (H.264 by default) with a keyframe every ``gop``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames.shape[1:3]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.gop_size = gop
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "18", "keyint_min": str(gop), "sc_threshold": "0"}
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def numbered_frames(num_frames: int, width: int = 64, height: int = 48) -> np.ndarray:
    """Frames whose frame number is readable back from pixel intensity: frame i is grey level ``4*i % 256``.

    Flat colour survives lossy coding almost exactly, so ``frame_number_of`` recovers i.
    """
    levels = (np.arange(num_frames) * 4) % 256
    return np.broadcast_to(levels[:, None, None, None], (num_frames, height, width, 3)).astype(np.uint8).copy()


def frame_number_of(frame: np.ndarray) -> int:
    """Inverse of ``numbered_frames`` (for frames numbered below 64)."""
    return int(round(float(np.asarray(frame, dtype=np.float32).mean()) / 4))


def square_frame(x: int, y: int, size: int = 64, square: int = 16) -> np.ndarray:
    """One (size, size, 3) uint8 frame: a red square with its top-left corner at (x, y), wrapping around the edges."""
    frame = np.zeros((size, size, 3), dtype=np.uint8)
    frame[..., 2] = 40  # dark blue background
    coords = np.arange(square)
    frame[np.ix_((y + coords) % size, (x + coords) % size)] = (230, 30, 30)
    return frame


def moving_square_frames(
    direction: str,
    rng: np.random.Generator,
    num_frames: int = 16,
    size: int = 64,
    square: int = 16,
    travel: float = 1.0,
    start: tuple[int, int] | None = None,
) -> np.ndarray:
    """A square on a dark background moving ``travel`` frame widths over the clip, wrapping around.

    The start (top-left corner) is ``start``, or uniform at random from ``rng``; the motion wraps, so
    neither the first nor the last frame tells the direction: only comparing frames does.
    """
    dx, dy = _STEP[direction]
    x0, y0 = start if start is not None else rng.integers(0, size, size=2)
    step = travel * size / num_frames
    positions = [(int(round(x0 + dx * step * t)) % size, int(round(y0 + dy * step * t)) % size) for t in range(num_frames)]
    return np.stack([square_frame(x, y, size, square) for x, y in positions])
