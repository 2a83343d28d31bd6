"""Thumbnail strips of the frames a model saw, saved beside the predictions and embedded in reports."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import torch
from PIL import Image

THUMB = 96  # px, the side of one square frame in a strip
GAP = 2  # px of white between frames


def frame_strip(pixel_values: torch.Tensor, size: int = THUMB) -> Image.Image:
    """(T, 3, S, S) uint8 frames -> one RGB image with the T frames side by side, ``size`` px each."""
    frames = pixel_values.detach().to("cpu", torch.uint8).permute(0, 2, 3, 1).numpy()
    strip = Image.new("RGB", ((size + GAP) * len(frames) - GAP, size), "white")
    for i, frame in enumerate(frames):
        strip.paste(Image.fromarray(frame).resize((size, size), Image.Resampling.BILINEAR), (i * (size + GAP), 0))
    return strip


def file_name(sample_id: str) -> str:
    """A safe, unique file name for a sample id: readable prefix + short hash."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", sample_id)[:60]
    return f"{stem}-{hashlib.sha1(sample_id.encode()).hexdigest()[:8]}.jpg"


def save_strip(pixel_values: torch.Tensor, folder: Path, sample_id: str) -> str:
    """Save the strip as JPEG under ``folder``; returns the file name."""
    folder.mkdir(parents=True, exist_ok=True)
    name = file_name(sample_id)
    frame_strip(pixel_values).save(folder / name, quality=80)
    return name


def data_uri(path: str | Path, mime: str | None = None) -> str:
    """A file as a ``data:`` URI, for self-contained HTML."""
    path = Path(path)
    mime = mime or {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}[path.suffix.lower()]
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"
