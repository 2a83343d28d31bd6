"""Write a standard checkpoint: weights + config, tokenizer + processor, ``video_config.json``.

What ``fastvlm-video convert`` and ``fastvlm-video export`` produce: a directory that loads with
``AutoModelForImageTextToText`` / ``AutoProcessor`` alone, and with every command of this package.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..errors import ConfigError
from ..file_modes import share_like_other_files
from ..outputs import refuse_existing
from ..video_config import VideoConfig
from .load import detect_format, load_model, load_tokenizer, video_config_of
from .processor import make_processor

logger = logging.getLogger(__name__)

DTYPES = {"auto": None, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def save_checkpoint(model, tokenizer, video: VideoConfig, out: str | Path) -> Path:
    """Save ``model`` (a plain ``FastVlmForConditionalGeneration``) with its processor and video settings."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    make_processor(tokenizer, video.image_size, video.aspect).save_pretrained(str(out))
    video.save(out)
    share_like_other_files(out)
    return out


def export_checkpoint(
    src: str | Path, dst: str | Path, merge_lora: bool = False, dtype: str = "auto", overwrite: bool = False, save=save_checkpoint
) -> Path:
    """Load ``src`` (any format) and write it with ``save`` (a standard checkpoint by default) in ``dst``; adapters need ``merge_lora``.

    A non-empty ``dst`` is refused unless ``overwrite``: checked before anything loads."""
    if dtype not in DTYPES:
        raise ConfigError(f"dtype {dtype!r}: choose one of {sorted(DTYPES)}")
    fmt = detect_format(src)
    if fmt == "lora" and not merge_lora:
        raise ConfigError(f"{src} is a LoRA adapter: pass --merge_lora to fold it into its base and write a standard checkpoint")
    if Path(dst).resolve() == Path(src).resolve():
        raise ConfigError(f"{dst}: choose an output directory other than the source")
    refuse_existing(dst, overwrite)
    model = load_model(src, dtype=DTYPES[dtype], merge_lora=True)
    path = save(model, load_tokenizer(src), video_config_of(src), dst)
    logger.info("wrote %s checkpoint %s with %s in %s", fmt, src, save.__name__, path)
    return path
