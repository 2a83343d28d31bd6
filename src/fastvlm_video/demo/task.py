"""The demo's tasks: where is the red square (still images), and which way does it move (videos)?

The video question is the one the demo measures: only comparing frames answers it. The image
question comes first, as FastVLM's own image pre-training does: a random tower cannot learn *where*
the square is from the motion answers alone in a CPU budget, but learns it from still frames in a
few hundred steps; fine-tuning on video then only has to learn to compare frames.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm
from transformers import PreTrainedTokenizerFast

from ..model.tiny import build_tiny_tokenizer
from .synthetic import DIRECTIONS, moving_square_frames, square_frame, write_video

QUESTION = "Which direction does the red square move? Answer with one word: left, right, up or down."
WHERE_QUESTION = "Where is the red square? Answer with its column and row on an 8 by 8 grid."
# 8 uniformly sampled frames of a 15-frame clip are every 2nd frame, evenly spaced in time, and at
# 4 px per frame the 16 px square moves an eighth of the 64 px frame between them. Measured on the
# tiny model (docs/performance.md): uneven steps, a half-frame square, or quarter-frame jumps between
# sampled frames all make the direction's sign much slower to learn.
CLIP_FRAMES = 15
STEP_PX = 4


def demo_tokenizer() -> PreTrainedTokenizerFast:
    """The tiny tokenizer, trained on the demo's questions so that each direction is one token."""
    return build_tiny_tokenizer([QUESTION, WHERE_QUESTION, *DIRECTIONS * 20])


def where_answer(x: int, y: int, size: int = 64) -> str:
    """The grid cell (column, row; 0-7) of the square's top-left corner, e.g. ``"5 2"``."""
    return f"{x * 8 // size} {y * 8 // size}"


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
    with tqdm(total=sum(splits.values()), desc="writing synthetic clips", unit="clip") as bar:
        for split, count in splits.items():
            records = []
            for i in range(count):
                direction = DIRECTIONS[i % len(DIRECTIONS)]
                rel = f"videos/{split}_{i:04d}_{direction}.mp4"
                write_video(out_dir / rel, motion_clip(direction, rng), fps=8, gop=8)
                records.append(_qa_record(f"{split}_{i:04d}", "video", rel, QUESTION, direction))
                bar.update()
            rng.shuffle(records)
            paths[split] = _write_split(out_dir, split, records)
    return paths


def make_position_dataset(out_dir: str | Path, splits: dict[str, int], seed: int = 0) -> dict[str, Path]:
    """Write still PNG frames under ``out_dir/images`` and ``{split}.json`` files asking where the square is.

    Positions are uniform over the frame (the square wraps around the edges, as in the clips).
    Returns the JSON path of each split.
    """
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed + 1)  # not the clips' stream
    paths = {}
    with tqdm(total=sum(splits.values()), desc="writing still images", unit="image") as bar:
        for split, count in splits.items():
            records = []
            for i in range(count):
                x, y = (int(v) for v in rng.integers(0, 64, size=2))
                rel = f"images/{split}_{i:04d}.png"
                (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(square_frame(x, y)).save(out_dir / rel)
                records.append(_qa_record(f"{split}_{i:04d}", "image", rel, WHERE_QUESTION, where_answer(x, y)))
                bar.update()
            paths[split] = _write_split(out_dir, split, records)
    return paths


def _qa_record(record_id: str, media_key: str, rel_path: str, question: str, answer: str) -> dict:
    """One LLaVA-format record: the media placeholder, the question, the answer."""
    placeholder = f"<{media_key}>"
    return {
        "id": record_id,
        media_key: rel_path,
        "conversations": [{"from": "human", "value": f"{placeholder}\n{question}"}, {"from": "gpt", "value": answer}],
    }


def _write_split(out_dir: Path, split: str, records: list[dict]) -> Path:
    path = out_dir / f"{split}.json"
    path.write_text(json.dumps(records, indent=1))
    return path
