"""One sample, from record to tensors: media -> uint8 frames, messages -> ids + exact labels.

A sample that cannot be used (broken media, too long) is skipped: another is drawn in its place,
and the skip travels with the batch (key ``skipped``) so the trainer logs it once and counts it in
the main process, whatever the number of DataLoader workers. A sample whose tail was cut to
``model_max_length`` is used, and reported the same way (key ``truncated``), as is one whose clip
has a truncated tail that decoded frames stand in for (kind ``stand_in``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch.utils.data import Dataset

from ..errors import ConfigError, MediaError, TooManySkippedSamples
from ..media.animation import is_animated_image
from ..media.image import load_image_tensor
from ..media.kinds import is_frame_folder
from ..media.video import load_video_tensor
from ..video_config import VideoConfig
from .chat import ChatEncoder, SampleTooLong
from .records import MediaRef, Message, Sample
from .subtitles import SLOT as SUBTITLE_SLOT
from .subtitles import fill_subtitles
from .time_prompt import add_time_instructions

if TYPE_CHECKING:
    from .feature_cache import FeatureCache
    from .frame_cache import FrameCache

logger = logging.getLogger(__name__)


@dataclass
class Skip:
    """Why one sample was not used."""

    kind: str  # "media" | "too_long" (skipped) | "truncated" (used, its tail cut) | "stand_in" (used, frames stood in)
    where: str  # file, record index and id
    reason: str


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


def load_media_item(
    ref: MediaRef, video: VideoConfig, cache: FrameCache | None = None, features: FeatureCache | None = None
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


def load_media(ref: MediaRef, video: VideoConfig, cache: FrameCache | None = None) -> tuple[torch.Tensor, list[float] | None]:
    """One media item as (T, 3, S, S) uint8 frames, plus frame timestamps for videos (and animations)."""
    item = load_media_item(ref, video, cache)
    return item.frames, item.timestamps


def load_sample_media(
    messages: Sequence[Message],
    media: Sequence[MediaRef],
    video: VideoConfig,
    cache: FrameCache | None = None,
    features: FeatureCache | None = None,
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


class ConversationDataset(Dataset):
    """Samples of images, videos and text, mixed freely; items are dicts the ``Collator`` batches."""

    def __init__(
        self,
        samples: list[Sample],
        encoder: ChatEncoder,
        video: VideoConfig,
        max_length: int | None = None,
        max_attempts: int = 20,
        frame_cache: FrameCache | None = None,
        feature_cache: FeatureCache | None = None,
    ):
        if not samples:
            raise ConfigError("the dataset is empty: no usable record in the data files")
        self.samples, self.encoder, self.video = samples, encoder, video
        self.max_length, self.max_attempts = max_length, max_attempts
        self.frame_cache, self.feature_cache = frame_cache, feature_cache

    def __len__(self) -> int:
        return len(self.samples)

    def build(self, sample: Sample) -> dict:
        """Tensors for one sample; raises ``MediaError`` / ``SampleTooLong``.

        With a feature cache the media items themselves travel (key ``media``): the collator batches
        stored tower outputs and decoded frames into one ``TowerInput``.
        """
        loaded, messages = load_sample_media(sample.messages, sample.media, self.video, self.frame_cache, self.feature_cache)
        encoded = self.encoder.encode(messages, [m.num_frames for m in loaded], max_length=self.max_length)
        item = {
            "input_ids": torch.tensor(encoded.input_ids, dtype=torch.long),
            "labels": torch.tensor(encoded.labels, dtype=torch.long),
            "pixel_values": torch.cat([m.frames for m in loaded]) if loaded and self.feature_cache is None else None,
            "id": sample.id,
            "timestamps": [m.timestamps for m in loaded],
            "truncated": ([self._truncation(sample, encoded.truncated_from)] if encoded.truncated else [])
            + [Skip("stand_in", sample.where, f"{ref.path}: {note}") for ref, m in zip(sample.media, loaded) for note in m.notes],
        }
        if self.feature_cache is not None:
            item["media"] = loaded
        return item

    def __getitem__(self, index: int) -> dict:
        skipped: list[Skip] = []
        candidate = index
        for attempt in range(self.max_attempts):
            sample = self.samples[candidate]
            try:
                item = self.build(sample)
            except MediaError as exc:
                skipped.append(self._skip("media", sample, str(exc)))
            except SampleTooLong as exc:
                skipped.append(self._skip("too_long", sample, str(exc)))
            else:
                item["skipped"] = skipped
                return item
            candidate = random.Random(index * 1_000_003 + attempt).randrange(len(self.samples))
        raise TooManySkippedSamples(
            f"{self.max_attempts} samples in a row could not be used; last: {skipped[-1].where}: {skipped[-1].reason}"
        )

    def _skip(self, kind: str, sample: Sample, reason: str) -> Skip:
        logger.debug("skipping %s: %s", sample.where, reason)  # the trainer logs it once, in the main process
        return Skip(kind, sample.where, reason)

    def _truncation(self, sample: Sample, length: int) -> Skip:
        reason = (
            f"{length} tokens cut to model_max_length={self.max_length}: the end of the answer (and its <|im_end|>) "
            "is not trained; raise --model_max_length or shorten the answer"
        )
        return Skip("truncated", sample.where, reason)
