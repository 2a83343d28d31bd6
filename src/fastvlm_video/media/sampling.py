"""Which frames to take from a clip: pure functions of frame counts and timestamps."""

from __future__ import annotations

import numpy as np

from ..constants import FRAME_SAMPLING_MODES  # noqa: F401  (re-exported)


def uniform_indices(num_total: int, num_frames: int) -> list[int]:
    """The seed's ``np.linspace(0, n-1, N, dtype=int)``, exactly: N frames spread over the whole clip,
    first and last included, positions truncated (not rounded) to frame indices.

    A clip shorter than N frames repeats frames (the seed's behaviour), so T is always N. Every
    uniform choice goes through here: uniform and keyframe targets, and thinning in fps mode.
    """
    if num_total < 1:
        raise ValueError("a clip needs at least one frame")
    if num_frames < 1:
        raise ValueError("num_frames must be >= 1")
    return np.linspace(0, num_total - 1, num_frames, dtype=int).tolist()


def fps_indices(timestamps: list[float], fps: float, max_frames: int, min_frames: int = 1) -> list[int]:
    """Frames at ``fps`` per second (nearest frame to each tick), thinned uniformly past ``max_frames``.

    A clip too short for ``min_frames`` ticks gets ``min_frames`` uniformly spread frames instead.
    """
    if fps <= 0:
        raise ValueError("fps must be > 0")
    ts = np.asarray(timestamps, dtype=float)
    ticks = np.arange(ts[0], ts[-1] + 1e-9, 1.0 / fps)
    picks = np.searchsorted(ts, ticks).clip(0, len(ts) - 1)
    # choose the nearer of the two neighbours
    left = (picks - 1).clip(0)
    picks = np.where(np.abs(ts[left] - ticks) <= np.abs(ts[picks] - ticks), left, picks)
    picks = list(dict.fromkeys(picks.tolist()))
    if len(picks) > max_frames:
        picks = [picks[i] for i in uniform_indices(len(picks), max_frames)]
    if len(picks) < min_frames:
        picks = uniform_indices(len(ts), min(min_frames, max_frames))
    return picks


def window(timestamps: list[float], start: float | None, end: float | None) -> tuple[int, int]:
    """Index range ``[lo, hi)`` of the frames whose timestamps lie in ``[start, end]`` (seconds)."""
    ts = np.asarray(timestamps, dtype=float)
    lo = 0 if start is None else int(np.searchsorted(ts, start - 1e-6, side="left"))
    hi = len(ts) if end is None else int(np.searchsorted(ts, end + 1e-6, side="right"))
    return lo, hi
