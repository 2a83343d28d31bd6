"""Tokens per sample from the records alone: no decoding, so a whole data set is measured in seconds.

A sample's length is its text tokens (the training encoder's, time instruction included) plus
T x K image tokens per media item (K = (S/64)^2). T comes without decoding: an image is 1 frame (an animated GIF/WebP/PNG is sampled like a video);
``uniform`` and ``keyframe`` sampling give N frames whatever the clip; ``fps`` sampling needs the
clip's length, read from the container header (PyAV stream metadata, ~1 ms a file:
``pyav_backend.read_header_index``) and sampled by training's own ``plan_frames``. The header is
exact for constant-frame-rate files; a variable-rate or lying header may shift an fps count a little.
The same is true of the time instruction's timestamps, which are therefore read from the header too.

``plan_lengths`` is what ``train`` runs at start-up, before the model loads: it resolves
``--model_max_length auto`` and stops the run when too many samples cannot fit.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..constants import IGNORE_INDEX, VISION_STRIDE
from ..data.chat import ChatEncoder
from ..data.dataset import media_kind
from ..data.records import MediaRef, Sample
from ..data.time_prompt import add_time_instructions
from ..errors import ConfigError, MediaError
from ..media.video import clip_window, plan_frames
from ..video_config import VideoConfig

logger = logging.getLogger(__name__)

AUTO = "auto"


@dataclass
class SampleLength:
    """One sample's tokens, and where its last image token / first trained token sit (for truncation)."""

    where: str
    text_tokens: int
    video_frames: list[int]  # T of each video
    images: int
    tokens_per_frame: int
    image_end: int  # index after the last image token (0: none)
    first_trained: int  # index of the first trained token

    @property
    def image_tokens(self) -> int:
        return (sum(self.video_frames) + self.images) * self.tokens_per_frame

    @property
    def total(self) -> int:
        return self.text_tokens + self.image_tokens

    @property
    def frames(self) -> int:
        return sum(self.video_frames) + self.images

    def fits(self, max_length: int) -> bool:
        """Trained as the encoder would: whole, or cut without losing an image token or every answer token."""
        return self.total <= max_length or (self.image_end <= max_length and self.first_trained < max_length)

    def total_with(self, frames: int | None = None, image_size: int | None = None) -> int:
        """The length with at most ``frames`` per video and/or frames of ``image_size`` px (what-if)."""
        per_frame = self.tokens_per_frame if image_size is None else (image_size // VISION_STRIDE) ** 2
        video = sum(self.video_frames) if frames is None else sum(min(t, frames) for t in self.video_frames)
        return self.text_tokens + (video + self.images) * per_frame


def media_frames(ref: MediaRef, video: VideoConfig, header_reader=None) -> tuple[int, tuple | None]:
    """(T, (timestamps, window) or None) of one media item, from the header only when it must be read."""
    if media_kind(ref) != "video":
        return 1, None
    if video.frame_sampling != "fps" and not video.time_instruction:
        return video.num_frames, None
    from ..media.video import read_header_index

    index = header_reader(ref.path) if header_reader else read_header_index(ref.path, video.frames_fps)
    plan = plan_frames(index, video.num_frames, video.frame_sampling, video.fps, video.max_frames, ref.start, ref.end, video.min_frames)
    return len(plan.indices), ([round(index.timestamps[i], 6) for i in plan.indices], clip_window(index, ref.start, ref.end))


def sample_length(sample: Sample, encoder: ChatEncoder, video: VideoConfig) -> SampleLength:
    """The tokens ``ConversationDataset`` will give ``sample`` (raises ``MediaError`` for an unreadable header)."""
    kinds = [media_kind(ref) for ref in sample.media]
    video = video.for_sample(kinds)
    counted = [media_frames(ref, video) for ref in sample.media]
    messages = sample.messages
    if video.time_instruction:
        messages = add_time_instructions(messages, [times for _, times in counted], video.frame_sampling)
    frames = [t for t, _ in counted]
    encoded = encoder.encode(messages, frames)
    ids, labels = encoded.input_ids, encoded.labels
    image_positions = [i for i, t in enumerate(ids) if t == encoder.image_token_id]
    return SampleLength(
        where=sample.where,
        text_tokens=len(ids) - len(image_positions),
        video_frames=[t for t, kind in zip(frames, kinds) if kind == "video"],
        images=kinds.count("image"),
        tokens_per_frame=encoder.tokens_per_frame,
        image_end=image_positions[-1] + 1 if image_positions else 0,
        first_trained=next((i for i, label in enumerate(labels) if label != IGNORE_INDEX), len(ids)),
    )


@dataclass
class LengthReport:
    """Every sample's length (``unreadable``: samples whose media header could not be read)."""

    lengths: list[SampleLength]
    unreadable: list[str] = field(default_factory=list)

    def stats(self, values: Sequence[int]) -> dict:
        if not values:
            return {"p50": 0, "p95": 0, "max": 0}
        arr = np.asarray(values)
        return {"p50": int(np.percentile(arr, 50)), "p95": int(np.percentile(arr, 95)), "max": int(arr.max())}

    def table(self) -> dict:
        return {
            "image": self.stats([s.image_tokens for s in self.lengths]),
            "text": self.stats([s.text_tokens for s in self.lengths]),
            "total": self.stats([s.total for s in self.lengths]),
        }

    def too_long(self, max_length: int) -> list[SampleLength]:
        return [s for s in self.lengths if not s.fits(max_length)]

    @property
    def longest(self) -> int:
        return max((s.total for s in self.lengths), default=0)


def measure(samples: Sequence[Sample], encoder: ChatEncoder, video: VideoConfig, progress: bool = True) -> LengthReport:
    """Lengths of all ``samples`` (no decoding; header reads only for fps sampling or time instructions)."""
    if encoder.tokens_per_frame != video.tokens_per_frame:
        encoder = ChatEncoder(encoder.tokenizer, video.tokens_per_frame, encoder.system_prompt)
    report = LengthReport([])
    for sample in tqdm(samples, desc="counting tokens", unit="sample", disable=not progress or len(samples) < 2000, leave=False):
        try:
            report.lengths.append(sample_length(sample, encoder, video))
        except MediaError as exc:
            report.unreadable.append(f"{sample.where}: {exc}")
    return report


def max_position_embeddings(model_dir: str | Path) -> int | None:
    """The LLM's context length from the checkpoint's config.json (fast_vlm, llava_qwen2 or a LoRA adapter's base)."""
    from ..model import lora

    path = Path(model_dir)
    if (path / lora.ADAPTER_CONFIG).is_file():
        return max_position_embeddings(lora.adapter_base(path))
    config = json.loads((path / "config.json").read_text())
    return config.get("text_config", config).get("max_position_embeddings")


def context_limit(setting: str | int, model_dir: str | None) -> int:
    """A fixed limit for tools that check one sample at a time (``check``): a number as given; ``auto``
    fits every sample up to the model's context (no limit without a model)."""
    if str(setting).strip().lower() != AUTO:
        return resolve_max_length(setting, LengthReport([]), None)
    return (max_position_embeddings(model_dir) if model_dir else None) or 10**9


def fit_frame_size(video: VideoConfig, samples: Sequence[Sample]) -> VideoConfig:
    """With ``max_visual_tokens``: the run's frame size lowered (in steps of 64 px) until every sample fits
    its budget at ``min_frames`` per video (fewer frames are tried first, per sample: ``for_sample``)."""
    if not video.max_visual_tokens or not samples:
        return video
    worst = max(len(s.media) + sum(media_kind(r) == "video" for r in s.media) * (video.min_frames - 1) for s in samples)
    size = video.image_size
    while size > VISION_STRIDE and worst * (size // VISION_STRIDE) ** 2 > video.max_visual_tokens:
        size -= VISION_STRIDE
    if worst * (size // VISION_STRIDE) ** 2 > video.max_visual_tokens:
        raise ConfigError(
            f"--max_visual_tokens {video.max_visual_tokens}: a sample with {worst} frames at minimum needs at least "
            f"{worst} image tokens even at {VISION_STRIDE} px; raise the budget or lower --min_frames"
        )
    if size != video.image_size:
        logger.info("--max_visual_tokens %d: frame size lowered from %d to %d px so every sample fits with %d frame(s) per video",
                    video.max_visual_tokens, video.image_size, size, video.min_frames)
        video = replace(video, image_size=size)
    return video


def resolve_max_length(setting: str | int, report: LengthReport, limit: int | None) -> int:
    """``auto``: the longest sample, capped by the model's context; a number is taken as given."""
    if str(setting).strip().lower() != AUTO:
        try:
            return int(setting)
        except ValueError:
            raise ConfigError(f"--model_max_length {setting!r}: give a number of tokens or 'auto'") from None
    longest = max(report.longest, 1)
    return min(longest, limit) if limit else longest


def check_fit(report: LengthReport, max_length: int, max_skip_fraction: float, video: VideoConfig, limit: int | None) -> None:
    """Stop before the model loads when more than ``max_skip_fraction`` of the samples cannot fit."""
    bad = report.too_long(max_length)
    n = len(report.lengths)
    if not n or len(bad) <= max_skip_fraction * n:
        return
    keep = max(0.0, 1.0 - max_skip_fraction)
    need = int(np.quantile([s.total for s in report.lengths], keep, method="higher"))
    fixes = []
    frames = _largest(lambda f: _fits_share(report, max_length, frames=f) >= keep, video.frames_per_video - 1)
    if frames:
        fixes.append(f"fewer frames (--{'max_frames' if video.frame_sampling == 'fps' else 'num_video_frames'} {frames})")
    size = _largest(lambda s: _fits_share(report, max_length, image_size=s * VISION_STRIDE) >= keep, video.image_size // VISION_STRIDE - 1)
    if size:
        fixes.append(f"smaller frames (--image_size {size * VISION_STRIDE}, {size * size} tokens per frame)")
    if not limit or need <= limit:
        fixes.append(f"a larger --model_max_length ({need}, or 'auto')")
    fixes.append("a per-sample budget (--max_visual_tokens)")
    longest = max(report.lengths, key=lambda s: s.total)
    raise ConfigError(
        f"{len(bad)} of {n} samples ({len(bad) / n:.0%}) cannot fit model_max_length={max_length}, more than "
        f"--max_skip_fraction {max_skip_fraction}: with {video.frames_per_video} frames of {video.image_size} px "
        f"({video.tokens_per_frame} tokens each) the longest has {longest.total} tokens "
        f"({longest.image_tokens} image + {longest.text_tokens} text; {longest.where})"
        + (f"; the model's context is {limit}" if limit else "")
        + ". Fix: " + ", or ".join(fixes) + ". `fastvlm-video budget` shows the options."
    )


def _fits_share(report: LengthReport, max_length: int, frames: int | None = None, image_size: int | None = None) -> float:
    return float(np.mean([s.total_with(frames, image_size) <= max_length for s in report.lengths]))


def _largest(ok, start: int) -> int | None:
    for value in range(start, 0, -1):
        if ok(value):
            return value
    return None


@dataclass
class LengthPlan:
    video: VideoConfig
    max_length: int
    report: LengthReport


def plan_lengths(
    samples: Sequence[Sample], encoder: ChatEncoder, video: VideoConfig, setting: str | int, limit: int | None, max_skip_fraction: float
) -> LengthPlan:
    """Start-up planning from the records only: frame size for the visual budget, max length, the fit check."""
    video = fit_frame_size(video, samples)
    report = measure(samples, encoder, video)
    for line in report.unreadable[:5]:
        logger.warning("cannot count the tokens of %s (it will be skipped if it cannot be decoded either)", line)
    max_length = resolve_max_length(setting, report, limit)
    check_fit(report, max_length, max_skip_fraction, video, limit)
    logger.info("model_max_length %d (%s; longest sample %d tokens, %d cannot fit)",
                max_length, setting, report.longest, len(report.too_long(max_length)))
    return LengthPlan(video, max_length, report)
