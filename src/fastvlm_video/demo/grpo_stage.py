"""The demo's GRPO stage: ``train --method grpo`` from the weak start on the motion clips, rewarded by the
``exact`` rule (the answer is the clip's direction). No answers are given to the model: it samples G of
its own per clip and is pushed towards the ones the rule scores right."""

from __future__ import annotations

from pathlib import Path

from ..train.args import parse_train_args
from ..train.run import train
from .post import PostContext

# Chosen on validation accuracy only (seed 0; benchmarks/grpo_settings.py, stored output
# benchmarks/results/grpo_settings.jsonl): from the 150-step start (validation 0.425), 500 steps at 8 clips x G=8
# answers, lr 1e-3, beta 0.2 reached validation 1.0 (300 steps: 0.775; beta 0 at lr 3e-4: 0.4875, the answers
# collapsed onto one word per axis: the KL pull to the start keeps the groups disagreeing until the sign is learned).
GRPO_DEFAULTS = {"steps": 500, "learning_rate": 1e-3, "beta": 0.2, "num_generations": 8, "temperature": 1.0, "batch_size": 8}


def run_grpo_stage(ctx: PostContext) -> Path:
    """``out/grpo``: GRPO from ``ctx.start``; ``ctx.options`` override ``GRPO_DEFAULTS``."""
    options = {**GRPO_DEFAULTS, **ctx.options}
    output_dir = ctx.out / "grpo"
    argv = ctx.train_argv(ctx.start, "train", output_dir, batch_size=options["batch_size"])
    argv += [
        "--method", "grpo", "--reward", "exact", "--beta", str(options["beta"]),
        "--num_generations", str(options["num_generations"]), "--temperature", str(options["temperature"]),
        "--max_completion_length", "2",  # a direction is one token, then <|im_end|>
        "--max_steps", str(options["steps"]), "--learning_rate", str(options["learning_rate"]),
        "--warmup_ratio", "0", "--eval_strategy", "no",
    ]  # fmt: skip
    train(*parse_train_args(argv))
    return output_dir
