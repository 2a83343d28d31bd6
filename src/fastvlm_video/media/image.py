"""Still images: open with PIL, turn into a one-frame clip.

Every image becomes 8-bit RGB by one rule (``to_rgb8``), used by images, animation frames and the
frames of a frame folder alike, so train, evaluate, predict, serve and ``frames`` see the same pixels.
High-bit-depth modes are scaled, never clipped:

* ``I;16``, ``I;16B``, ``I;16L``, ``I;16N`` (16-bit PNG/TIFF: depth, thermal, scans): the type's full
  range, ``round(v / 257)`` (65535 -> 255; an 8-bit picture stored as ``v * 257`` comes back exactly).
* ``I`` (32-bit integer): the same 16-bit rule when every value lies in [0, 65535] (how Pillow opens
  many 16-bit files), else the image's own min..max stretched to 0..255.
* ``F`` (32-bit float): ``v * 255`` when every value lies in [0, 1], else the image's own min..max
  stretched to 0..255 (NaN -> 0).

A stretch is per image: a sequence of such frames can change brightness from frame to frame.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import MediaError
from .files import check_media_file
from .transforms import image_to_tensor

SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
HIGH_BIT_DEPTH_MODES = SIXTEEN_BIT_MODES | {"I", "F"}

logger = logging.getLogger(__name__)


def to_rgb8(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit RGB; high-bit-depth greyscale scaled to 0..255 by the rule in the module doc."""
    if image.mode in HIGH_BIT_DEPTH_MODES:
        image = Image.fromarray(_grey_to_uint8(np.asarray(image), image.mode), mode="L")
    return image.convert("RGB")


def _grey_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    values = values.astype(np.float64)
    if mode == "F":
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if mode in SIXTEEN_BIT_MODES or (mode == "I" and lo >= 0 and hi <= 65535):
        scaled = values / 257.0
    elif mode == "F" and lo >= 0 and hi <= 1:
        scaled = values * 255.0
    else:
        logger.debug("mode %s image with values %g..%g: stretched to 0..255", mode, lo, hi)
        scaled = (values - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(values)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def load_image(path: str | Path) -> Image.Image:
    """Open an image as 8-bit RGB, honouring its EXIF orientation. Raises ``MediaError`` naming the reason."""
    check_media_file(str(path))
    try:
        with Image.open(path) as im:
            return to_rgb8(ImageOps.exif_transpose(im))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise MediaError(str(path), f"cannot read image ({exc.__class__.__name__}: {exc})") from exc


def load_image_tensor(path: str | Path, image_size: int, aspect: str = "pad") -> torch.Tensor:
    """An image as a (1, 3, S, S) uint8 tensor."""
    return image_to_tensor(load_image(path), image_size, aspect)
