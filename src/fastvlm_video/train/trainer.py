"""HF ``Trainer`` with two additions: skipped samples are counted (and stop the run past a
threshold), and the projector / vision tower may have their own learning rates."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback

from ..data.dataset import Skip
from ..data.grouping import grouped_sampler
from ..errors import TooManySkippedSamples
from ..video_config import VideoConfig

logger = logging.getLogger(__name__)


class SkipCounter:
    """Counts samples used and skipped during training; raises past ``max_fraction`` of samples drawn."""

    def __init__(self, max_fraction: float = 0.05, min_samples: int = 20):
        self.max_fraction, self.min_samples = max_fraction, min_samples
        self.used = 0
        self.skips: list[Skip] = []

    def update(self, used: int, skipped: list[Skip]) -> None:
        self.used += used
        self.skips += skipped
        drawn = self.used + len(self.skips)
        if drawn >= self.min_samples and len(self.skips) > self.max_fraction * drawn:
            raise TooManySkippedSamples(
                f"{len(self.skips)} of {drawn} samples drawn were skipped (more than {self.max_fraction:.0%}): "
                f"{self.summary()}. Last: {self.skips[-1].where}: {self.skips[-1].reason}. "
                "Run `fastvlm-video check` on the data, or raise --max_skip_fraction."
            )

    def summary(self) -> str:
        counts = Counter(s.kind for s in self.skips)
        return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "none"

    def write(self, path: Path) -> None:
        unique = {s.where: asdict(s) for s in self.skips}
        path.write_text(json.dumps({"used": self.used, "skipped": len(self.skips), "samples": list(unique.values())}, indent=2))


class VideoTrainer(Trainer):
    def __init__(self, *args, skip_counter: SkipCounter | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.skip_counter = skip_counter or SkipCounter()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        skipped = inputs.pop("skipped", [])
        used = inputs.pop("num_samples", inputs["input_ids"].shape[0])  # packed rows hold several samples
        if model.training:
            self.skip_counter.update(used, skipped)
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs.pop("skipped", None)
        inputs.pop("num_samples", None)
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)

    def _get_train_sampler(self, train_dataset=None):
        """``--group_by_modality_length``: modality-pure, length-sorted batches (see ``data.grouping``)."""
        if not self.args.group_by_modality_length:
            return super()._get_train_sampler(train_dataset)
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        return grouped_sampler(dataset, self.args.train_batch_size, self.args.world_size, self.args.seed)

    def create_optimizer(self, model=None):
        """Parameter groups: (projector | vision tower | rest) x (decay | no decay), each with its learning rate."""
        if self.optimizer is not None or (self.args.mm_projector_lr is None and self.args.vision_tower_lr is None):
            return super().create_optimizer(model) if model is not None else super().create_optimizer()
        model = self.model
        decay = set(self.get_decay_parameter_names(model))
        lrs = {"multi_modal_projector": self.args.mm_projector_lr, "vision_tower": self.args.vision_tower_lr}
        groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            lr = next((v for k, v in lrs.items() if f".{k}." in f".{name}" and v is not None), self.args.learning_rate)
            groups.setdefault((lr, self.args.weight_decay if name in decay else 0.0), []).append(param)
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
        optimizer_kwargs.pop("lr", None)
        self.optimizer = optimizer_cls(
            [{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()], lr=self.args.learning_rate, **optimizer_kwargs
        )
        return self.optimizer


class SaveVideoConfig(TrainerCallback):
    """Writes ``video_config.json`` into every checkpoint folder, so each one predicts alone."""

    def __init__(self, video: VideoConfig):
        self.video = video

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and folder.is_dir():
            self.video.save(folder)
