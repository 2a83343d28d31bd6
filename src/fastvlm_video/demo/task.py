"""The demo's video QA task: which way does the red square move? Only comparing frames answers it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .synthetic import DIRECTIONS, moving_square_frames, write_video

QUESTION = "Which direction does the red square move? Answer with one word: left, right, up or down."


def make_motion_dataset(
    out_dir: str | Path,
    splits: dict[str, int] | None = None,
    frames_per_clip: int = 16,
    size: int = 64,
    square: int = 32,
    travel: float = 1.0,
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
                write_video(out_dir / rel, moving_square_frames(direction, rng, frames_per_clip, size, square, travel), fps=8, gop=8)
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
