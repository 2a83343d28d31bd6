"""DPO on the demo's motion task: held-out accuracy of the weak SFT start and after DPO, per setting and seed.

    python benchmarks/post_training_demo.py --out runs/post --configs base,rpo --seeds 0 [--frames 8]

Needs ``OUT`` from ``fastvlm-video demo --post dpo --out OUT`` (its image stage and ``OUT/sft`` start are
reused). Each config trains ``OUT/dpo_<config>_s<seed>`` from ``OUT/sft`` and is evaluated on validation
(used to choose the setting) and test (reported). Appends one JSON line per run to
benchmarks/results/post_training_demo.jsonl. The machine is shared: times are noisy, accuracies are not.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from fastvlm_video.demo.dpo_stage import run_dpo_stage
from fastvlm_video.demo.post import PostContext, accuracy

CONFIGS = {
    "base": {"learning_rate": 1e-3, "beta": 0.1, "rpo_alpha": 0.0},
    "lowlr": {"learning_rate": 2e-4, "beta": 0.1, "rpo_alpha": 0.0},
    "rpo": {"learning_rate": 1e-3, "beta": 0.1, "rpo_alpha": 1.0},
    "ipo": {"learning_rate": 1e-3, "beta": 0.1, "rpo_alpha": 1.0, "loss_type": "ipo"},
    "long": {"learning_rate": 1e-3, "beta": 0.1, "rpo_alpha": 1.0, "steps": 400},
    "hilr": {"learning_rate": 3e-3, "beta": 0.1, "rpo_alpha": 1.0},
}
RESULTS = Path(__file__).parent / "results" / "post_training_demo.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--configs", default="base,rpo")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--cpu_threads", type=int, default=1)
    args = parser.parse_args()
    out = Path(args.out)
    RESULTS.parent.mkdir(exist_ok=True)
    for seed in map(int, args.seeds.split(",")):
        for name in args.configs.split(","):
            options = {**CONFIGS[name], "output": f"dpo_{name}_s{seed}"}
            ctx = PostContext(out, out / "data", out / "sft", args.frames, seed, args.cpu_threads, options)
            started = time.perf_counter()
            checkpoint = run_dpo_stage(ctx)
            row = {"config": name, "seed": seed, "frames": args.frames, **CONFIGS[name],
                   "dpo_seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
            for split in ("val", "test"):
                row[f"dpo_{split}"] = accuracy(checkpoint, out / "data", split, out / "eval" / f"{checkpoint.name}_{split}")
            metrics = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").is_file() else {}
            row["sft_val"], row["sft_test"] = metrics.get("val_accuracy", {}).get("sft"), metrics.get("test_accuracy", {}).get("sft")
            print(json.dumps(row))
            with RESULTS.open("a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
