"""GRPO settings on the post-training demo (seed 0, one image stage): accuracy on the validation clips.

Run after ``fastvlm-video demo --post grpo --out runs/post0 --cpu_threads 1`` (data and image stage). Each
call trains ``runs/post0/try/NAME/grpo`` with the demo's GRPO stage from the weak start of ``sft_steps``
SFT steps (``runs/post0/sft<N>``, made once and shared by every setting with that start), and appends a
JSON line to ``--results``: the setting, the start's and the result's validation accuracy (test too, but
settings are compared on validation only), the training reward and the share of groups without signal,
first -> last logged window, and the seconds.

    .venv/bin/python benchmarks/grpo_settings.py g8lr3e4 '{"sft_steps": 60, "num_generations": 8, "learning_rate": 3e-4}'
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from fastvlm_video.demo.grpo_stage import GRPO_DEFAULTS, run_grpo_stage
from fastvlm_video.demo.post import SFT_STEPS, PostContext, accuracy, train_weak_start

SPLITS = ("val", "test")


def weak_start(root: Path, steps: int, frames: int, seed: int, threads: int) -> Path:
    """``root/sft<steps>`` (``_f<frames>`` unless 8 frames), trained once."""
    ctx = PostContext(root, root / "data", root / (f"sft{steps}" + ("" if frames == 8 else f"_f{frames}")), frames, seed, threads)
    if not (ctx.start / "training_summary.json").is_file():
        train_weak_start(ctx, steps)
    return ctx.start


def scores(model: Path, data: Path, out: Path) -> dict[str, float]:
    return {split: accuracy(model, data, split, out / split) for split in SPLITS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name")
    parser.add_argument("options", help="JSON: GRPO_DEFAULTS overrides, plus sft_steps (the start)")
    parser.add_argument("--root", default="runs/post0")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0, help="the seed ROOT's data and image stage were made with")
    parser.add_argument("--cpu_threads", type=int, default=1)
    parser.add_argument("--results", default="benchmarks/results/grpo_settings.jsonl")
    args = parser.parse_args()
    root, options = Path(args.root), json.loads(args.options)
    sft_steps = options.pop("sft_steps", SFT_STEPS)
    start = weak_start(root, sft_steps, args.frames, args.seed, args.cpu_threads)
    start_scores_file = start / "demo_scores.json"
    if not start_scores_file.is_file():
        start_scores_file.write_text(json.dumps(scores(start, root / "data", start.parent / "eval" / start.name)))
    ctx = PostContext(root / "try" / args.name, root / "data", start, args.frames, args.seed, args.cpu_threads, options)
    began = time.perf_counter()
    run_grpo_stage(ctx)
    seconds = round(time.perf_counter() - began, 1)
    metrics = json.loads((ctx.out / "grpo" / "training_summary.json").read_text())["objective"]["metrics"]
    row = {
        "name": args.name, "seed": args.seed, "root": str(root), "frames": args.frames, "sft_steps": sft_steps, "options": {**GRPO_DEFAULTS, **options},
        "start": json.loads(start_scores_file.read_text()), "grpo": scores(ctx.out / "grpo", root / "data", ctx.out / "eval"),
        "reward_first_last": [metrics["reward"]["first"], metrics["reward"]["last"]],
        "frac_reward_zero_std_first_last": [metrics["frac_reward_zero_std"]["first"], metrics["frac_reward_zero_std"]["last"]],
        "grpo_seconds": seconds,
    }  # fmt: skip
    print("RESULT", json.dumps(row), flush=True)
    with open(args.results, "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
