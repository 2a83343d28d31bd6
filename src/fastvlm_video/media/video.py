"""Video -> sampled frames: one interface over PyAV and decord, frames resized inside the decoder.

``load_video_tensor`` is what the dataset and predict use: it returns a ``VideoClip`` whose
``frames`` is a model-ready (T, 3, S, S) uint8 tensor plus the indices and timestamps (seconds)
of the frames taken. ``load_video_frames`` is the seed-compatible API returning PIL images.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import MediaError
from . import sampling
from .transforms import place_on_square, resized_dims

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".flv", ".wmv", ".webm", ".m4v", ".mpg", ".mpeg", ".3gp", ".ts"})
VIDEO_BACKENDS = ("auto", "pyav", "decord")


def is_video_file(path: str | Path) -> bool:
    """True when the file name ends with a video extension (case-insensitive)."""
    return Path(str(path)).suffix.lower() in VIDEO_EXTENSIONS


@dataclass
class VideoIndex:
    """What a clip holds, read from its packets (not from container metadata, which may lie)."""

    path: str
    timestamps: list[float]  # presentation time of every frame, seconds, sorted
    keyframes: list[int]  # indices (into ``timestamps``) of the keyframes
    width: int
    height: int
    pts: list[int] = field(default_factory=list, repr=False)  # raw stream timestamps, for seeking

    @property
    def num_frames(self) -> int:
        return len(self.timestamps)


@dataclass
class FramePlan:
    """The frames to decode (sorted, unique) and how each output slot maps onto them."""

    indices: list[int]  # output order, may repeat
    exact: bool = True  # False: keyframe mode, snap to the keyframe at or before each target
    fallbacks: int = 0  # keyframe mode: targets decoded exactly because keyframes ran out


@dataclass
class VideoClip:
    """Sampled frames of one clip, ready for the model."""

    frames: torch.Tensor  # (T, 3, S, S) uint8, or (T, H, W, 3) uint8 when no size was asked
    indices: list[int]
    timestamps: list[float]
    num_source_frames: int
    fallbacks: int = 0
    path: str = ""
    extra: dict = field(default_factory=dict)


def plan_frames(
    index: VideoIndex,
    num_frames: int = 8,
    frame_sampling: str = "uniform",
    fps: float = 1.0,
    max_frames: int = 64,
    start: float | None = None,
    end: float | None = None,
) -> FramePlan:
    """Choose the frame indices for a request; pure, so every backend takes the same frames."""
    lo, hi = sampling.window(index.timestamps, start, end)
    if hi <= lo:
        raise MediaError(index.path, f"no frames between start={start} and end={end} seconds")
    if frame_sampling == "uniform":
        return FramePlan([lo + i for i in sampling.uniform_indices(hi - lo, num_frames)])
    if frame_sampling == "fps":
        return FramePlan([lo + i for i in sampling.fps_indices(index.timestamps[lo:hi], fps, max_frames)])
    if frame_sampling == "keyframe":
        return _keyframe_plan([lo + i for i in sampling.uniform_indices(hi - lo, num_frames)], index.keyframes)
    raise ValueError(f"frame_sampling must be one of {sampling.FRAME_SAMPLING_MODES}, got {frame_sampling!r}")


def _keyframe_plan(targets: list[int], keyframes: list[int]) -> FramePlan:
    """Snap each target to the keyframe at or before it; a keyframe already used -> exact target."""
    keys = np.asarray(keyframes or [0])
    used: set[int] = set()
    out, fallbacks = [], 0
    for t in targets:
        k = int(keys[max(0, np.searchsorted(keys, t, side="right") - 1)])
        if k in used and t != k:
            out.append(t)
            fallbacks += 1
        else:
            out.append(k)
        used.add(out[-1])
    return FramePlan(out, exact=False, fallbacks=fallbacks)


def resolve_backend(backend: str) -> str:
    """``auto`` -> PyAV (measured faster with seek-when-needed, see docs/performance.md) ."""
    if backend not in VIDEO_BACKENDS:
        raise ValueError(f"video_backend must be one of {VIDEO_BACKENDS}, got {backend!r}")
    if backend == "decord" and importlib.util.find_spec("decord") is None:
        raise ImportError("video_backend='decord' but decord is not installed (Linux x86_64 only): use 'pyav'")
    return "pyav" if backend == "auto" else backend


def load_video_tensor(
    path: str | Path,
    num_frames: int = 8,
    image_size: int | None = 1024,
    frame_sampling: str = "uniform",
    aspect: str = "pad",
    backend: str = "auto",
    fps: float = 1.0,
    max_frames: int = 64,
    start: float | None = None,
    end: float | None = None,
) -> VideoClip:
    """Decode the sampled frames of ``path`` straight into a (T, 3, S, S) uint8 tensor.

    Frames are resized inside the decoder to the aspect-preserving size, then padded to a black
    square (``aspect="pad"``, FastVLM) or centre-cropped (``"crop"``) or squashed (``"resize"``).
    With ``image_size=None`` frames keep their size and come back as (T, H, W, 3).
    Raises ``MediaError`` (naming the file and the reason) for anything unreadable.
    """
    from . import pyav_backend

    path = str(path)
    _check_file(path)
    index = pyav_backend.read_index(path)
    plan = plan_frames(index, num_frames, frame_sampling, fps, max_frames, start, end)
    size_for = None if image_size is None else (lambda w, h: resized_dims(w, h, image_size, aspect))
    wanted = sorted(set(plan.indices))
    if resolve_backend(backend) == "decord":
        from . import decord_backend

        decoded = decord_backend.decode(index, wanted, size_for)
    else:
        decoded = pyav_backend.decode(index, wanted, size_for)
    frames = [decoded[i] for i in plan.indices]
    if image_size is None:
        tensor = torch.from_numpy(np.stack(frames))
    else:
        tensor = torch.zeros(len(frames), 3, image_size, image_size, dtype=torch.uint8)
        for slot, frame in zip(tensor, frames):
            place_on_square(frame, image_size, out=slot)
    return VideoClip(
        frames=tensor,
        indices=plan.indices,
        timestamps=[round(index.timestamps[i], 6) for i in plan.indices],
        num_source_frames=index.num_frames,
        fallbacks=plan.fallbacks,
        path=path,
    )


def load_video_frames(path: str | Path, num_frames: int = 8, **kwargs) -> list[Image.Image]:
    """Seed-compatible: ``num_frames`` uniformly sampled frames as full-resolution PIL images."""
    kwargs.setdefault("image_size", None)
    clip = load_video_tensor(path, num_frames=num_frames, **kwargs)
    if clip.frames.ndim == 4 and clip.frames.shape[-1] == 3:
        return [Image.fromarray(f.numpy()) for f in clip.frames]
    return [Image.fromarray(f.permute(1, 2, 0).numpy()) for f in clip.frames]


def _check_file(path: str) -> None:
    p = Path(path)
    if not p.exists():
        raise MediaError(path, "file not found")
    if not p.is_file():
        raise MediaError(path, "not a regular file (a directory?)")
    if p.stat().st_size == 0:
        raise MediaError(path, "empty file (0 bytes)")
