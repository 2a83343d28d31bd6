"""PyAV (FFmpeg) backend: index a clip from its packets, decode only what is needed.

Seeking happens only when a keyframe lies between the current decode position and the next
target, so clips with one keyframe are decoded once, sequentially, and clips with regular
keyframes skip the frames in between. When the target is itself a keyframe the decoder is told
to skip every non-key packet (keyframe mode costs one keyframe decode per frame). Frames are
scaled by swscale to the requested size while converting to RGB, so full-resolution RGB frames
are never materialised.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from ..errors import UnreadableMediaError
from .index import SizeFn, VideoIndex

logger = logging.getLogger(__name__)

_AV_ERRORS = (av.error.FFmpegError, OSError, ValueError, IndexError, StopIteration, RuntimeError)
IO_TIMEOUT_S = 20.0  # FFmpeg's interrupt callback: no single open/read may block longer than this
_THREAD_TYPE = "AUTO"  # FFmpeg's own frame/slice threads per clip; see ``decode_one_thread_per_clip``


def decode_one_thread_per_clip() -> None:
    """Decode each clip in its caller's thread only (no FFmpeg worker threads) from now on, process-wide.

    For a process that decodes many clips at once (the server: one clip per request, a pool of
    decoding threads), per-clip FFmpeg threads only add start-up and contention with the model's
    threads. Training and ``predict`` keep ``AUTO``, which helps one large clip at a time.
    """
    global _THREAD_TYPE
    _THREAD_TYPE = "NONE"


@contextmanager
def _open_video(path: str) -> Iterator[tuple[av.container.InputContainer, av.video.stream.VideoStream]]:
    """Open ``path`` and yield its first video stream; every FFmpeg failure becomes ``UnreadableMediaError``."""
    try:
        container = av.open(path, mode="r", metadata_errors="ignore", timeout=IO_TIMEOUT_S)
    except _AV_ERRORS as exc:
        raise UnreadableMediaError(path, f"cannot open as a video ({_describe(exc)})") from exc
    try:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise UnreadableMediaError(path, f"no video stream (streams: {', '.join(kinds)})")
        yield container, container.streams.video[0]
    except _AV_ERRORS as exc:
        raise UnreadableMediaError(path, f"cannot decode ({_describe(exc)})") from exc
    finally:
        container.close()


def _describe(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {exc}".strip()


class Source:
    """One open clip: its packet index (one demux pass) and exact decoding, on one FFmpeg context."""

    def __init__(self, path: str, container: av.container.InputContainer, stream: av.video.stream.VideoStream, index: VideoIndex | None = None):
        self.path, self.container, self.stream, self._index = path, container, stream, index

    @property
    def index(self) -> VideoIndex:
        """Timestamps and keyframes of every frame, from a demux pass (no decoding)."""
        if self._index is None:
            self._index = _read_index(self.path, self.container, self.stream)
        return self._index

    def decode(self, wanted: list[int], size_for: SizeFn | None) -> dict[int, np.ndarray]:
        """Decode the frames at the sorted indices ``wanted`` as (h, w, 3) uint8 RGB arrays.

        ``size_for(display_w, display_h)`` gives the output size (aspect handling is the caller's);
        ``None`` keeps the source size. Rotation metadata is applied. Targets past the last
        decodable frame (a truncated tail) are left out; the caller decides what stands in.
        """
        if _THREAD_TYPE == "AUTO":
            self.stream.thread_type = "AUTO"
        else:
            self.stream.thread_count = 1
        cursor = _Cursor(self.container, self.stream, self.index)
        reformatter = VideoReformatter()  # one swscale context for the whole clip, not one per frame
        out: dict[int, np.ndarray] = {}
        for target in wanted:
            frame = cursor.frame_at(target)
            if frame is None:
                break
            out[target] = to_rgb(frame, size_for, reformatter)
        if not out:
            raise UnreadableMediaError(self.path, "no frame could be decoded (corrupt or truncated stream)")
        return out


@contextmanager
def open_source(path: str, index: VideoIndex | None = None) -> Iterator[Source]:
    """``with open_source(path) as src: src.index, src.decode(...)``; FFmpeg errors -> ``UnreadableMediaError``."""
    with _open_video(path) as (container, stream):
        yield Source(path, container, stream, index)


def read_index(path: str) -> VideoIndex:
    """The packet index of ``path`` (see ``Source.index``)."""
    with open_source(path) as source:
        return source.index


def read_header_index(path: str) -> VideoIndex:
    """A ``VideoIndex`` estimated from the container header alone (no demuxing, no decoding; ~1 ms).

    Frame count = the stream's ``frames`` (MP4/MOV store it), else duration x average rate;
    timestamps = constant frame rate from 0. Exact for constant-frame-rate files with honest headers;
    used to count frames and tokens before training (``fastvlm-video budget``), never to decode.
    """
    with _open_video(path) as (container, stream):
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        duration = float(stream.duration * stream.time_base) if stream.duration else (container.duration or 0) / av.time_base
        count = stream.frames or (round(duration * rate) if rate and duration else 0)
        if count < 1 or rate <= 0:
            raise UnreadableMediaError(path, "the header gives no frame count or frame rate")
        width, height = stream.codec_context.width, stream.codec_context.height
    return VideoIndex(path=path, timestamps=(np.arange(count) / rate).tolist(), keyframes=[0], width=width, height=height)


def decode(index: VideoIndex, wanted: list[int], size_for: SizeFn | None) -> dict[int, np.ndarray]:
    """Decode ``wanted`` frames of an already indexed clip (see ``Source.decode``)."""
    with open_source(index.path, index) as source:
        return source.decode(wanted, size_for)


def _read_index(path: str, container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> VideoIndex:
    entries = []
    for packet in container.demux(stream):
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None or packet.size == 0:
            continue
        entries.append((ts, packet.is_keyframe))
    if not entries:
        raise UnreadableMediaError(path, "the video stream holds no frames")
    entries.sort()
    pts = [ts for ts, _ in entries]
    tb = float(stream.time_base)
    return VideoIndex(
        path=path,
        timestamps=[(p - pts[0]) * tb for p in pts],
        keyframes=[i for i, (_, key) in enumerate(entries) if key] or [0],
        width=stream.codec_context.width,
        height=stream.codec_context.height,
        pts=pts,
    )


def read_rotation(path: str) -> int:
    """Display rotation in degrees (0, 90, 180, 270) from the first decoded frame."""
    with _open_video(path) as (container, stream):
        frame = next(container.decode(stream), None)
        return int(frame.rotation or 0) % 360 if frame is not None else 0


class _Cursor:
    """A forward-only decode position in one stream that seeks only when it pays."""

    def __init__(self, container: av.container.InputContainer, stream: av.video.stream.VideoStream, index: VideoIndex):
        self.container, self.stream, self.index = container, stream, index
        self.frames: Iterator[av.VideoFrame] | None = None
        self.position = -1  # index of the last decoded frame
        self.target = 0  # the frame being decoded towards
        self.bad_packets = 0

    def frame_at(self, target: int) -> av.VideoFrame | None:
        """The frame at index ``target`` (``None`` when the stream ends before it)."""
        key = self.index.keyframe_at_or_before(target)
        if self.frames is not None and key <= self.position < target:
            frame = self._advance(target)  # no keyframe in between: decoding on is cheapest
        else:
            frame = self._keyframe(target) if key == target else None
            if frame is not None:
                return frame
            self._seek(key)
            frame = self._advance(target)
        if frame is None or self.position == target:
            return frame
        # the seek overshot (a keyframe flag or a container index that lies): decode from the start
        logger.debug("%s: seek for frame %d landed on %d, decoding from the start", self.index.path, target, self.position)
        self._seek(0)
        return self._advance(target)

    def _seek(self, key: int) -> None:
        self.container.seek(self.index.pts[key], stream=self.stream, backward=True, any_frame=False)
        self.frames = self._decode_packets()
        self.position = -1

    def _decode_packets(self) -> Iterator[av.VideoFrame]:
        """``container.decode`` that skips frames nothing needs and packets the decoder rejects.

        Frames shown before the current target that no other frame references (most B-frames)
        are not decoded at all: exact, since every frame the target depends on still is.
        Corrupt packets are skipped (logged once) instead of failing the clip.
        """
        context = self.stream.codec_context
        for packet in self.container.demux(self.stream):
            before_target = packet.pts is not None and packet.pts < self.index.pts[self.target]
            context.skip_frame = "NONREF" if before_target else "DEFAULT"
            try:
                yield from self.stream.decode(packet)
            except av.error.InvalidDataError as exc:
                self.bad_packets += 1
                if self.bad_packets == 1:
                    logger.warning("%s: skipping corrupt packets (%s)", self.index.path, _describe(exc))

    def _keyframe(self, key: int) -> av.VideoFrame | None:
        """Decode the keyframe ``key`` from its packet alone, draining the decoder at once (a
        decoder with B-frame delay or frame threads would otherwise wait for later packets)."""
        self.container.seek(self.index.pts[key], stream=self.stream, backward=True, any_frame=False)
        self.frames, self.position = None, -1
        for packet in self.container.demux(self.stream):
            if packet.pts == self.index.pts[key]:
                decoded = [*self.stream.decode(packet), *self.stream.decode(None)]
                return next((f for f in decoded if f.pts == packet.pts), None)
            if packet.dts is not None and packet.dts > self.index.pts[key]:
                break  # went past it: the seek did not land where the index says
        return None

    def _advance(self, target: int) -> av.VideoFrame | None:
        self.target = target
        pts = self.index.pts
        for frame in self.frames:
            if frame.pts is None:
                continue
            self.position = min(bisect.bisect_left(pts, frame.pts), len(pts) - 1)
            if self.position >= target:
                return frame
        self.frames = None
        return None


def to_rgb(frame: av.VideoFrame, size_for: SizeFn | None, reformatter: VideoReformatter) -> np.ndarray:
    """One decoded frame -> upright (h, w, 3) uint8 RGB at the requested size (swscale, bicubic).

    Pass the same ``reformatter`` for every frame of a clip: ``frame.to_ndarray(width=, height=)``
    builds a new swscale context per frame (3.7x slower on 64 px frames, benchmarks/bench_swscale.py).
    """
    rotation = (frame.rotation or 0) % 360
    w, h = frame.width, frame.height
    if rotation in (90, 270):
        w, h = h, w  # display size
    out_w, out_h = (w, h) if size_for is None else size_for(w, h)
    if rotation in (90, 270):
        out_w, out_h = out_h, out_w  # size before rotation
    rgb = reformatter.reformat(frame, width=out_w, height=out_h, format="rgb24", interpolation="BICUBIC").to_ndarray()
    if rotation:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=rotation // 90))
    return rgb

