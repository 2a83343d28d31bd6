"""A contact sheet: frames side by side, each labelled (its number and timestamp for a video).

Frames smaller than a tile are enlarged by a whole factor with nearest-neighbour sampling, so every
pixel the model gets shows as a block of identical pixels (a 64 px frame at ``thumb=256``: 4 x 4
blocks); larger frames are shrunk to the tile.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw

CAPTION_H = 22
GAP = 8


def tile(frame: Image.Image, thumb: int) -> Image.Image:
    """``frame`` fitted to ``thumb`` px: enlarged by a whole factor (nearest) when smaller, shrunk (bicubic) when larger."""
    factor = thumb // max(frame.size)
    if factor >= 1:
        return frame.resize((frame.width * factor, frame.height * factor), Image.Resampling.NEAREST) if factor > 1 else frame.copy()
    small = frame.copy()
    small.thumbnail((thumb, thumb), Image.Resampling.BICUBIC)
    return small


def contact_sheet(frames: list[Image.Image], labels: list[str], columns: int = 4, thumb: int = 256) -> Image.Image:
    """Tile ``frames`` (fitted to ``thumb`` px, see ``tile``) in a grid with a caption under each."""
    columns = max(1, min(columns, len(frames)))
    rows = math.ceil(len(frames) / columns)
    thumbs = [tile(f, thumb) for f in frames]
    cell_w = max(t.width for t in thumbs)
    cell_h = max(t.height for t in thumbs) + CAPTION_H
    sheet = Image.new("RGB", (columns * (cell_w + GAP) + GAP, rows * cell_h + GAP), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for i, (t, label) in enumerate(zip(thumbs, labels)):
        x, y = tile_origin(i, columns, cell_w, cell_h)
        sheet.paste(t, (x, y))
        draw.text((x, y + t.height + 4), label, fill=(230, 230, 230))
    return sheet


def tile_origin(i: int, columns: int, cell_w: int, cell_h: int) -> tuple[int, int]:
    """Top-left corner of tile ``i`` on the sheet."""
    return GAP + (i % columns) * (cell_w + GAP), GAP + (i // columns) * cell_h


def frames_to_images(frames: torch.Tensor) -> list[Image.Image]:
    """(T, 3, S, S) uint8 model frames -> PIL images."""
    return [Image.fromarray(np.ascontiguousarray(f.permute(1, 2, 0).numpy())) for f in frames]
