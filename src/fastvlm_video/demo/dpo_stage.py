"""The demo's DPO stage: preference pairs from the motion clips, then ``train --method dpo`` from the weak start.

Pairs: the chosen answer is the clip's direction, the rejected one a wrong direction drawn at random
(seeded, one per clip). A random wrong class, not the start model's own wrong answer: the start often
answers the same word for every clip, so its own mistakes would teach only "not that word"; random
wrong classes push against every confusion equally, and the pairs do not depend on the start model.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from ..train.args import parse_train_args
from ..train.run import train
from .post import PostContext
from .synthetic import DIRECTIONS

# Chosen on validation accuracy only (benchmarks/post_training_demo.py): steps at batch 8, learning rate, beta.
DPO_DEFAULTS = {"steps": 150, "learning_rate": 1e-3, "beta": 0.1, "loss_type": "sigmoid", "batch_size": 8}


def preference_records(records: list[dict], seed: int) -> list[dict]:
    """LLaVA records with one answer -> preference records: the prompt, ``chosen`` (the answer), ``rejected`` (a wrong direction)."""
    rng = random.Random(seed)
    pairs = []
    for record in records:
        *prompt, answer = record["conversations"]
        wrong = rng.choice([d for d in DIRECTIONS if d != answer["value"]])
        pairs.append({**{k: v for k, v in record.items() if k != "conversations"}, "conversations": prompt,
                      "chosen": answer["value"], "rejected": wrong})  # fmt: skip
    return pairs


def write_pairs(data: Path, split: str, seed: int) -> Path:
    """``data/dpo_<split>.json`` from ``data/<split>.json`` (media paths unchanged: same folder)."""
    path = data / f"dpo_{split}.json"
    path.write_text(json.dumps(preference_records(json.loads((data / f"{split}.json").read_text()), seed), indent=1))
    return path


def run_dpo_stage(ctx: PostContext) -> Path:
    """``out/dpo``: DPO from ``ctx.start`` on pairs of the training clips; ``ctx.options`` override ``DPO_DEFAULTS``."""
    options = {**DPO_DEFAULTS, **ctx.options}
    write_pairs(ctx.data, "train", ctx.seed)
    write_pairs(ctx.data, "val", ctx.seed + 1)
    output_dir = ctx.out / "dpo"
    argv = ctx.train_argv(ctx.start, "dpo_train", output_dir, batch_size=options["batch_size"])
    argv[argv.index("--validation_data_path") + 1] = str(ctx.data / "dpo_val.json")
    argv += [
        "--method", "dpo", "--loss_type", options["loss_type"], "--beta", str(options["beta"]),
        "--max_steps", str(options["steps"]), "--learning_rate", str(options["learning_rate"]),
        "--eval_strategy", "no",
    ]  # fmt: skip
    train(*parse_train_args(argv))
    return output_dir
