"""Still images: open with PIL, turn into a one-frame clip."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import MediaError
from .files import check_media_file
from .transforms import image_to_tensor


def load_image(path: str | Path) -> Image.Image:
    """Open an image as RGB, honouring its EXIF orientation. Raises ``MediaError`` naming the reason."""
    check_media_file(str(path))
    try:
        with Image.open(path) as im:
            return ImageOps.exif_transpose(im).convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise MediaError(str(path), f"cannot read image ({exc.__class__.__name__}: {exc})") from exc


def load_image_tensor(path: str | Path, image_size: int, aspect: str = "pad") -> torch.Tensor:
    """An image as a (1, 3, S, S) uint8 tensor."""
    return image_to_tensor(load_image(path), image_size, aspect)
