"""Load any checkpoint a user has, with its tokenizer and video settings.

Three formats, told apart by the files in the directory:

- ``fast_vlm``: a Hugging Face ``FastVlmForConditionalGeneration`` checkpoint (what training saves);
- ``llava_qwen2``: an original ml-fastvlm checkpoint (Apple's release), converted on load (``convert.py``);
- ``lora``: a PEFT adapter directory (``adapter_config.json``); its base is loaded first, in any format.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from transformers import FastVlmForConditionalGeneration

from ..errors import ConfigError
from ..save_marker import refuse_incomplete
from ..video_config import VideoConfig
from . import convert, lora
from .processor import TOKENIZER_FILES, image_size_of, read_tokenizer

logger = logging.getLogger(__name__)

FORMATS = ("fast_vlm", convert.ORIGINAL_MODEL_TYPE, "lora")
SUPPORTED = (
    "a Hugging Face 'fast_vlm' checkpoint (config.json model_type 'fast_vlm'), an original ml-fastvlm "
    "checkpoint (model_type 'llava_qwen2'), or a LoRA adapter directory (adapter_config.json)"
)


def detect_format(path: str | Path) -> str:
    """``fast_vlm``, ``llava_qwen2`` or ``lora``; otherwise a ``ConfigError`` saying what was found."""
    path = Path(path)
    refuse_incomplete(path)  # a save cut short (kill, full disk) must not pass for a model
    if (path / lora.ADAPTER_CONFIG).is_file():
        return "lora"
    config_path = path / "config.json"
    if not config_path.is_file():
        hint = " (a hub id? this tool never downloads: pass a local directory)" if not path.exists() else ""
        raise ConfigError(f"{path}: no config.json or {lora.ADAPTER_CONFIG} found{hint}. Expected {SUPPORTED}.")
    model_type = json.loads(config_path.read_text()).get("model_type")
    if model_type in FORMATS:
        return model_type
    raise ConfigError(f"{path}: found model_type {model_type!r}, which is not supported. Expected {SUPPORTED}.")


def load_model(
    path: str | Path, dtype: torch.dtype | str | None = None, merge_lora: bool = False, **kwargs
) -> FastVlmForConditionalGeneration:
    """The model in ``path`` (any format). A LoRA adapter comes back as a ``PeftModel``, or merged with ``merge_lora``.

    ``kwargs`` go to ``from_pretrained`` (e.g. ``quantization_config`` for QLoRA).
    """
    fmt = detect_format(path)
    if fmt == "lora":
        base = load_model(lora.adapter_base(path), dtype=dtype, **kwargs)
        logger.info("loading LoRA adapter %s on %s", path, base.config._name_or_path)
        model = lora.load_adapter(path, base, merge=merge_lora)
        if not merge_lora:
            return model
    elif fmt == convert.ORIGINAL_MODEL_TYPE:
        logger.info("%s is an original ml-fastvlm checkpoint: converting on load (`fastvlm-video convert` does it once)", path)
        model = convert.load_original(path, dtype=dtype, **kwargs)
    else:
        model = FastVlmForConditionalGeneration.from_pretrained(str(path), dtype=dtype or "auto", **kwargs)
    model.config._name_or_path = str(Path(path).resolve())  # what an adapter trained on it records as its base
    return model


def load_tokenizer(path: str | Path):
    """The tokenizer for ``path``: an adapter's own if it saved one, else its base's; ``<image>`` always present."""
    fmt = detect_format(path)
    if fmt == "lora" and not any((Path(path) / name).is_file() for name in TOKENIZER_FILES):
        return load_tokenizer(lora.adapter_base(path))
    if fmt == convert.ORIGINAL_MODEL_TYPE:
        return convert.original_tokenizer(path)
    return read_tokenizer(path)



def video_config_of(path: str | Path, **overrides) -> VideoConfig:
    """The checkpoint's saved video settings (or defaults with its processor's frame size), then overrides."""
    saved = VideoConfig.load(path)
    if saved is None:
        fmt = detect_format(path)
        if fmt == "lora":
            saved = video_config_of(lora.adapter_base(path))
        elif fmt == convert.ORIGINAL_MODEL_TYPE:
            saved = convert.original_video_config(path)
    base = vars(saved) if saved else {"image_size": image_size_of(path)}
    return VideoConfig(**{**base, **{k: v for k, v in overrides.items() if v is not None}})
