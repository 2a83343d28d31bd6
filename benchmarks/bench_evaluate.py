"""Evaluation throughput: batch 1 vs batch 8, with and without decoding ahead, generation and ``--score choices``.

Needs the demo's model and test set (``fastvlm-video demo --out runs/demo``, a few minutes):

    python benchmarks/bench_evaluate.py --out benchmarks/results/bench_evaluate.json
    python benchmarks/bench_evaluate.py --repeats 2 --modes choices          # quicker

Times ``predict_batches`` over the test clips (decode, tower, LLM; what ``--batch_size`` and
``--decode_threads`` change; the report and metrics files after it are the same for every setting)
for each setting, interleaved (A B C D, A B C D, ...) so a neighbour's load falls on all of them alike,
and reports medians and the speed-up of each over batch 1 with the same decode setting. Each setting's
predictions (and choice scores) are checked against batch 1's. ``--threads`` pins torch's threads
(default 1: the second core decodes ahead).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

os.environ.setdefault("TQDM_DISABLE", "1")  # the table, not 24 progress bars
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from fastvlm_video.data.records import load_samples  # noqa: E402
from fastvlm_video.infer.benchmarks import class_specs  # noqa: E402
from fastvlm_video.infer.evaluate import predict_batches  # noqa: E402
from fastvlm_video.infer.predictor import Predictor  # noqa: E402

TOL = 1e-4  # choice log-probs: padding changes float32 summation order only (tests/test_evaluate_scale.py)


def run_once(predictor, samples, specs, batch_size: int, decode_threads: int, score: str, max_new_tokens: int) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    rows = [row for batch in predict_batches(predictor, samples, batch_size, max_new_tokens, specs=specs, score=score,
                                                       decode_threads=decode_threads)
            for row in batch]  # fmt: skip
    return time.perf_counter() - start, rows


def same(rows: list[dict], reference: list[dict]) -> bool:
    """Identical predictions; choice log-probs within ``TOL``."""
    for a, b in zip(rows, reference, strict=True):
        if a.get("prediction") != b.get("prediction"):
            return False
        if "choice_scores" in a:
            la = [v["logprob"] for v in a["choice_scores"].values()]
            lb = [v["logprob"] for v in b["choice_scores"].values()]
            if max(abs(x - y) for x, y in zip(la, lb)) > TOL:
                return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="runs/demo/model")
    parser.add_argument("--data", default="runs/demo/data/test.json")
    parser.add_argument("--media_folder", default="runs/demo/data")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--decode_threads", type=int, nargs="+", default=[0, 1], help="0: decode in the main thread (before)")
    parser.add_argument("--modes", nargs="+", default=["generate", "choices"], choices=["generate", "choices"])
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--max_new_tokens", type=int, default=32)
    parser.add_argument("--out", help="write the results here (JSON)")
    args = parser.parse_args()
    if not Path(args.model).is_dir():
        sys.exit(f"{args.model} not found: run `fastvlm-video demo --out runs/demo` first (a few minutes)")
    torch.set_num_threads(args.threads)
    predictor = Predictor.from_pretrained(args.model, device="cpu")
    samples, _ = load_samples(args.data, args.media_folder)
    specs = class_specs(samples)
    if not specs:  # the demo's records have no 'class': its four answers are the label set
        from fastvlm_video.infer.choices import ChoiceSpec

        labels = sorted({s.messages[-1].content for s in samples})
        specs = {s.id: ChoiceSpec(labels, labels.index(s.messages[-1].content), lettered=False) for s in samples}
    settings = [(mode, b, d) for mode in args.modes for d in args.decode_threads for b in args.batch_sizes]
    times: dict[tuple, list[float]] = {s: [] for s in settings}
    rows: dict[tuple, list[dict]] = {}
    run_once(predictor, samples[:8], specs, 8, 0, "generate", args.max_new_tokens)  # warm-up
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        for setting in settings:
            mode, b, d = setting
            seconds, rows[setting] = run_once(predictor, samples, specs, b, d, mode, args.max_new_tokens)
            times[setting].append(seconds)
    results = []
    for mode, b, d in settings:
        base = statistics.median(times[(mode, args.batch_sizes[0], d)])
        median = statistics.median(times[(mode, b, d)])
        reference = rows[(mode, args.batch_sizes[0], args.decode_threads[0])]
        results.append({"mode": mode, "batch_size": b, "decode_threads": d, "median_s": round(median, 3),
                        "runs_s": [round(t, 3) for t in times[(mode, b, d)]], "speedup_vs_batch1": round(base / median, 2),
                        "equal_to_batch1": same(rows[(mode, b, d)], reference)})  # fmt: skip
    report = {
        "what": f"predict_batches over {len(samples)} clips of {args.data} ({args.model}); medians of {args.repeats} "
                "interleaved runs per setting",  # fmt: skip
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {args.threads} torch thread(s)",
        "load_average_before_after": [round(x, 1) for x in load_before + os.getloadavg()],
        "note": "measured on a shared machine beside other engineers' jobs (load average above): ratios within this run "
                "hold, absolute seconds do not",  # fmt: skip
        "results": results,
    }
    print(f"{report['what']}\n{report['machine']}\nload average (1/5/15 min) before, after: {report['load_average_before_after']}")
    print(report["note"])
    print(f"\n| mode | batch | decode threads | median s | speed-up vs batch 1 | equal to batch 1 |\n|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['mode']} | {r['batch_size']} | {r['decode_threads']} | {r['median_s']} | {r['speedup_vs_batch1']}x | {r['equal_to_batch1']} |")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
