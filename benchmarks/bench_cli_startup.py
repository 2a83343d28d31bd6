"""Wall time of a mistyped flag: ``python -m fastvlm_video COMMAND --no_such_flag`` (median of N runs).

Usage: python benchmarks/bench_cli_startup.py [--runs 5] [--label before] [--out FILE.json] [COMMAND ...]
Runs from the repository it sits in (``PYTHONPATH=src``), one subprocess at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def time_command(command: str, runs: int) -> dict:
    """Seconds of each run of ``COMMAND --no_such_flag``, their median and the exit code."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    seconds, codes = [], set()
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "fastvlm_video", command, "--no_such_flag"], env=env,
                              capture_output=True, text=True, cwd=ROOT)
        seconds.append(round(time.perf_counter() - start, 3))
        codes.add(proc.returncode)
    return {"command": command, "runs_s": seconds, "median_s": statistics.median(seconds), "exit_codes": sorted(codes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("commands", nargs="*", default=["train", "budget", "cache", "check", "clean", "frames", "predict"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--label", default="")
    parser.add_argument("--out", help="write the results as JSON here too")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    results = [time_command(c, args.runs) for c in args.commands]
    for r in results:
        print(f"{r['command']:>10}  median {r['median_s']:.3f}s  runs {r['runs_s']}  exit {r['exit_codes']}")
    if args.out:
        report = {"label": args.label, "commit": commit, "python": sys.version.split()[0], "runs": args.runs, "results": results}
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
