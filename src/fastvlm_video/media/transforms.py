"""Frame geometry: FastVLM's "pad" (black square), CLIP's "crop", or a plain "resize" to S x S.

Frames stay uint8 (T, 3, S, S) until the collator scales them to [0, 1] (mean 0, std 1, as the
released FastVLM processors), which keeps host memory traffic 4x lower than float32.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..constants import ASPECT_MODES  # noqa: F401  (re-exported)


def resized_dims(width: int, height: int, size: int, aspect: str) -> tuple[int, int]:
    """The (width, height) a frame is resized to before it is padded or cropped to ``size``."""
    if aspect == "resize":
        return size, size
    if aspect == "pad":
        scale = size / max(width, height)
    elif aspect == "crop":
        scale = size / min(width, height)
    else:
        raise ValueError(f"aspect must be one of {ASPECT_MODES}, got {aspect!r}")
    return max(1, round(width * scale)), max(1, round(height * scale))


def place_on_square(frame: np.ndarray, size: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """Centre an (h, w, 3) uint8 frame on a black ``size`` square (pad) or cut its centre (crop)."""
    h, w = frame.shape[:2]
    if out is None:
        out = torch.empty(3, size, size, dtype=torch.uint8)
    # negative offsets crop the source, positive ones pad the destination
    y, x = (size - h) // 2, (size - w) // 2
    sy, sx = max(0, -y), max(0, -x)
    dy, dx = max(0, y), max(0, x)
    ch, cw = min(h - sy, size - dy), min(w - sx, size - dx)
    dst = out.numpy()
    # numpy's HWC -> CHW copy is ~3x faster than torch's strided one
    dst[:, dy : dy + ch, dx : dx + cw] = frame[sy : sy + ch, sx : sx + cw].transpose(2, 0, 1)
    dst[:, :dy], dst[:, dy + ch :], dst[:, :, :dx], dst[:, :, dx + cw :] = 0, 0, 0, 0  # black pad
    return out


def image_to_tensor(image: Image.Image, size: int, aspect: str = "pad") -> torch.Tensor:
    """A PIL image as a (1, 3, S, S) uint8 tensor, resized (bicubic) then padded or cropped."""
    image = image.convert("RGB")
    w, h = resized_dims(image.width, image.height, size, aspect)
    resized = image.resize((w, h), Image.Resampling.BICUBIC) if (w, h) != image.size else image
    return place_on_square(np.array(resized), size).unsqueeze(0)


def to_model_pixels(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames -> float32 in [0, 1], FastVLM's normalisation (mean 0, std 1)."""
    return frames.float().div_(255.0)
