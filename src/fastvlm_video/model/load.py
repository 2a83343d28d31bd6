"""Load a FastVLM checkpoint (HF ``fast_vlm`` format) with its tokenizer and video settings."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from transformers import AutoTokenizer, FastVlmForConditionalGeneration

from ..errors import ConfigError
from ..video_config import VideoConfig
from .processor import image_size_of

logger = logging.getLogger(__name__)


def detect_format(path: str | Path) -> str:
    """``fast_vlm`` for a standard checkpoint; otherwise a ``ConfigError`` saying what was found."""
    path = Path(path)
    config_path = path / "config.json"
    if not config_path.is_file():
        hint = " (a hub id? this tool never downloads: pass a local directory)" if not path.exists() else ""
        raise ConfigError(f"{path}: no config.json found{hint}. Expected a FastVLM checkpoint directory.")
    model_type = json.loads(config_path.read_text()).get("model_type")
    if model_type == "fast_vlm":
        return "fast_vlm"
    raise ConfigError(
        f"{path}: model_type {model_type!r} is not supported; expected a Hugging Face 'fast_vlm' checkpoint"
        " (FastVlmForConditionalGeneration)."
    )


def load_model(path: str | Path, dtype: torch.dtype | str | None = None) -> FastVlmForConditionalGeneration:
    detect_format(path)
    return FastVlmForConditionalGeneration.from_pretrained(str(path), dtype=dtype or "auto")


def load_tokenizer(path: str | Path):
    return AutoTokenizer.from_pretrained(str(path))


def video_config_of(path: str | Path, **overrides) -> VideoConfig:
    """The checkpoint's saved video settings (or defaults with its processor's frame size), then overrides."""
    saved = VideoConfig.load(path)
    base = vars(saved) if saved else {"image_size": image_size_of(path)}
    return VideoConfig(**{**base, **{k: v for k, v in overrides.items() if v is not None}})
