"""The demo's GRPO stage: ``train --method grpo`` from the weak start on the motion clips, rewarded by the
``exact`` rule (the answer is the clip's direction). No answers are given to the model: it samples G of
its own per clip and is pushed towards the ones the rule scores right."""

from __future__ import annotations

from pathlib import Path

from ..train.args import parse_train_args
from ..train.run import train
from .post import PostContext

# Chosen on validation accuracy only (benchmarks/grpo_demo.py): steps at 8 prompts x G answers, learning rate, beta.
GRPO_DEFAULTS = {"steps": 150, "learning_rate": 1e-3, "beta": 0.0, "num_generations": 4, "temperature": 1.0, "batch_size": 8}


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
