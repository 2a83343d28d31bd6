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
# Held-out splits never replay training content. A clip moves STEP_PX px per frame along one axis, so
# every frame of it keeps its start's phase (x mod STEP_PX, y mod STEP_PX), and so does every shift of
# it in time and every clip on the same line. Each split draws its positions from its own phases:
# no frame of a validation or test clip (or still) shows the square where any training frame does.
# Each held-out phase pair shares its parity (x mod 2, y mod 2) with two training pairs, so training
# covers every alignment to the tower's stride-2 stages. Any split name not ending in "val" or "test"
# (train, images, a post-training split...) draws from the training phases.
HELD_OUT_PHASES = {"val": ((1, 3), (3, 1)), "test": ((0, 2), (2, 0))}
TRAIN_PHASES = tuple(
    (x, y) for y in range(STEP_PX) for x in range(STEP_PX) if all((x, y) not in p for p in HELD_OUT_PHASES.values())
)


def demo_tokenizer() -> PreTrainedTokenizerFast:
    """The tiny tokenizer, trained on the demo's questions so that each direction is one token."""
    return build_tiny_tokenizer([QUESTION, WHERE_QUESTION, *DIRECTIONS * 20])


def where_answer(x: int, y: int, size: int = 64) -> str:
    """The grid cell (column, row; 0-7) of the square's top-left corner, e.g. ``"5 2"``."""
    return f"{x * 8 // size} {y * 8 // size}"


def split_phases(split: str) -> tuple[tuple[int, int], ...]:
    """The (x mod STEP_PX, y mod STEP_PX) phases a split's square positions come from (see HELD_OUT_PHASES)."""
    for held_out, phases in HELD_OUT_PHASES.items():
        if split.endswith(held_out):
            return phases
    return TRAIN_PHASES


def random_start(split: str, rng: np.random.Generator, size: int = 64) -> tuple[int, int]:
    """A square position drawn uniformly from ``split``'s phases: (x, y) of its top-left corner."""
    phases = split_phases(split)
    px, py = phases[int(rng.integers(len(phases)))]
    cx, cy = (int(v) for v in rng.integers(0, size // STEP_PX, size=2))
    return cx * STEP_PX + px, cy * STEP_PX + py


def motion_clip(
    direction: str,
    rng: np.random.Generator,
    size: int = 64,
    square: int = 16,
    start: tuple[int, int] | None = None,
) -> np.ndarray:
    """One demo clip, (CLIP_FRAMES, size, size, 3) uint8: the square moves STEP_PX per frame, wrapping.

    It starts at ``start`` (e.g. ``random_start(split, rng)``), or anywhere at random from ``rng``.
    """
    travel = STEP_PX * CLIP_FRAMES / size
    return moving_square_frames(direction, rng, CLIP_FRAMES, size, square, travel=travel, start=start)


def make_motion_dataset(
    out_dir: str | Path,
    splits: dict[str, int] | None = None,
    seed: int = 0,
) -> dict[str, Path]:
    """Write clips under ``out_dir/videos`` and ``{split}.json`` files (LLaVA format, paths relative to ``out_dir``).

    Classes are balanced in every split, and each split's clips start at its own phases
    (``split_phases``): held-out clips share no frame with training clips. Returns the JSON path of each split.
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
                clip = motion_clip(direction, rng, start=random_start(split, rng))
                write_video(out_dir / rel, clip, fps=8, gop=8)
                records.append(_qa_record(f"{split}_{i:04d}", "video", rel, QUESTION, direction))
                bar.update()
            rng.shuffle(records)
            paths[split] = _write_split(out_dir, split, records)
    return paths


def make_position_dataset(out_dir: str | Path, splits: dict[str, int], seed: int = 0) -> dict[str, Path]:
    """Write still PNG frames under ``out_dir/images`` and ``{split}.json`` files asking where the square is.

    Positions are uniform over the split's phases (``split_phases``: "images" trains, so it never
    shows the square where a validation or test clip does); the square wraps around the edges, as in
    the clips. Returns the JSON path of each split.
    """
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed + 1)  # not the clips' stream
    paths = {}
    with tqdm(total=sum(splits.values()), desc="writing still images", unit="image") as bar:
        for split, count in splits.items():
            records = []
            for i in range(count):
                x, y = random_start(split, rng)
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
