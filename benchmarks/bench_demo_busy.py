"""The whole demo on a quiet machine, then beside one CPU-bound process (issue 12: within 2x).

    .venv/bin/python benchmarks/bench_demo_busy.py --out /tmp/demo_busy [--markdown table.md]

Each run is `fastvlm-video demo --out OUT/<run>` from scratch (clips written, both stages trained,
test set evaluated), as `make demo` on a fresh clone. The neighbour is a Python busy loop outside the
demo's process tree, started after the quiet run. `--pinned 2` adds a run beside the neighbour with
torch pinned to 2 threads (the demo before threads followed the free cores). Prints a Markdown
table: wall time, test accuracy, final eval loss and the thread changes the runs logged.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import busy_neighbours, emit  # noqa: E402


def run_demo(out: Path, *extra: str) -> dict:
    """One demo in a fresh folder: wall seconds, metrics.json and the thread changes logged."""
    command = [sys.executable, "-m", "fastvlm_video.cli", "demo", "--out", str(out), *extra]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    changes = re.findall(r"torch threads (\d -> \d)", done.stderr)
    return {"seconds": seconds, "metrics": json.loads((out / "metrics.json").read_text()), "threads": changes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/fastvlm_demo_busy"))
    parser.add_argument("--pinned", type=int, default=0, help="also run beside the neighbour with this many threads pinned")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()

    runs = {"quiet": run_demo(args.out / "quiet")}
    with busy_neighbours(1):
        time.sleep(2)
        runs["beside 1 busy process"] = run_demo(args.out / "busy")
        if args.pinned:
            runs[f"beside 1 busy process, --cpu_threads {args.pinned}"] = run_demo(args.out / "pinned", "--cpu_threads", str(args.pinned))

    quiet = runs["quiet"]["seconds"]
    lines = [
        f"# `fastvlm-video demo`, {len(os.sched_getaffinity(0))} cores, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}",
        "| run | whole demo | vs quiet | test accuracy | video eval loss | thread changes logged |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, run in runs.items():
        m = run["metrics"]
        minutes, secs = divmod(round(run["seconds"]), 60)
        lines.append(f"| {name} | {minutes} min {secs} s | {run['seconds'] / quiet:.2f}x | {m['test_accuracy']} | "
                     f"{m['eval_loss']} | {', '.join(run['threads']) or 'none'} |")  # fmt: skip
    return emit(lines, args.markdown)


if __name__ == "__main__":
    raise SystemExit(main())
