"""PyAV (FFmpeg) backend: index a clip from its packets, decode only what is needed.

Seeking happens only when a keyframe lies between the current decode position and the next
target, so clips with one keyframe are decoded once, sequentially, and clips with regular
keyframes skip the frames in between. Frames are scaled by swscale to the requested size while
converting to RGB, so full-resolution RGB frames are never materialised.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from contextlib import contextmanager

import av
import numpy as np

from ..errors import MediaError
from .video import VideoIndex

SizeFn = Callable[[int, int], tuple[int, int]]
_AV_ERRORS = (av.error.FFmpegError, OSError, ValueError, IndexError, StopIteration)


@contextmanager
def _open_video(path: str):
    try:
        container = av.open(path, mode="r", metadata_errors="ignore")
    except _AV_ERRORS as exc:
        raise MediaError(path, f"cannot open as a video ({_describe(exc)})") from exc
    try:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise MediaError(path, f"no video stream (streams: {', '.join(kinds)})")
        yield container, container.streams.video[0]
    except _AV_ERRORS as exc:
        raise MediaError(path, f"cannot decode ({_describe(exc)})") from exc
    finally:
        container.close()


def _describe(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {exc}".strip()


def read_index(path: str) -> VideoIndex:
    """Timestamps and keyframes of every frame, from a demux pass (no decoding)."""
    with _open_video(path) as (container, stream):
        entries = []
        for packet in container.demux(stream):
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is None or packet.size == 0:
                continue
            entries.append((ts, packet.is_keyframe))
        if not entries:
            raise MediaError(path, "the video stream holds no frames")
        entries.sort()
        pts = [ts for ts, _ in entries]
        keyframes = [i for i, (_, key) in enumerate(entries) if key] or [0]
        tb = float(stream.time_base)
        return VideoIndex(
            path=path,
            timestamps=[(p - pts[0]) * tb for p in pts],
            keyframes=keyframes,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            pts=pts,
        )


def decode(index: VideoIndex, wanted: list[int], size_for: SizeFn | None) -> dict[int, np.ndarray]:
    """Decode the frames at the sorted indices ``wanted`` as (h, w, 3) uint8 RGB arrays.

    ``size_for(display_w, display_h)`` gives the output size (aspect handling is the caller's);
    ``None`` keeps the source size. Rotation metadata is applied.
    """
    pts = index.pts
    out: dict[int, np.ndarray] = {}
    with _open_video(index.path) as (container, stream):
        stream.thread_type = "AUTO"
        frames = None
        position = -1  # index of the last decoded frame
        for target in wanted:
            key = index.keyframes[max(0, bisect.bisect_right(index.keyframes, target) - 1)]
            if frames is None or key > position or target <= position:
                container.seek(pts[key], stream=stream, backward=True, any_frame=False)
                frames = container.decode(stream)
                position = -1
            for frame in frames:
                if frame.pts is None:
                    continue
                position = min(bisect.bisect_left(pts, frame.pts), len(pts) - 1)
                if position >= target:
                    out[target] = to_rgb(frame, size_for)
                    break
            else:
                break  # stream ended early: missing tail frames, handled below
    return _fill_missing(index, wanted, out)


def _fill_missing(index: VideoIndex, wanted: list[int], out: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Targets past the last decodable frame (truncated tail) take the last frame decoded."""
    if not out:
        raise MediaError(index.path, "no frame could be decoded (corrupt or truncated stream)")
    last = out[max(out)]
    for target in wanted:
        out.setdefault(target, last)
    return out


def to_rgb(frame: av.VideoFrame, size_for: SizeFn | None) -> np.ndarray:
    """One decoded frame -> upright (h, w, 3) uint8 RGB at the requested size (swscale, bicubic)."""
    rotation = (frame.rotation or 0) % 360
    w, h = frame.width, frame.height
    if rotation in (90, 270):
        w, h = h, w  # display size
    if size_for is None:
        out_w, out_h = w, h
    else:
        out_w, out_h = size_for(w, h)
    if rotation in (90, 270):
        out_w, out_h = out_h, out_w  # size before rotation
    rgb = frame.to_ndarray(width=out_w, height=out_h, format="rgb24", interpolation="BICUBIC")
    if rotation:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=rotation // 90))
    return rgb
