"""``export --format coreml``: Apple's layout plus the vision tower as Core ML (``fastvithd.mlpackage``).

Like Apple's ``model_export/export_vision_encoder.py``: the tower alone (FastViTHD, reparameterised), one
frame ``images`` (1, 3, S, S) in [0, 1] -> ``image_features`` (1, K, C) before the projector, at the
checkpoint's frame size (FP32, iOS 16 / macOS 13 target, as Apple's script), beside Apple's layout in the same folder (its app runs the tower in Core ML and
the LLM in MLX). Converts on Linux with coremltools (through ``torch.export``: timm's attention does
not trace with ``torch.jit``); *running* the package needs macOS 13+ / iOS 16+.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from .apple import reparameterise_tower, save_original

logger = logging.getLogger(__name__)

PACKAGE_NAME = "fastvithd.mlpackage"


class TowerFeatures(nn.Module):
    """FastViTHD as ``get_image_features`` uses it, without the projector: (B, 3, S, S) -> (B, K, C)."""

    def __init__(self, vision_tower: nn.Module):
        super().__init__()
        self.tower = vision_tower.timm_model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.tower.forward_features(images).flatten(2).transpose(1, 2)


def require_coremltools():
    try:
        import coremltools
    except ImportError as exc:
        raise ConfigError(
            f"coremltools is not installed ({exc}): pip install 'fastvlm-video[coreml]'"
        ) from exc
    return coremltools


def convert_tower(model, image_size: int, out: str | Path) -> Path:
    """Write the tower of ``model`` as an ML program (FP32, iOS 16+, as Apple's export) to ``out``."""
    ct = require_coremltools()
    wrapper = TowerFeatures(model.model.vision_tower).float().eval()
    example = torch.rand(1, 3, image_size, image_size)
    program = torch.export.export(wrapper, (example,)).run_decompositions({})
    package = ct.convert(
        program,
        inputs=[ct.TensorType(name="images", shape=tuple(example.shape), dtype=np.float32)],
        outputs=[ct.TensorType(name="image_features", dtype=np.float32)],
        convert_to="mlprogram",
        compute_units=ct.ComputeUnit.CPU_AND_GPU,
        minimum_deployment_target=ct.target.iOS16,
        compute_precision=ct.precision.FLOAT32,  # Apple's export settings
    )
    package.save(str(out))
    return Path(out)


def save_with_coreml_tower(model, tokenizer, video, out: str | Path) -> Path:
    """Apple's layout (tower reparameterised) + ``fastvithd.mlpackage`` for the checkpoint's frame size."""
    require_coremltools()
    reparameterise_tower(model)
    out = save_original(model, tokenizer, video, out)
    convert_tower(model, video.image_size, out / PACKAGE_NAME)
    logger.info("wrote the vision tower as Core ML: %s (runs on macOS 13+ / iOS 16+)", out / PACKAGE_NAME)
    return out
