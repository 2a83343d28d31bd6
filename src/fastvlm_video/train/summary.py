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
    eval_metrics: dict | None = None,
    skipped: int = 0,
    eval_excluded: int = 0,
    progress: dict | None = None,
) -> Path:
    """Base model, what trained (full or LoRA, frozen parts), the objective, data, video settings and final losses.

    ``val`` are the validation samples the loss could use; ``eval_excluded`` those left out (unusable
    media), ``skipped`` the training samples skipped (both listed in ``skipped_samples.json``).
    ``progress`` is what ran (``run_progress``: steps, epochs, samples seen), not what was asked for: a run
    with ``--max_steps`` stops before ``--num_train_epochs``; both requests are kept under ``requested``."""
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
        "objective": objective(training_args, eval_metrics),
        "bits": training_args.bits,
        **(progress or {}),
        "requested": {"num_train_epochs": training_args.num_train_epochs, "max_steps": training_args.max_steps},
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


def objective(training_args, eval_metrics: dict | None = None) -> dict:
    """``{"method": "sft"}``, or DPO's loss, beta, reference and its last evaluation's reward metrics."""
    method = getattr(training_args, "method", "sft")
    if method != "dpo":
        return {"method": method}
    from .args import dpo_beta, reference_kind

    out = {"method": "dpo", "loss_type": training_args.loss_type, "beta": dpo_beta(training_args),
           "reference": reference_kind(training_args)}  # fmt: skip
    if training_args.loss_type == "simpo":
        out["simpo_gamma"] = training_args.simpo_gamma
    if eval_metrics:
        out["eval"] = {k.removeprefix("eval_"): v for k, v in eval_metrics.items() if k.startswith(("eval_rewards/", "eval_logps/"))}
    return out


def objective_line(summary: dict) -> str | None:
    """The model card's line for a post-training objective (None for SFT or an older summary)."""
    obj = summary.get("objective") or {}
    if obj.get("method") == "grpo":
        return grpo_line(obj)
    if obj.get("method") != "dpo":
        return None
    reference = {"copy": "a frozen copy of the start", "adapter_off": "the base weights (LoRA off)",
                 "precompute": "precomputed log-probs", None: "none (reference-free)"}[obj.get("reference")]  # fmt: skip
    line = f"- Objective: DPO, loss {obj['loss_type']}, beta {obj['beta']:g}, reference {reference}"
    accuracy = (obj.get("eval") or {}).get("rewards/accuracies")
    return line + (f"; validation reward accuracy {accuracy:.3f}" if accuracy is not None else "")


def grpo_line(obj: dict) -> str:
    """The model card's GRPO line: G, beta, rewards, and the mean reward at the first and last logged step."""
    line = (f"- Objective: GRPO, {obj['num_generations']} sampled answers per prompt, beta {obj['beta']:g}, "
            f"epsilon {obj['epsilon']:g}, rewards {obj['rewards']}")  # fmt: skip
    reward = (obj.get("metrics") or {}).get("reward")
    return line + (f"; training reward {reward['first']:.3f} (first log) -> {reward['last']:.3f} (last)" if reward else "")


def run_progress(state, samples_seen: int, batch_size: int) -> dict:
    """What a run did, from the Trainer's state: optimizer steps, epochs (fractional) and samples drawn."""
    return {
        "steps": state.global_step,
        "epochs": round(float(state.epoch or 0.0), 4),
        "samples_seen": samples_seen,
        "batch_size": batch_size,  # samples per optimizer step (all devices, accumulation included)
    }


def read_summary(directory: str | Path) -> dict | None:
    path = Path(directory) / SUMMARY_NAME
    return json.loads(path.read_text()) if path.is_file() else None
