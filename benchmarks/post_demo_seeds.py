"""DPO and GRPO against their weak SFT start on the demo's motion task, over seeds, with two controls.

The numbers behind docs/post_training.md's demo section. Per seed s, in ``ROOT/seed<s>``:

1. ``run_post_demo`` with every method (what ``fastvlm-video demo --post all --seed s`` runs, at the
   code's defaults: ``SFT_STEPS``, ``GRPO_DEFAULTS``, ``DPO_DEFAULTS``, chosen on validation only);
2. the **SFT-continuation control** ``sft_more``: SFT from the same start for DPO's steps, batch and
   learning rate (the same chosen answers DPO's RPO term trains on, without the rejected ones), so a
   DPO gain is not just more training on the right answers.

With ``--frames 1`` the same runs see 1 frame per video (``ROOT/seed<s>_f1``, sharing the seed's data
and image stage: stills, the same for any frame count): the direction cannot be seen, so no method may
beat chance (0.25). ``--share_image_stage`` lets seeds 1.. reuse seed 0's image stage (saves ~2 minutes
each; each seed still has its own clips, start and post-training). Finished runs are reused.

    .venv/bin/python benchmarks/post_demo_seeds.py --root runs/seeds --seeds 0 1 2 --frames 8 \\
        --results benchmarks/results/post_demo_seeds.json

The JSON keeps one row per (frames, seed); ``--table`` writes the markdown table from it.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

from fastvlm_video.demo.dpo_stage import DPO_DEFAULTS
from fastvlm_video.demo.grpo_stage import GRPO_DEFAULTS
from fastvlm_video.demo.post import SFT_STEPS, PostContext, accuracy, available_methods, run_post_demo, sft_steps

SPLITS = ("val", "test")
CONTROL = "sft_more"


def link(target: Path, name: Path) -> None:
    if not name.exists():
        name.parent.mkdir(parents=True, exist_ok=True)
        name.symlink_to(target.resolve())


def run_one(root: Path, seed: int, frames: int, share_image_stage: bool, threads: int) -> dict:
    out = root / (f"seed{seed}" if frames == 8 else f"seed{seed}_f{frames}")
    if frames != 8:  # the seed's data and image stage (made by its 8-frame run)
        link(root / f"seed{seed}" / "data", out / "data")
        link(root / f"seed{seed}" / "image_model", out / "image_model")
    elif share_image_stage and seed != 0:
        link(root / "seed0" / "image_model", out / "image_model")
    if (out / "row.json").is_file():
        return json.loads((out / "row.json").read_text())
    metrics = run_post_demo(out, available_methods(), num_video_frames=frames, seed=seed, cpu_threads=threads)
    ctx = PostContext(out, out / "data", out / "sft", frames, seed, threads)
    began = time.perf_counter()
    sft_steps(ctx, ctx.start, out / CONTROL, DPO_DEFAULTS["steps"], DPO_DEFAULTS["learning_rate"], DPO_DEFAULTS["batch_size"])
    seconds = {**metrics["seconds"], CONTROL: round(time.perf_counter() - began, 1)}
    accuracies = {split: {**metrics[f"{split}_accuracy"]} for split in SPLITS}
    for split in SPLITS:
        accuracies[split][CONTROL] = accuracy(out / CONTROL, out / "data", split, out / "eval" / f"{CONTROL}_{split}")
    row = {"seed": seed, "frames": frames, "val": accuracies["val"], "test": accuracies["test"], "seconds": seconds,
           "image_stage": "seed 0's" if share_image_stage and seed != 0 and frames == 8 else "own" if frames == 8 else "8-frame run's"}  # fmt: skip
    (out / "row.json").write_text(json.dumps(row, indent=1))
    return row


def table(report: dict) -> str:
    methods = ["sft", CONTROL, "dpo", "grpo"]
    lines = ["| frames | seed | " + " | ".join(f"{m} val / test" for m in methods) + " |", "|---" * (len(methods) + 2) + "|"]
    for row in report["rows"]:
        cells = [f"{row['val'].get(m, float('nan')):.3f} / {row['test'].get(m, float('nan')):.3f}" for m in methods]
        lines.append(f"| {row['frames']} | {row['seed']} | " + " | ".join(cells) + " |")
    for frames, summary in report["mean_test"].items():
        lines.append(f"| {frames} | mean test | " + " | ".join(f"{summary.get(m, float('nan')):.3f}" for m in methods) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="working folder (reused by reruns)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--frames", type=int, nargs="+", default=[8])
    parser.add_argument("--share_image_stage", action="store_true")
    parser.add_argument("--cpu_threads", type=int, default=1)
    parser.add_argument("--results", required=True, help="the JSON (rows of earlier calls with other seeds/frames are kept)")
    parser.add_argument("--table", help="write the markdown table here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = Path(args.results)
    old = json.loads(results.read_text())["rows"] if results.is_file() else []
    rows = {(r["frames"], r["seed"]): r for r in old}
    for frames in args.frames:
        for seed in args.seeds:
            rows[(frames, seed)] = run_one(Path(args.root), seed, frames, args.share_image_stage, args.cpu_threads)
            print(json.dumps(rows[(frames, seed)]), flush=True)
    ordered = [rows[k] for k in sorted(rows)]
    by_frames = {f: [r for r in ordered if r["frames"] == f] for f in sorted({r["frames"] for r in ordered})}
    report = {
        "defaults": {"sft_steps": SFT_STEPS, "grpo": GRPO_DEFAULTS, "dpo": DPO_DEFAULTS,
                     CONTROL: {k: DPO_DEFAULTS[k] for k in ("steps", "learning_rate", "batch_size")}},
        "rows": ordered,
        "mean_test": {str(f): {m: round(statistics.mean(r["test"][m] for r in rs), 4) for m in rs[0]["test"]} for f, rs in by_frames.items()},
        "note": "2 shared CPU cores with other engineers' jobs, 1 pinned thread: seconds are indicative only; accuracies do not depend on load",
    }  # fmt: skip
    results.write_text(json.dumps(report, indent=1) + "\n")
    if args.table:
        Path(args.table).write_text(table(report))


if __name__ == "__main__":
    main()
