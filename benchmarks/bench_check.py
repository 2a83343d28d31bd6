"""How long `fastvlm-video check` takes on many short videos, in parallel, with its progress bar.

    .venv/bin/python benchmarks/bench_check.py --num_videos 1000 --workers 2

Clips (H.264, a panning texture, ``--seconds`` long at ``--fps``) are generated once into
``--clips`` (outside the repo) and reused. The check opens every video, samples and decodes
``--num_video_frames`` frames with training's sampler, and gathers duration/fps/resolution/codec;
``--model DIR`` adds token counting. Prints one JSON line with the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from fastvlm_video.data.check import run_check
from fastvlm_video.data.parallel import default_workers
from fastvlm_video.data.settings import chat_encoder
from fastvlm_video.demo.synthetic import write_video
from fastvlm_video.video_config import VideoConfig


def make_clips(folder: Path, count: int, seconds: float, fps: int, width: int, height: int) -> list[str]:
    """``count`` short clips (generated once, cached), as paths relative to ``folder``."""
    names = [f"clip_{i:05d}_{width}x{height}_{seconds:g}s.mp4" for i in range(count)]
    missing = [i for i, n in enumerate(names) if not (folder / n).is_file()]
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(height // 8 + 1, 2 * width // 8 + 1, 3), dtype=np.uint8)
    texture = np.kron(base, np.ones((8, 8, 1), np.uint8))[:height, : 2 * width]
    num_frames = max(1, int(seconds * fps))
    for done, i in enumerate(missing):
        shift = i % width
        frames = np.stack([texture[:, (shift + 2 * t) % width : (shift + 2 * t) % width + width] for t in range(num_frames)])
        write_video(folder / names[i], frames, fps=fps, gop=fps)
        if done % 100 == 0:
            print(f"generating clips: {done}/{len(missing)}", flush=True)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_videos", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--num_video_frames", type=int, default=8)
    parser.add_argument("--model", help="checkpoint or tokenizer directory: also count tokens")
    parser.add_argument("--clips", default=os.environ.get("FASTVLM_CHECK_CLIPS", "/tmp/fastvlm_check_bench"))
    args = parser.parse_args()

    folder = Path(args.clips)
    names = make_clips(folder, args.num_videos, args.seconds, args.fps, args.width, args.height)
    data = folder / f"data_{args.num_videos}.json"
    records = [
        {"id": f"r{i}", "video": n, "conversations": [{"from": "human", "value": "<video>\nWhat happens?"}, {"from": "gpt", "value": "It pans."}]}
        for i, n in enumerate(names)
    ]
    data.write_text(json.dumps(records))
    video = VideoConfig(num_frames=args.num_video_frames)
    encoder = chat_encoder(args.model, video)
    started = time.perf_counter()
    report = run_check([data], folder, video, encoder=encoder, workers=args.workers)
    seconds = time.perf_counter() - started
    result = {
        "videos": args.num_videos,
        "clip": f"{args.width}x{args.height}, {args.seconds:g} s at {args.fps} fps, H.264",
        "frames_per_video": args.num_video_frames,
        "workers": args.workers,
        "cpu_cores": os.cpu_count(),
        "seconds": round(seconds, 1),
        "videos_per_second": round(args.num_videos / seconds, 1),
        "errors": len(report.errors),
        "machine": platform.processor() or platform.machine(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
