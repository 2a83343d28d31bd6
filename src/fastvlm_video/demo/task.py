"""The demo's video QA task: which way does the red square move? Only comparing frames answers it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .synthetic import DIRECTIONS, moving_square_frames, write_video

QUESTION = "Which direction does the red square move? Answer with one word: left, right, up or down."
# 8 uniformly sampled frames of a 15-frame clip are every 2nd frame, evenly spaced in time, and at
# 4 px per frame the 16 px square moves an eighth of the 64 px frame between them. Measured on the
# tiny model (docs/performance.md): uneven steps, a half-frame square, or quarter-frame jumps between
# sampled frames all make the direction's sign much slower to learn.
CLIP_FRAMES = 15
STEP_PX = 4


def motion_clip(direction: str, rng: np.random.Generator, size: int = 64, square: int = 16) -> np.ndarray:
    """One demo clip, (CLIP_FRAMES, size, size, 3) uint8: the square moves STEP_PX per frame, wrapping."""
    return moving_square_frames(direction, rng, CLIP_FRAMES, size, square, travel=STEP_PX * CLIP_FRAMES / size)


def make_motion_dataset(
    out_dir: str | Path,
    splits: dict[str, int] | None = None,
    seed: int = 0,
) -> dict[str, Path]:
    """Write clips under ``out_dir/videos`` and ``{split}.json`` files (LLaVA format, paths relative to ``out_dir``).

    Classes are balanced in every split. Returns the JSON path of each split.
    """
    out_dir = Path(out_dir)
    splits = splits or {"train": 320, "val": 40, "test": 80}
    rng = np.random.default_rng(seed)
    paths = {}
    total = sum(splits.values())
    with tqdm(total=total, desc="writing synthetic clips", unit="clip") as bar:
        for split, count in splits.items():
            records = []
            for i in range(count):
                direction = DIRECTIONS[i % len(DIRECTIONS)]
                rel = f"videos/{split}_{i:04d}_{direction}.mp4"
                write_video(out_dir / rel, motion_clip(direction, rng), fps=8, gop=8)
                records.append(
                    {
                        "id": f"{split}_{i:04d}",
                        "video": rel,
                        "conversations": [
                            {"from": "human", "value": f"<video>\n{QUESTION}"},
                            {"from": "gpt", "value": direction},
                        ],
                    }
                )
                bar.update()
            rng.shuffle(records)
            paths[split] = out_dir / f"{split}.json"
            paths[split].write_text(json.dumps(records, indent=1))
    return paths
