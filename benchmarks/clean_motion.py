"""`clean`'s motion measure on synthetic tripod shots: whole-frame mean (before) vs busiest tile (now).

    .venv/bin/python benchmarks/clean_motion.py

Clips (640 x 360, 48 frames at 24 fps, H.264) are a still textured scene, with or without Gaussian
noise, and with or without a "person" covering 10% of the frame swaying a few pixels per frame.
Eight frames are sampled as `clean` samples them; prints, per clip, the share of frame pairs each
measure counts as moving at the default threshold (2.0 grey levels).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from fastvlm_video.data.clean import Thresholds, grey_frames, motion_share
from fastvlm_video.demo.synthetic import write_video
from fastvlm_video.media.video import load_video_tensor

WIDTH, HEIGHT, FRAMES = 640, 360, 48


def scene_clip(rng: np.random.Generator, noise: float, person: bool) -> np.ndarray:
    coarse = rng.integers(0, 256, size=(HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8)
    scene = np.asarray(Image.fromarray(coarse).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)).astype(np.float32)
    frames = []
    for t in range(FRAMES):
        frame = scene.copy()
        if person:  # 120 x 190 px = 10% of the frame, swaying up to 20 px
            x = 260 + int(20 * np.sin(t / 4))
            frame[100:290, x : x + 120] = frame[100:290, x : x + 120] * 0.4 + 120
        if noise:
            frame += rng.normal(0, noise, frame.shape)
        frames.append(frame.clip(0, 255).astype(np.uint8))
    return np.stack(frames)


def main() -> None:
    threshold = Thresholds().motion_threshold
    folder = Path(tempfile.mkdtemp())
    for name, noise, person in [("still", 0, False), ("still, noise 2", 2, False), ("still, noise 4", 4, False), ("person", 0, True), ("person, noise 2", 2, True)]:
        path = write_video(folder / "clip.mp4", scene_clip(np.random.default_rng(0), noise, person), fps=24, gop=48)
        clip = load_video_tensor(path, num_frames=8, image_size=None)
        grey = grey_frames(clip.frames.numpy())
        whole = float((np.abs(np.diff(grey, axis=0)).mean(axis=(1, 2)) > threshold).mean())
        print(f"{name:16s} whole-frame mean: {whole:4.0%} of pairs move   busiest tile: {motion_share(grey, clip.indices, threshold):4.0%}")


if __name__ == "__main__":
    main()
