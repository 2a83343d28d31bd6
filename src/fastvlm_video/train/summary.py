"""``training_summary.json``: what a run trained and on what, written beside the checkpoint (read by ``push``'s card)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from ..data.records import Sample
from ..video_config import VideoConfig

SUMMARY_NAME = "training_summary.json"
MAX_CLASSES = 20  # more distinct answers than this: a free-form task, listed as a count only


def data_summary(samples: Sequence[Sample]) -> dict:
    """Counts of samples, videos, images and text-only samples; the answers as classes when they are few."""
    kinds = Counter(ref.kind for s in samples for ref in s.media)
    answers = Counter(
        next((m.content.strip() for m in reversed(s.messages) if m.role == "assistant"), "") for s in samples
    )
    summary = {
        "samples": len(samples),
        "videos": kinds["video"],
        "images": kinds["image"],
        "text_only": sum(not s.media for s in samples),
        "distinct_answers": len(answers),
    }
    if 0 < len(answers) <= MAX_CLASSES:
        summary["classes"] = dict(sorted(answers.items()))
    return summary


def write_summary(
    out: str | Path,
    model_args,
    training_args,
    train: Sequence[Sample],
    val: Sequence[Sample],
    video: VideoConfig,
    train_loss: float,
    eval_loss: float | None,
    skipped: int = 0,
    eval_excluded: int = 0,
) -> Path:
    """Base model, what trained (full or LoRA, frozen parts), data, video settings and final losses.

    ``val`` are the validation samples the loss could use; ``eval_excluded`` those left out (unusable
    media), ``skipped`` the training samples skipped (both listed in ``skipped_samples.json``)."""
    llm = (
        "frozen"
        if (model_args.freeze_backbone or model_args.tune_mm_mlp_adapter)
        else ("LoRA" if training_args.lora_enable else "full")
    )
    summary = {
        "base_model": model_args.model_name_or_path,
        "method": "LoRA" if training_args.lora_enable else "full",
        "trained": {
            "llm": llm,
            "projector": "full",
            "vision_tower": "full"
            if model_args.unfreeze_mm_vision_tower and not model_args.tune_mm_mlp_adapter
            else "frozen",
        },
        "lora": {
            "r": training_args.lora_r,
            "alpha": training_args.lora_alpha,
            "target_modules": training_args.lora_target_modules,
        }
        if training_args.lora_enable
        else None,
        "bits": training_args.bits,
        "epochs": training_args.num_train_epochs,
        "learning_rate": training_args.learning_rate,
        "train_loss": train_loss,
        "eval_loss": eval_loss,
        "data": {
            "train": {**data_summary(train), "skipped": skipped},
            "validation": {**data_summary(val), "excluded": eval_excluded},
        },
        "video": asdict(video),
    }
    path = Path(out) / SUMMARY_NAME
    path.write_text(json.dumps(summary, indent=2) + "\n")
    return path


def read_summary(directory: str | Path) -> dict | None:
    path = Path(directory) / SUMMARY_NAME
    return json.loads(path.read_text()) if path.is_file() else None
