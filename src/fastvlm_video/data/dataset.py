"""One sample, from record to tensors: media -> uint8 frames, messages -> ids + exact labels.

In training, a sample that cannot be used (broken media, too long) is skipped: another is drawn in
its place, and the skip travels with the batch (key ``skipped``) so the trainer logs it once and
counts it in the main process, whatever the number of DataLoader workers. A sample whose tail was cut
to ``model_max_length`` is used, and reported the same way (key ``truncated``), as is one whose clip
has a truncated tail that decoded frames stand in for (kind ``stand_in``).

For evaluation (``substitute=False``) nothing is drawn in its place: the item is ``{"excluded": Skip}``,
the collator leaves it out of the batch, and the validation loss is the mean over exactly the samples
that could be used (``VideoTrainer``), each excluded one named once and counted.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from ..errors import ConfigError, MediaError, TooManySkippedSamples
from ..video_config import VideoConfig
from .chat import ChatEncoder, SampleTooLong
from .media_source import FeatureSource, LoadedMedia, MediaSource, load_media, load_media_item, load_sample_media, media_kind
from .records import Sample

__all__ = ["ConversationDataset", "LoadedMedia", "Skip", "load_media", "load_media_item", "load_sample_media", "media_kind"]

logger = logging.getLogger(__name__)


@dataclass
class Skip:
    """Why one sample was not used."""

    kind: str  # "media" | "too_long" (skipped) | "truncated" (used, its tail cut) | "stand_in" (used, frames stood in)
    where: str  # file, record index and id
    reason: str


class ConversationDataset(Dataset):
    """Samples of images, videos and text, mixed freely; items are dicts the ``Collator`` batches."""

    def __init__(
        self,
        samples: list[Sample],
        encoder: ChatEncoder,
        video: VideoConfig,
        max_length: int | None = None,
        max_attempts: int = 20,
        frame_cache: MediaSource | None = None,
        feature_cache: FeatureSource | None = None,
        substitute: bool = True,
    ):
        if not samples:
            raise ConfigError("the dataset is empty: no usable record in the data files")
        self.samples, self.encoder, self.video = samples, encoder, video
        self.max_length, self.max_attempts = max_length, max_attempts
        self.frame_cache, self.feature_cache = frame_cache, feature_cache
        self.substitute = substitute  # False (evaluation): an unusable sample is excluded, never replaced

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
            if not self.substitute:
                return {"excluded": skipped[-1]}
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
