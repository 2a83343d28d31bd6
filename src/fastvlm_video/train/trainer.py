"""HF ``Trainer`` with four additions: skipped samples are counted (and stop the run past a
threshold), the validation loss is the mean over exactly the validation samples that could be used
(the others are excluded, named once and counted, never replaced), checkpoints carry what predict and
resume need (saved so a cut-short save is never trusted), and the projector / vision tower may have
their own learning rates."""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import torch
from transformers import Trainer

from ..data.dataset import Skip
from ..data.grouping import grouped_sampler
from ..errors import ConfigError, TooManySkippedSamples
from ..file_modes import share_like_other_files
from ..save_marker import mark_complete, mark_incomplete
from ..video_config import VideoConfig
from .checkpoints import disk_full_is_one_line

SKIP_REPORT = "skipped_samples.json"

logger = logging.getLogger(__name__)


USED_NOTE_VERBS = {"truncated": "truncated", "stand_in": "stand-in frames in"}  # notes on samples used anyway


def _note_key(note: Skip) -> str:
    """Notes on used samples are logged once per run: a truncation once per sample, a media note (its
    reason names the file) once per file and note, however many samples share the file."""
    return note.where if note.kind == "truncated" else f"{note.kind}: {note.reason}"


class SkipCounter:
    """Counts samples used, skipped (broken media, too long) and truncated or given stand-in frames (a
    truncated clip); logs each once per run (stand-ins once per file), whichever worker process decoded
    it and however often.

    The run stops when more distinct samples proved unusable than ``max_fraction`` of the dataset
    (at least one is always tolerated; ``max_fraction=0`` stops at the first): a rule on the data,
    not on the order it is drawn in, so a dataset under the threshold never stops. Samples the
    start-up probe found unusable are ``add``-ed before training and count the same way.

    Validation samples that could not be used are ``excluded`` (by the start-up probe, or when decoding
    fails during an evaluation): logged once each, listed in the report's ``eval`` section.
    """

    def __init__(self, dataset_size: int, max_fraction: float = 0.05, eval_size: int = 0):
        self.dataset_size, self.max_fraction, self.eval_size = dataset_size, max_fraction, eval_size
        self.used = 0
        self.skipped_draws = 0
        self.skipped: dict[str, Skip] = {}  # by sample (``where``)
        self.truncated: dict[str, Skip] = {}
        self.excluded: dict[str, Skip] = {}  # validation samples left out of the validation loss

    @property
    def allowed(self) -> int:
        limit = math.floor(self.max_fraction * self.dataset_size)
        return limit if self.max_fraction == 0 else max(1, limit)

    def update(self, used: int, skipped: list[Skip], truncated: list[Skip] = ()) -> None:
        self.used += used
        self.skipped_draws += len(skipped)
        for note in skipped:
            if note.where not in self.skipped:
                self.skipped[note.where] = note
                logger.warning("skipping %s: %s", note.where, note.reason)
        for note in truncated:
            if _note_key(note) not in self.truncated:
                self.truncated[_note_key(note)] = note
                logger.warning("%s %s: %s", USED_NOTE_VERBS.get(note.kind, note.kind), note.where, note.reason)
        if len(self.skipped) > self.allowed:
            last = next(reversed(self.skipped.values()))
            raise TooManySkippedSamples(
                f"{len(self.skipped)} of {self.dataset_size} samples are unusable (more than {self.max_fraction:.0%} of the data): "
                f"{self.summary()}. Last: {last.where}: {last.reason}. "
                "Run `fastvlm-video check` on the data, or raise --max_skip_fraction."
            )

    def add(self, skips: list[Skip]) -> None:
        """Training samples found unusable before training (already logged by the probe)."""
        self.skipped.update((s.where, s) for s in skips)

    def exclude(self, skips: list[Skip], log: bool = True) -> None:
        """Validation samples left out of the validation loss; each logged the first time (``log``)."""
        for note in skips:
            if note.where not in self.excluded:
                self.excluded[note.where] = note
                if log:
                        logger.warning("validation sample excluded from the validation loss: %s: %s", note.where, note.reason)

    def summary(self) -> str:
        counts = Counter(s.kind for s in [*self.skipped.values(), *self.truncated.values()])
        return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "none"

    def state(self) -> dict:
        counts = Counter(s.kind for s in [*self.skipped.values(), *self.truncated.values()])
        return {
            "used": self.used,
            "skipped": self.skipped_draws,
            "dataset_size": self.dataset_size,
            "counts": dict(sorted(counts.items())),
            "samples": [asdict(s) for s in self.skipped.values()],
            "truncated": [asdict(s) for s in self.truncated.values()],
            "eval": {"dataset_size": self.eval_size, "excluded": len(self.excluded), "samples": [asdict(s) for s in self.excluded.values()]},
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.state(), indent=2) + "\n")

    def load(self, path: Path) -> None:
        """Continue the counts of a checkpoint's report (resume)."""
        state = json.loads(path.read_text())
        self.used, self.skipped_draws = state["used"], state["skipped"]
        self.skipped = {s["where"]: Skip(**s) for s in state["samples"]}
        self.truncated = {_note_key(n): n for n in (Skip(**s) for s in state.get("truncated", []))}
        self.excluded |= {s["where"]: Skip(**s) for s in state.get("eval", {}).get("samples", [])}


