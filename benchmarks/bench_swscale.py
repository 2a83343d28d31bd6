"""One swscale context per clip vs PyAV's ``frame.to_ndarray(width=, height=)`` (a new context per frame).

Decodes a clip once, then converts its frames to RGB at the training size both ways, alternating
the two within each repeat; prints medians per frame and the ratio.

    .venv/bin/python benchmarks/bench_swscale.py            # a 64 px demo-sized clip and a 720p clip
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

sys.path.insert(0, str(Path(__file__).parent))
from _common import make_clip  # noqa: E402

from fastvlm_video.demo.synthetic import moving_square_frames, write_video  # noqa: E402


def decoded(path: Path, count: int) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame)
            if len(frames) == count:
                return frames
    return frames


def per_frame_ms(frames: list[av.VideoFrame], size: int, shared: bool) -> float:
    reformatter = VideoReformatter()
    started = time.perf_counter()
    for frame in frames:
        if shared:
            reformatter.reformat(frame, width=size, height=size, format="rgb24", interpolation="BICUBIC").to_ndarray()
        else:
            frame.to_ndarray(width=size, height=size, format="rgb24", interpolation="BICUBIC")
    return (time.perf_counter() - started) * 1e3 / len(frames)


def main(repeats: int = 7) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        small = write_video(Path(tmp) / "demo.mp4", moving_square_frames("left", np.random.default_rng(0), 15, 64, 16), fps=8)
        cases = [("64x64 demo clip -> 64 px", small, 64), ("720p clip -> 1024 px", make_clip(10, "720p", 250), 1024)]
        print(f"PyAV {av.__version__}; median ms per frame over {repeats} repeats (fresh frames each time)")
        print("| clip -> size | frame.to_ndarray | shared reformatter | speed-up |\n|---|---:|---:|---:|")
        for name, path, size in cases:
            times = {False: [], True: []}
            for _ in range(repeats):
                for shared in (False, True):  # fresh frames: a frame caches its own context after first use
                    times[shared].append(per_frame_ms(decoded(path, 8), size, shared))
            old, new = statistics.median(times[False]), statistics.median(times[True])
            print(f"| {name} | {old:.3f} | {new:.3f} | {old / new:.1f}x |")


if __name__ == "__main__":
    main()
