"""Video -> sampled frames: one interface over PyAV and decord, frames resized inside the decoder.

``load_video_tensor`` is what the dataset and predict use: it returns a ``VideoClip`` whose
``frames`` is a model-ready (T, 3, S, S) uint8 tensor plus the indices and timestamps (seconds)
of the frames taken. ``load_video_frames`` is the seed-compatible API returning PIL images.
"""

from __future__ import annotations

import bisect
import importlib.util
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import MediaError
from . import animation, frame_folder, sampling
from .files import check_media_file
from .index import VideoIndex
from .kinds import VIDEO_EXTENSIONS, is_frame_folder, is_video_file  # noqa: F401  (re-exported)
from ..constants import VIDEO_BACKENDS  # noqa: F401  (re-exported)
from .transforms import ASPECT_MODES, place_on_square, resized_dims

logger = logging.getLogger(__name__)


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
    window: tuple[float, float] = (0.0, 0.0)  # seconds of the clip the frames were taken from: [start, end)
    notes: list[str] = field(default_factory=list)  # degradations the frames carry (stand-ins for a truncated tail)


def plan_frames(
    index: VideoIndex,
    num_frames: int = 8,
    frame_sampling: str = "uniform",
    fps: float = 1.0,
    max_frames: int = 64,
    start: float | None = None,
    end: float | None = None,
    min_frames: int = 1,
) -> FramePlan:
    """Choose the frame indices for a request; pure, so every backend takes the same frames."""
    lo, hi = sampling.window(index.timestamps, start, end)
    if hi <= lo:
        raise MediaError(index.path, f"no frames between start={start} and end={end} seconds")
    if frame_sampling == "uniform":
        return FramePlan([lo + i for i in sampling.uniform_indices(hi - lo, num_frames)])
    if frame_sampling == "fps":
        return FramePlan([lo + i for i in sampling.fps_indices(index.timestamps[lo:hi], fps, max_frames, min_frames)])
    if frame_sampling == "keyframe":
        targets = [lo + i for i in sampling.uniform_indices(hi - lo, num_frames)]
        return _keyframe_plan(targets, [k for k in index.keyframes if lo <= k < hi])
    raise ValueError(f"frame_sampling must be one of {sampling.FRAME_SAMPLING_MODES}, got {frame_sampling!r}")


def _keyframe_plan(targets: list[int], keyframes: list[int]) -> FramePlan:
    """Snap each target to the keyframe at or before it (inside the window); when that keyframe is
    already taken, or there is none, the target is decoded exactly and counted as a fallback."""
    used: set[int] = set()
    out, fallbacks = [], 0
    for t in targets:
        pos = bisect.bisect_right(keyframes, t) - 1
        k = keyframes[pos] if pos >= 0 else None
        if k is None or (k in used and t != k):
            out.append(t)
            fallbacks += 1
        else:
            out.append(k)
        used.add(out[-1])
    return FramePlan(out, exact=False, fallbacks=fallbacks)


def clip_window(index: VideoIndex, start: float | None = None, end: float | None = None) -> tuple[float, float]:
    """Seconds ``[first frame, last frame + one frame interval)`` of the frames inside ``[start, end]``."""
    lo, hi = sampling.window(index.timestamps, start, end)
    ts = index.timestamps
    if hi <= lo:
        return (0.0, 0.0)
    step = (ts[-1] - ts[0]) / (len(ts) - 1) if len(ts) > 1 else 0.0
    return (ts[lo], ts[hi - 1] + step)


# ``auto`` takes the first installed backend in this order: the faster one first, as measured
# by benchmarks/bench_video.py (docs/performance.md). PyAV is a hard dependency, so it is always there.
AUTO_PREFERENCE = ("pyav", "decord")


