"""One media item, from reference to frames: where decoded media come from (a cache or the decoder).

``LoadedMedia`` is what every source returns; the frame cache and the feature cache are sources that
implement ``MediaSource.get``, so they import this module and nothing here imports them (no circle:
``dataset`` -> ``media_source`` <- ``frame_cache`` / ``feature_cache``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from ..media.animation import is_animated_image
from ..media.image import load_image_tensor
from ..media.kinds import is_frame_folder
from ..media.video import load_video_tensor
from ..video_config import VideoConfig
from .records import MediaRef, Message
from .subtitles import SLOT as SUBTITLE_SLOT
from .subtitles import fill_subtitles
from .time_prompt import add_time_instructions


def media_kind(ref: MediaRef) -> str:
    """How a media item is sampled: "video" for a video, a folder of frames or an animated image
    (GIF/WebP/PNG), else "image"."""
    return "video" if ref.kind == "video" or is_frame_folder(ref.path) or is_animated_image(ref.path) else "image"


@dataclass
class LoadedMedia:
    """One decoded media item: (T, 3, S, S) uint8 frames; for a video, frame times and the clip's window (s).

    With a feature cache: a hit holds the frozen tower's stored output (T, C, h, w) in ``features``
    instead of frames; decoded frames carry the ``slot`` their tower output is to be stored in.
    """

    frames: torch.Tensor | None
    timestamps: list[float] | None = None
    window: tuple[float, float] | None = None
    features: torch.Tensor | None = None
    slot: dict | None = None
    notes: list[str] = field(default_factory=list)  # degradations of decoded frames (stand-ins for a truncated tail)

    @property
    def num_frames(self) -> int:
        return (self.frames if self.features is None else self.features).shape[0]


class MediaSource(Protocol):
    """A store of decoded media (the frame cache): a fresh entry, or ``None`` to decode instead."""

    def get(self, ref: MediaRef, video: VideoConfig) -> LoadedMedia | None: ...


class FeatureSource(MediaSource, Protocol):
    """A store of tower outputs (the feature cache): ``slot`` says where a decoded item's output goes."""

    def slot(self, ref: MediaRef, video: VideoConfig) -> dict: ...


def load_media_item(
    ref: MediaRef, video: VideoConfig, cache: MediaSource | None = None, features: FeatureSource | None = None
) -> LoadedMedia:
    """One media item decoded at ``video``: its stored tower output when ``features`` holds a fresh one,
    else its frames, from ``cache`` when it holds a fresh entry at these settings."""
    slot = None
    if features is not None:
        if (stored := features.get(ref, video)) is not None:
            return stored  # neither decoded nor run through the tower
        slot = features.slot(ref, video)  # before decoding: a file changed meanwhile reads as stale later
    if cache is not None and (cached := cache.get(ref, video)) is not None:
        item = cached
    elif media_kind(ref) == "video":
        clip = load_video_tensor(ref.path, **video.decode_kwargs(), start=ref.start, end=ref.end)
        item = LoadedMedia(clip.frames, clip.timestamps, clip.window, notes=clip.notes)
    else:
        item = LoadedMedia(load_image_tensor(ref.path, video.image_size, video.aspect))
    item.slot = slot
    return item


def load_media(ref: MediaRef, video: VideoConfig, cache: MediaSource | None = None) -> tuple[torch.Tensor, list[float] | None]:
    """One media item as (T, 3, S, S) uint8 frames, plus frame timestamps for videos (and animations)."""
    item = load_media_item(ref, video, cache)
    return item.frames, item.timestamps


def load_sample_media(
    messages: Sequence[Message],
    media: Sequence[MediaRef],
    video: VideoConfig,
    cache: MediaSource | None = None,
    features: FeatureSource | None = None,
) -> tuple[list[LoadedMedia], list[Message]]:
    """What training, predict and evaluate all do with a sample's media: the per-sample visual budget
    (``VideoConfig.for_sample``), decoding, the time instruction when asked for, and the subtitles at the
    sampled frames where the prompt has a subtitle slot (``data/subtitles.py``)."""
    video = video.for_sample([media_kind(ref) for ref in media])
    loaded = [load_media_item(ref, video, cache, features) for ref in media]
    if video.time_instruction:
        times = [(m.timestamps, m.window) if m.timestamps is not None else None for m in loaded]
        messages = add_time_instructions(messages, times, video.frame_sampling)
    if any(SUBTITLE_SLOT.search(m.content) for m in messages):  # e.g. Video-MME with subtitles
        messages = fill_subtitles(messages, [m.timestamps for m in loaded])
    return loaded, list(messages)
