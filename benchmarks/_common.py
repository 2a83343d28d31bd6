"""Benchmark helpers: generated "real-looking" clips (cached outside the repo), timing and memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np

CLIP_CACHE = Path(os.environ.get("FASTVLM_BENCH_CLIPS", "/tmp/fastvlm_bench_clips"))
RESOLUTIONS = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}


def _texture(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth colour blobs with some detail, twice the frame size so it can pan without wrapping."""
    from PIL import Image

    coarse = rng.integers(0, 256, size=(height // 24 + 2, width // 24 + 2, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((2 * width, 2 * height), Image.Resampling.BICUBIC))
    detail = rng.integers(0, 32, size=smooth.shape, dtype=np.uint8)
    return (smooth // 4 * 3 + detail).astype(np.uint8)  # <= 223, room for the noise


def _sensor_noise(width: int, height: int, rng: np.random.Generator, count: int = 16) -> list[np.ndarray]:
    """A few frames of temporal noise (cycled), as a camera sensor adds to every frame."""
    return [rng.integers(0, 20, size=(height, width, 3), dtype=np.uint8) for _ in range(count)]


def clip_path(seconds: int, resolution: str, gop: int, fps: int = 30) -> Path:
    """Where the cached clip for these settings lives (``gop=0``: a single keyframe)."""
    return CLIP_CACHE / f"v2_{seconds}s_{resolution}_gop{gop or 'single'}_{fps}fps.mp4"


def make_clip(seconds: int, resolution: str, gop: int, fps: int = 30) -> Path:
    """Encode (once, cached) an H.264 clip: a panning texture, a moving block and sensor noise.

    x264 ``superfast`` keeps B-frames like real encodes; ``gop=0`` gives one keyframe for the
    whole clip (as many phone and screen recordings have).
    """
    path = clip_path(seconds, resolution, gop, fps)
    if path.exists():
        return path
    width, height = RESOLUTIONS[resolution]
    num = seconds * fps
    rng = np.random.default_rng(0)
    texture, noise = _texture(width, height, rng), _sensor_noise(width, height, rng)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    keyint = gop or num + 1
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.gop_size = keyint
        stream.options = {"preset": "superfast", "crf": "23", "keyint_min": str(keyint), "sc_threshold": "0"}
        for t in range(num):
            y, x = (3 * t) % height, (5 * t) % width
            frame = texture[y : y + height, x : x + width] + noise[t % len(noise)]
            by, bx = (7 * t) % (height - 64), (11 * t) % (width - 64)
            frame[by : by + 64, bx : bx + 64] = (255, 255, 255)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.rename(path)
    return path


def emit(lines: list[str], markdown: Path | None) -> int:
    """Print a benchmark's table and, when asked, write it to ``markdown``; the script's exit code."""
    text = "\n".join(lines)
    print(text)
    if markdown:
        markdown.write_text(text + "\n")
    return 0


@contextmanager
def busy_neighbours(count: int) -> Iterator[list[int]]:
    """``count`` CPU-bound Python loops outside this process tree (like another user's job: not counted
    as ours by ``train/threads.py``), killed on exit. Yields their pids."""
    loop = f'"{sys.executable}" -c "while True: pass" >/dev/null 2>&1 & echo $!'
    pids = [int(subprocess.run(["sh", "-c", loop], capture_output=True, text=True, check=True).stdout) for _ in range(count)]
    try:
        yield pids
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