def resolve_backend(backend: str) -> str:
    """The concrete backend for ``backend`` (``auto`` -> the fastest installed one)."""
    if backend not in VIDEO_BACKENDS:
        raise ValueError(f"video_backend must be one of {VIDEO_BACKENDS}, got {backend!r}")
    if backend == "auto":
        return next(b for b in AUTO_PREFERENCE if importlib.util.find_spec("av" if b == "pyav" else b) is not None)
    if backend == "decord" and importlib.util.find_spec("decord") is None:
        raise ImportError("video_backend='decord' but decord is not installed (Linux x86_64 only): use 'pyav'")
    return backend


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
    min_frames: int = 1,
    frames_fps: float = frame_folder.DEFAULT_FRAMES_FPS,
) -> VideoClip:
    """Decode the sampled frames of ``path`` straight into a (T, 3, S, S) uint8 tensor.

    Frames are resized inside the decoder to the aspect-preserving size, then padded to a black
    square (``aspect="pad"``, FastVLM) or centre-cropped (``"crop"``) or squashed (``"resize"``).
    An animated GIF / WebP / PNG is read as a clip too (``media/animation.py``), and so is a
    directory of images (``media/frame_folder.py``: ``frames_fps`` frames per second unless the
    folder's sidecar says otherwise).
    With ``image_size=None`` frames keep their size and come back as (T, H, W, 3).
    Raises ``UnreadableMediaError`` (naming the file and the reason) for anything unreadable.
    Frames past a truncated tail take the last decodable frame's place; ``VideoClip.notes`` says so.
    """
    path = str(path)
    backend = resolve_backend(backend)
    _check_request(num_frames, frame_sampling, fps, max_frames, aspect)
    size_for = None if image_size is None else (lambda w, h: resized_dims(w, h, image_size, aspect))
    with open_frame_source(path, frames_fps) as (source, native):  # one context for the index and the decoding
        index = source.index
        plan = plan_frames(index, num_frames, frame_sampling, fps, max_frames, start, end, min_frames)
        wanted = sorted(set(plan.indices))
        if backend == "decord" and native:
            from . import decord_backend  # imports decord only when asked for

            decoded = decord_backend.decode(index, wanted, size_for)
        else:
            decoded = source.decode(wanted, size_for)
    indices, notes = _stand_in_for_missing(index, plan.indices, decoded)
    frames = [decoded[i] for i in indices]
    return VideoClip(
        frames=_stack(frames, image_size, path),
        indices=indices,
        timestamps=[round(index.timestamps[i], 6) for i in indices],
        num_source_frames=index.num_frames,
        fallbacks=plan.fallbacks,
        path=path,
        extra={"missing": sum(a != b for a, b in zip(indices, plan.indices))},
        window=clip_window(index, start, end),
        notes=notes,
    )


@contextmanager
def open_frame_source(path: str, frames_fps: float = frame_folder.DEFAULT_FRAMES_FPS) -> Iterator[tuple[object, bool]]:
    """The source that reads ``path`` and whether it is a container FFmpeg decodes (decord may take it).

    A directory is a frame folder; an animated GIF/WebP/PNG is read with PIL; anything else with PyAV.
    Every source has ``index`` (a ``VideoIndex``) and ``decode(wanted, size_for)``.
    """
    if is_frame_folder(path):
        with frame_folder.open_source(path, frame_folder.folder_fps(path, frames_fps)) as source:
            yield source, False
        return
    check_media_file(path)
    if animation.is_animated_image(path):  # GIF / WebP / APNG: read with PIL, whatever the backend
        with animation.open_source(path) as source:
            yield source, False
        return
    from . import pyav_backend  # imports av (FFmpeg) on first use, not when the CLI parses its flags

    with pyav_backend.open_source(path) as source:
        yield source, True


def read_media_index(path: str | Path, frames_fps: float = frame_folder.DEFAULT_FRAMES_FPS) -> VideoIndex:
    """The frame index of a video file, an animation or a frame folder (what ``load_video_tensor`` samples from)."""
    with open_frame_source(str(path), frames_fps) as (source, _):
        return source.index


