"""One GRPO setting from the post-training demo's weak start: accuracy on the validation and test clips.

Run after ``fastvlm-video demo --post grpo --out runs/post0 --cpu_threads 1`` (which makes ``runs/post0/sft``
and the default setting's ``runs/post0/grpo``); each call trains ``runs/post0/try/NAME/grpo`` with the
demo's GRPO stage and the given options, and prints a RESULT line (stored in
benchmarks/results/grpo_settings.txt). Settings are compared on validation only.

    .venv/bin/python benchmarks/grpo_settings.py t2 '{"temperature": 2.0}'
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from fastvlm_video.demo.grpo_stage import run_grpo_stage
from fastvlm_video.demo.post import PostContext, accuracy


def main() -> None:
    root = Path("runs/post0")
    name, options = sys.argv[1], json.loads(sys.argv[2])
    ctx = PostContext(root / "try" / name, root / "data", root / "sft", 8, 0, 1, options)
    started = time.time()
    run_grpo_stage(ctx)
    scores = {split: accuracy(ctx.out / "grpo", root / "data", split, ctx.out / "eval" / split) for split in ("val", "test")}
    print("RESULT", name, options, scores, f"{time.time() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
