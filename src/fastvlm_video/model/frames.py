"""Accept the seed's 5-D video input: (B, T, C, H, W) -> (B*T, C, H, W), what FastVLM takes."""

from __future__ import annotations

import torch


def flatten_frames(pixel_values: torch.Tensor) -> torch.Tensor:
    """Flatten a batch of equal-length clips into a batch of frames (frame order kept: clip by clip)."""
    if pixel_values.ndim == 4:
        return pixel_values
    if pixel_values.ndim != 5:
        raise ValueError(f"expected (B, T, C, H, W) or (N, C, H, W) pixel values, got shape {tuple(pixel_values.shape)}")
    return pixel_values.flatten(0, 1)