def read_header_index(path: str | Path, frames_fps: float = frame_folder.DEFAULT_FRAMES_FPS) -> VideoIndex:
    """A cheap index to count frames with (``budget``): a video file's header (``pyav_backend.read_header_index``,
    ~1 ms), or a frame folder's listing (names, and its first frame's header)."""
    path = str(path)
    if is_frame_folder(path):
        return frame_folder.read_index(path, frame_folder.folder_fps(path, frames_fps))
    from . import pyav_backend

    return pyav_backend.read_header_index(path)


def _check_request(num_frames: int, frame_sampling: str, fps: float, max_frames: int, aspect: str) -> None:
    """Settings errors are ``ValueError``s raised before any file is opened (never blamed on the file)."""
    if frame_sampling not in sampling.FRAME_SAMPLING_MODES:
        raise ValueError(f"frame_sampling must be one of {sampling.FRAME_SAMPLING_MODES}, got {frame_sampling!r}")
    if aspect not in ASPECT_MODES:
        raise ValueError(f"aspect must be one of {ASPECT_MODES}, got {aspect!r}")
    if num_frames < 1 or max_frames < 1 or fps <= 0:
        raise ValueError(f"need num_frames >= 1, max_frames >= 1 and fps > 0, got {num_frames}, {max_frames}, {fps}")


def _stand_in_for_missing(index: VideoIndex, planned: list[int], decoded: dict[int, np.ndarray]) -> tuple[list[int], list[str]]:
    """Planned frames that did not decode (a truncated tail) take the nearest decoded frame before them.

    Returns the frame indices used and the note saying so, which the caller reports: training once
    per sample per run, in the main process (``Skip`` kind ``stand_in``: a clip is decoded again every
    epoch, in fresh worker processes), ``check`` as a warning, predict/evaluate/serve once per file.
    """
    have = sorted(decoded)
    out = [i if i in decoded else have[max(0, bisect.bisect_left(have, i) - 1)] for i in planned]
    swaps = sorted({(a, b) for a, b in zip(planned, out) if a != b})
    if not swaps:
        return out, []
    logger.debug("%s: stand-ins %s", index.path, swaps)
    note = (f"frames past #{have[-1]} of {index.num_frames} could not be decoded (truncated or corrupt tail): "
            f"{len(swaps)} sampled frame(s) replaced by the last decodable one {swaps}")  # fmt: skip
    return out, [note]


def _stack(frames: list[np.ndarray], image_size: int | None, path: str = "") -> torch.Tensor:
    """(h, w, 3) frames -> (T, 3, S, S) uint8 on black squares, or (T, h, w, 3) when no size was asked."""
    if image_size is None:
        sizes = sorted({f.shape[:2] for f in frames})
        if len(sizes) > 1:  # a frame folder's images may differ; at a model size they are each resized
            shown = ", ".join(f"{w}x{h}" for h, w in sizes[:3])
            raise MediaError(path, f"frames of different sizes ({shown}) cannot be stacked at full resolution: give a frame size")
        return torch.from_numpy(np.stack(frames))
    tensor = torch.empty(len(frames), 3, image_size, image_size, dtype=torch.uint8)  # pads are zeroed per frame
    for slot, frame in zip(tensor, frames):
        place_on_square(frame, image_size, out=slot)
    return tensor


def load_video_frames(path: str | Path, num_frames: int = 8, **kwargs) -> list[Image.Image]:
    """Seed-compatible: ``num_frames`` uniformly sampled frames as full-resolution PIL images."""
    kwargs.setdefault("image_size", None)
    clip = load_video_tensor(path, num_frames=num_frames, **kwargs)
    if clip.frames.ndim == 4 and clip.frames.shape[-1] == 3:
        return [Image.fromarray(f.numpy()) for f in clip.frames]
    return [Image.fromarray(f.permute(1, 2, 0).numpy()) for f in clip.frames]
