"""Training step time of the demo's model with 1 vs 2 torch threads, alone and beside CPU-bound processes.

    .venv/bin/python benchmarks/bench_threads.py --steps 8 --busy 0 1

One step = forward + backward + AdamW of the demo model (tiny FastViTHD tower trained, Qwen2 with
hidden 128) on a batch of 8 samples x 8 frames at 64 px, as ``make demo``'s video stage. A "busy"
process is a Python busy loop outside this process tree, started by this script (and stopped after its
rows). Prints a Markdown table of median step times with the other processes' load measured over 1 s
before each row, and what ``fastvlm_video.train.threads`` picks from it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from fastvlm_video.constants import IGNORE_INDEX
from fastvlm_video.demo.run import DEMO_IMAGE_SIZE, DEMO_TEXT_HIDDEN, VIDEO_BATCH
from fastvlm_video.demo.task import demo_tokenizer
from fastvlm_video.model.tiny import build_tiny_model
from fastvlm_video.train.threads import choose_threads, others_load, sample_cpu

from _common import busy_neighbours


def demo_batch(tokenizer, frames: int) -> dict:
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    text = 40
    ids = torch.randint(10, len(tokenizer) - 10, (VIDEO_BATCH, text + frames))
    ids[:, 10 : 10 + frames] = image_id
    labels = ids.clone()
    labels[:, : text + frames - 4] = IGNORE_INDEX
    pixels = torch.rand(VIDEO_BATCH * frames, 3, DEMO_IMAGE_SIZE, DEMO_IMAGE_SIZE)
    return {"input_ids": ids, "labels": labels, "pixel_values": pixels, "attention_mask": torch.ones_like(ids)}


def step_times(model, optimizer, batch: dict, steps: int) -> list[float]:
    times = []
    for _ in range(steps + 2):
        start = time.perf_counter()
        model(**batch, use_cache=False).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return times[2:]  # two warm-up steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1], help="numbers of competing busy processes")
    args = parser.parse_args()

    tokenizer = demo_tokenizer()
    model = build_tiny_model(tokenizer, text_hidden_size=DEMO_TEXT_HIDDEN).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = demo_batch(tokenizer, args.frames)
    params = sum(p.numel() for p in model.parameters())
    rows = []
    for busy in args.busy:
        with busy_neighbours(busy):
            for threads in args.threads:
                before = sample_cpu()
                time.sleep(1)
                load = others_load(before, sample_cpu())
                picked = choose_threads(load)
                torch.set_num_threads(threads)
                times = step_times(model, optimizer, batch, args.steps)
                rows.append((busy, threads, load, picked, statistics.median(times), max(times)))

    print(f"# demo model ({params / 1e6:.1f} M params), batch {VIDEO_BATCH} x {args.frames} frames at {DEMO_IMAGE_SIZE} px, "
          f"{os.cpu_count()} cores, torch {torch.__version__}; median of {args.steps} steps")  # fmt: skip
    print("| busy processes | torch threads | other processes' load (cores) | threads.py picks | median step ms | worst step ms |")
    print("|---:|---:|---:|---:|---:|---:|")
    for busy, threads, load, picked, median, worst in rows:
        print(f"| {busy} | {threads} | {load:.1f} | {picked} | {median * 1000:.0f} | {worst * 1000:.0f} |")


if __name__ == "__main__":
    main()
