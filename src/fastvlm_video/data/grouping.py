"""Length-grouped batches (``--group_by_modality_length``, LLaVA's meaning): every batch holds one
modality (video / image / text) and samples of similar token length, so little of it is padding.

Lengths come from the records without decoding: frames x tokens per frame + the text's tokens
(the exact ids the ``ChatEncoder`` builds, with the frame count the video settings ask for). An
animated image counts as a video, as the dataset loads it (its header is read, nothing decoded).

The order is a pure function of (seed, epoch), the same on every rank. It is laid out in *steps*
of ``world_size x batch_size`` indices; accelerate's ``BatchSamplerShard`` hands the k-th batch of
``batch_size`` to rank ``k % world_size``, so each rank gets a disjoint share of every step, all
ranks of a step hold the same modality, and the Trainer's skip of already-seen batches on resume
lands on the same batches.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from torch.utils.data import Sampler

from ..media.animation import is_animated_image
from ..video_config import VideoConfig
from .chat import ChatEncoder
from .records import MediaRef, Sample


def moves(ref: MediaRef) -> bool:
    """A video, or an animated image (loaded as frames, like a video)."""
    return ref.kind == "video" or is_animated_image(ref.path)


def modality_of(sample: Sample) -> str:
    """``video`` if any media moves, ``image`` if it has only still images, else ``text``."""
    return "video" if any(map(moves, sample.media)) else "image" if sample.media else "text"


def frames_per_video(video: VideoConfig) -> int:
    """Frames a video is expected to give without probing it (the cap for ``fps`` sampling)."""
    return video.max_frames if video.frame_sampling == "fps" else video.num_frames


def token_length(sample: Sample, encoder: ChatEncoder, video: VideoConfig) -> int:
    """Tokens of one sample (image tokens included), from its record alone."""
    frames = [frames_per_video(video) if moves(ref) else 1 for ref in sample.media]
    return len(encoder.encode(sample.messages, frames).input_ids)


def padding_share(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Share of the padded ``batch x longest`` slots that are padding."""
    slots = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1.0 - sum(lengths[i] for b in batches for i in b) / slots


class ModalityLengthGroupedSampler(Sampler[int]):
    """Indices in modality-pure, length-sorted steps; steps shuffled; deterministic under a seed.

    Per modality, the shuffled indices are cut into mega-batches of ``megabatch_steps`` steps, each
    sorted by length (longest first) and cut into steps of ``world_size x batch_size``. The steps
    of all modalities are shuffled together; the incomplete remainders form mixed steps at the end.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        modalities: Sequence[str],
        batch_size: int,
        world_size: int = 1,
        seed: int = 0,
        megabatch_steps: int = 50,
    ):
        if len(lengths) != len(modalities):
            raise ValueError(f"{len(lengths)} lengths but {len(modalities)} modalities")
        if batch_size < 1 or world_size < 1:
            raise ValueError(f"batch_size and world_size must be >= 1, got {batch_size} and {world_size}")
        self.lengths, self.modalities = list(lengths), list(modalities)
        self.step = batch_size * world_size
        self.seed, self.megabatch_steps = seed, megabatch_steps
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by the Trainer (through accelerate) before each epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order(self.epoch))

    def order(self, epoch: int) -> list[int]:
        """The indices for ``epoch``: a permutation of ``range(len(self))``."""
        rng = random.Random(f"{self.seed}/{epoch}")
        steps: list[list[int]] = []
        rest: list[int] = []
        mega = self.step * self.megabatch_steps
        for modality in sorted(set(self.modalities)):
            indices = [i for i, m in enumerate(self.modalities) if m == modality]
            rng.shuffle(indices)
            for start in range(0, len(indices), mega):
                group = sorted(indices[start : start + mega], key=lambda i: -self.lengths[i])
                full = len(group) - len(group) % self.step
                steps += [group[k : k + self.step] for k in range(0, full, self.step)]
                rest += group[full:]
        rng.shuffle(steps)
        rest.sort(key=lambda i: -self.lengths[i])
        return [i for step in steps for i in step] + rest


def grouped_sampler(dataset, batch_size: int, world_size: int, seed: int) -> ModalityLengthGroupedSampler:
    """The sampler for a ``ConversationDataset`` (lengths counted from its records)."""
    samples = dataset.samples
    cap = dataset.max_length or float("inf")  # longer samples are truncated to it
    lengths = [min(token_length(s, dataset.encoder, dataset.video), cap) for s in samples]
    return ModalityLengthGroupedSampler(lengths, [modality_of(s) for s in samples], batch_size, world_size, seed)