class VideoTrainer(Trainer):
    def __init__(self, *args, skip_counter: SkipCounter | None = None, video: VideoConfig | None = None, probe_excluded: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.skip_counter = skip_counter or SkipCounter(len(self.train_dataset) if self.train_dataset is not None else 0)
        self.video = video  # written into every checkpoint (when given), so each one predicts alone
        self.probe_excluded = probe_excluded  # validation samples the start-up probe left out of the eval dataset
        self._eval_tally: list | None = None

    def count_samples(self, model, inputs: dict) -> None:
        """Take the batch's bookkeeping keys out of ``inputs``; in training, count used, skipped and truncated samples."""
        skipped, truncated = inputs.pop("skipped", []), inputs.pop("truncated", [])
        used = inputs.pop("num_samples", inputs["input_ids"].shape[0])  # packed rows hold several samples
        if model.training:
            self.skip_counter.update(used, skipped, truncated)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        self.count_samples(model, inputs)
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """One evaluation batch: its excluded samples noted, its loss added to the usable samples' total."""
        inputs.pop("skipped", None)
        inputs.pop("truncated", None)
        excluded = inputs.pop("excluded", [])
        self.skip_counter.exclude(excluded)
        used = inputs.pop("num_samples", None)
        tally = getattr(self, "_eval_tally", None)
        if tally is not None:
            tally[2] += len(excluded)
        if "input_ids" not in inputs:  # nothing usable in this batch; a placeholder keeps the processes in step
            return torch.zeros((), device=self.args.device), None, None
        used = inputs["input_ids"].shape[0] if used is None else used
        loss, logits, labels = super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)
        if loss is not None and tally is not None:
            tally[0] += float(loss.detach().float()) * used
            tally[1] += used
        return loss, logits, labels

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"):
        """HF's loop, with ``{prefix}_loss`` replaced by the mean over exactly the usable samples (each
        batch's mean loss weighted by its usable samples, summed over processes; HF would weigh every
        batch by its nominal size), and ``{prefix}_samples`` / ``{prefix}_excluded`` counting them
        (excluded: by the start-up probe, and in this pass)."""
        self._eval_tally = [0.0, 0, 0]  # loss x samples, samples, excluded in this pass
        try:
            output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
            sums = torch.tensor(self._eval_tally, dtype=torch.float64, device=self.args.device)
        finally:
            self._eval_tally = None
        if self.args.world_size > 1:
            sums = self.accelerator.reduce(sums, reduction="sum")
        total, used, excluded = float(sums[0]), int(sums[1]), int(sums[2])
        if used == 0:
            raise ConfigError(
                f"no validation sample could be used ({len(self.skip_counter.excluded)} excluded, named in the log): "
                "fix the validation media (`fastvlm-video check`) or drop --validation_data_path"
            )
        output.metrics[f"{metric_key_prefix}_loss"] = total / used
        output.metrics[f"{metric_key_prefix}_samples"] = used
        output.metrics[f"{metric_key_prefix}_excluded"] = excluded + self.probe_excluded
        return output

    def _get_train_sampler(self, train_dataset=None):
        """``--group_by_modality_length``: modality-pure, length-sorted batches (see ``data.grouping``)."""
        if not self.args.group_by_modality_length:
            return super()._get_train_sampler(train_dataset)
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        return grouped_sampler(dataset, self.args.train_batch_size, self.args.world_size, self.args.seed)

    def _save_checkpoint(self, model, trial) -> None:
        """``checkpoint-N`` with ``video_config.json`` and the skip report written first and a save marker
        removed last; on a full disk the partial folder is removed and the last complete one named."""
        run_dir = Path(self._get_output_dir(trial=trial))
        folder = run_dir / f"checkpoint-{self.state.global_step}"
        if self.args.should_save:
            mark_incomplete(folder)
            if self.video is not None:
                self.video.save(folder)
            self.skip_counter.write(folder / SKIP_REPORT)
        with disk_full_is_one_line(folder, run_dir, remove_partial=True):
            super()._save_checkpoint(model, trial)
        if self.args.should_save and folder.is_dir():  # kept unless rotated away
            share_like_other_files(folder)
            mark_complete(folder)

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
