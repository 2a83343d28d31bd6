"""A contact sheet: the sampled frames of a video side by side, each labelled with its timestamp."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

from .video import load_video_tensor


def contact_sheet(frames: list[Image.Image], labels: list[str], columns: int = 4, thumb: int = 256) -> Image.Image:
    """Tile ``frames`` (scaled to ``thumb`` px wide) in a grid with a caption under each."""
    columns = max(1, min(columns, len(frames)))
    rows = math.ceil(len(frames) / columns)
    thumbs = [f.copy() for f in frames]
    for t in thumbs:
        t.thumbnail((thumb, thumb))
    cell_h = max(t.height for t in thumbs) + 22
    sheet = Image.new("RGB", (columns * (thumb + 8) + 8, rows * cell_h + 8), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for i, (t, label) in enumerate(zip(thumbs, labels)):
        x, y = 8 + (i % columns) * (thumb + 8), 8 + (i // columns) * cell_h
        sheet.paste(t, (x, y))
        draw.text((x, y + t.height + 4), label, fill=(230, 230, 230))
    return sheet


def save_contact_sheet(video: str | Path, out: str | Path, num_frames: int = 8, frame_sampling: str = "uniform", backend: str = "auto", **kwargs) -> Path:
    """Sample frames exactly as training does and save them as one PNG with timestamps."""
    clip = load_video_tensor(video, num_frames=num_frames, image_size=None, frame_sampling=frame_sampling, backend=backend, **kwargs)
    frames = [Image.fromarray(f.numpy()) for f in clip.frames]
    labels = [f"#{i}  {ts:.2f}s" for i, ts in zip(clip.indices, clip.timestamps)]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(frames, labels).save(out)
    return out
