"""What ``train --method grpo`` swaps into the SFT flow: the prompt dataset and collator, the GRPO trainer
with its settings, rewards and reference model, the sequence length, and the summary's GRPO section."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

from .args import TrainingArguments, grpo_beta
from .dpo import frozen_copy
from .grpo_data import PromptCollator, PromptDataset
from .grpo_trainer import GRPOSettings, GRPOTrainer, grpo_summary
from .rewards import parse_rewards
from .summary import SUMMARY_NAME

logger = logging.getLogger(__name__)

GRPO_PARTS = SimpleNamespace(dataset=PromptDataset, collator=PromptCollator, trainer=GRPOTrainer)


def grpo_max_length(args: TrainingArguments, planned: int, context: int | None) -> int:
    """With ``--model_max_length auto``, room for the longest prompt plus a whole sampled answer
    (the planned length fits the reference answers, which may be shorter than what the policy writes)."""
    if str(args.model_max_length) != "auto":  # set by the user: kept
        return planned
    longest = planned + args.max_completion_length
    return min(longest, context) if context else longest


def settings(args: TrainingArguments) -> GRPOSettings:
    return GRPOSettings(
        num_generations=args.num_generations, temperature=args.temperature, max_completion_length=args.max_completion_length,
        epsilon=args.epsilon, beta=grpo_beta(args), loss_type=args.grpo_loss_type, scale_rewards=args.scale_rewards,
    )  # fmt: skip


def grpo_parts(args: TrainingArguments, model, tokenizer, encoder, tower_trains: bool) -> dict:
    """The ``GRPOTrainer`` keyword arguments; call before the model is set up to train (the reference copies it)."""
    grpo = settings(args)
    ref = frozen_copy(model) if grpo.beta else None
    logger.info("GRPO: %d answers per prompt, temperature %g, beta %g (%s), rewards %s", grpo.num_generations, grpo.temperature,
                grpo.beta, "a frozen copy of the start as reference" if ref is not None else "no reference model", args.reward)  # fmt: skip
    return {"grpo": grpo, "rewards": parse_rewards(args.reward), "tokenizer": tokenizer, "eos_id": encoder.im_end_id,
            "ref_model": ref, "tower_trains": tower_trains}  # fmt: skip


def objective(args: TrainingArguments, log_history: list[dict]) -> dict:
    """The summary's (and model card's) GRPO section: settings, and each logged metric's mean / first / last."""
    return {
        "method": "grpo", "num_generations": args.num_generations, "beta": grpo_beta(args), "epsilon": args.epsilon,
        "temperature": args.temperature, "max_completion_length": args.max_completion_length, "rewards": args.reward,
        "loss_type": args.grpo_loss_type, "scale_rewards": args.scale_rewards, "metrics": grpo_summary(log_history),
    }  # fmt: skip


def write_grpo_summary(out: Path, args: TrainingArguments, log_history: list[dict]) -> None:
    """Add the GRPO section to ``training_summary.json`` (as ``objective``)."""
    path = Path(out) / SUMMARY_NAME
    summary = json.loads(path.read_text())
    summary["objective"] = objective(args, log_history)
    path.write_text(json.dumps(summary, indent=2) + "\n")
