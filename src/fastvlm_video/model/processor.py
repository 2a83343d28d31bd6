"""The processor saved beside a checkpoint, so plain ``transformers`` reproduces our preprocessing of images."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import CLIPImageProcessor, LlavaProcessor

from ..constants import IMAGE_TOKEN, VISION_STRIDE
from ..data.chat import CHAT_TEMPLATE

DEFAULT_IMAGE_SIZE = 1024  # FastViTHD checkpoints are trained at 1024 px


def make_processor(tokenizer, image_size: int = DEFAULT_IMAGE_SIZE) -> LlavaProcessor:
    """FastVLM's processor: pixels in [0, 1] (mean 0, std 1), S x S frames, K=(S/64)^2 tokens per image."""
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        do_center_crop=True,
        do_normalize=True,
        image_mean=[0.0, 0.0, 0.0],
        image_std=[1.0, 1.0, 1.0],
    )
    if tokenizer.chat_template is None:
        tokenizer.chat_template = CHAT_TEMPLATE
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=VISION_STRIDE,
        vision_feature_select_strategy="full",
        image_token=IMAGE_TOKEN,
        chat_template=CHAT_TEMPLATE,
    )


def image_size_of(model_dir: str | Path, default: int = DEFAULT_IMAGE_SIZE) -> int:
    """The frame size S the checkpoint's processor config asks for (crop size, else shortest edge)."""
    for name in ("preprocessor_config.json", "processor_config.json"):
        path = Path(model_dir) / name
        if not path.is_file():
            continue
        config = json.loads(path.read_text())
        config = config.get("image_processor", config)
        crop, size = config.get("crop_size"), config.get("size")
        for value in (crop, size):
            if isinstance(value, dict):
                value = value.get("height") or value.get("shortest_edge")
            if isinstance(value, int):
                return value
    return default
