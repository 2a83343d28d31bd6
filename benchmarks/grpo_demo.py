"""Does GRPO raise held-out accuracy above its weak SFT start on the demo's motion task, and only with time?

The numbers behind docs/post_training.md's GRPO demo. Per seed: the demo's data and image stage, the weak
SFT start (``demo.post.train_weak_start``), then GRPO (``demo.grpo_stage``) with each candidate setting;
the setting is chosen on the **validation** clips of the first seed only and then reported on the test
clips of every seed. With ``--frames 8 1`` the same runs are made with 1 frame per video (SFT start and
GRPO both), where the direction cannot be seen: GRPO cannot beat chance there.

    .venv/bin/python benchmarks/grpo_demo.py --out /tmp/grpo_demo --seeds 0 1 2 --frames 8 1 \\
        --results benchmarks/results/grpo_demo.json

Reuses what a folder already holds (data, image stage, SFT start, finished GRPO runs), so an interrupted
run continues. CPU only, ``--cpu_threads`` pinned (1 by default: the machine is shared; wall times are
indicative only, neighbours' jobs change them).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

from fastvlm_video.demo.grpo_stage import GRPO_DEFAULTS, run_grpo_stage
from fastvlm_video.demo.post import PostContext, accuracy, train_weak_start
from fastvlm_video.demo.run import prepare_demo_data, train_image_stage

# Candidates, chosen between on the first seed's validation clips (the defaults first).
GRID = [
    {},
    {"learning_rate": 3e-4},
    {"beta": 0.04},
]


def complete(folder: Path) -> bool:
    return (folder / "training_summary.json").is_file()


def run_seed(root: Path, seed: int, frames: int, grid: list[dict], threads: int, prepare_only: bool = False) -> dict | None:
    base = root / f"seed{seed}"
    data = prepare_demo_data(base, None, seed)
    if not complete(base / "image_model"):
        train_image_stage(base, data, seed=seed, cpu_threads=threads)
    out = base / f"frames{frames}"
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "image_model").exists():
        (out / "image_model").symlink_to(base / "image_model")  # stills: the same stage for any frame count
    ctx = PostContext(out, data, out / "sft", frames, seed, threads)
    if not complete(ctx.start):
        train_weak_start(ctx)
    if prepare_only:
        return None
    result = {"sft": {s: accuracy(ctx.start, data, s, out / "eval" / f"sft_{s}") for s in ("val", "test")}, "grpo": []}
    for i, options in enumerate(grid):
        setting = PostContext(out / f"grpo{i}", data, ctx.start, frames, seed, threads, options)
        started = time.perf_counter()
        if not complete(setting.out / "grpo"):
            run_grpo_stage(setting)
        seconds = round(time.perf_counter() - started, 1)
        scores = {s: accuracy(setting.out / "grpo", data, s, setting.out / "eval" / s) for s in ("val", "test")}
        summary = json.loads((setting.out / "grpo" / "training_summary.json").read_text())["objective"]["metrics"]
        result["grpo"].append({"options": {**GRPO_DEFAULTS, **options}, **scores, "seconds": seconds,
                               "reward_first_last": [summary["reward"]["first"], summary["reward"]["last"]],
                               "frac_reward_zero_std_last": summary["frac_reward_zero_std"]["last"]})  # fmt: skip
        print(f"seed {seed} frames {frames} setting {i}: val {scores['val']:.3f} test {scores['test']:.3f} "
              f"(SFT start: val {result['sft']['val']:.3f} test {result['sft']['test']:.3f})", flush=True)  # fmt: skip
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="working folder (reused by reruns)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--frames", type=int, nargs="+", default=[8, 1])
    parser.add_argument("--cpu_threads", type=int, default=1)
    parser.add_argument("--results", help="write the results JSON here")
    parser.add_argument("--prepare_only", action="store_true", help="only the data, image stage and SFT start (run seeds in parallel)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    root = Path(args.out)
    if args.prepare_only:
        for seed in args.seeds:
            for frames in args.frames:
                run_seed(root, seed, frames, [], args.cpu_threads, prepare_only=True)
        return
    report = {"grid": GRID, "defaults": GRPO_DEFAULTS, "runs": {}}
    for frames in args.frames:
        first = run_seed(root, args.seeds[0], frames, GRID, args.cpu_threads)
        chosen = max(range(len(GRID)), key=lambda i: (first["grpo"][i]["val"], -i))  # validation only
        runs = {args.seeds[0]: first}
        for seed in args.seeds[1:]:
            runs[seed] = run_seed(root, seed, frames, [GRID[chosen]], args.cpu_threads)
        picked = {seed: r["grpo"][chosen if seed == args.seeds[0] else 0] for seed, r in runs.items()}
        sft_test = [r["sft"]["test"] for r in runs.values()]
        grpo_test = [p["test"] for p in picked.values()]
        report["runs"][f"frames{frames}"] = {
            "chosen_on_validation": {**GRPO_DEFAULTS, **GRID[chosen]},
            "per_seed": {str(s): {"sft": runs[s]["sft"], "grpo": picked[s], "all_settings_seed0": runs[s]["grpo"] if s == args.seeds[0] else None}
                         for s in runs},  # fmt: skip
            "test_sft_mean": round(statistics.mean(sft_test), 4),
            "test_grpo_mean": round(statistics.mean(grpo_test), 4),
            "test_gain_per_seed": [round(g - s, 4) for g, s in zip(grpo_test, sft_test)],
        }
        print(json.dumps(report["runs"][f"frames{frames}"], indent=1), flush=True)
    report["note"] = "2 shared CPU cores with other engineers' jobs: seconds are indicative only; accuracies do not depend on load"
    if args.results:
        Path(args.results).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
