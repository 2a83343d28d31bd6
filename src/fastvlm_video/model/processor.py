"""The processor (tokenizer + image processor) saved beside a checkpoint, so plain ``transformers`` reproduces
our preprocessing of frames.

Training pads a frame to a black square (FastVLM's ``image_aspect_ratio: pad``): resize the longer side to
S (bicubic), centre it on a black S x S square, scale to [0, 1] (mean 0, std 1). transformers ships an image
processor that does exactly this, in this order, with the same rounding: ``DeepseekVLImageProcessor``
(resize the longest side, ``pad_to_square`` centred in the colour of ``image_mean``, here black). Its PIL
backend gives training's pixels bit for bit; the default torchvision backend is within one uint8 level
(tests/test_processor.py). The other aspect modes map to CLIP's processor (``crop``: shortest edge + centre
crop; ``resize``: squash to S x S).
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoTokenizer, CLIPImageProcessorPil, DeepseekVLImageProcessorPil, LlavaProcessor

from ..constants import IMAGE_TOKEN, VISION_STRIDE
from ..data.chat import CHAT_TEMPLATE
from ..errors import ConfigError

DEFAULT_IMAGE_SIZE = 1024  # FastViTHD checkpoints are trained at 1024 px
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json")
PIXELS_01 = {"do_rescale": True, "do_normalize": True, "image_mean": [0.0, 0.0, 0.0], "image_std": [1.0, 1.0, 1.0]}


def make_image_processor(image_size: int = DEFAULT_IMAGE_SIZE, aspect: str = "pad"):
    """The transformers image processor that gives training's S x S frames for ``aspect`` (pad | crop | resize)."""
    square = {"height": image_size, "width": image_size}
    if aspect == "pad":  # crop_size is not used for pixels; it is what LlavaProcessor counts image tokens from (vLLM)
        return DeepseekVLImageProcessorPil(size=square, min_size=1, do_pad=True, crop_size=square, **PIXELS_01)
    if aspect == "crop":
        return CLIPImageProcessorPil(size={"shortest_edge": image_size}, crop_size=square, do_center_crop=True, **PIXELS_01)
    if aspect == "resize":
        return CLIPImageProcessorPil(size=square, do_center_crop=False, crop_size=square, **PIXELS_01)
    raise ValueError(f"aspect must be pad, crop or resize, got {aspect!r}")


def make_processor(tokenizer, image_size: int = DEFAULT_IMAGE_SIZE, aspect: str = "pad") -> LlavaProcessor:
    """FastVLM's processor: pixels in [0, 1] (mean 0, std 1), S x S frames, K=(S/64)^2 tokens per image."""
    if tokenizer.chat_template is None:
        tokenizer.chat_template = CHAT_TEMPLATE
    return LlavaProcessor(
        image_processor=make_image_processor(image_size, aspect),
        tokenizer=tokenizer,
        patch_size=VISION_STRIDE,
        vision_feature_select_strategy="full",
        image_token=IMAGE_TOKEN,
        chat_template=CHAT_TEMPLATE,
    )


def image_size_of(model_dir: str | Path, default: int = DEFAULT_IMAGE_SIZE) -> int:
    """The frame size S the checkpoint's processor config asks for (crop size, else size)."""
    for name in ("preprocessor_config.json", "processor_config.json"):
        path = Path(model_dir) / name
        if not path.is_file():
            continue
        config = json.loads(path.read_text())
        config = config.get("image_processor", config)
        crop = config.get("crop_size") if config.get("do_center_crop", True) else None
        for value in (crop, config.get("size")):
            if isinstance(value, dict):
                value = value.get("height") or value.get("shortest_edge")
            if isinstance(value, int):
                return value
    return default


def read_tokenizer(path: str | Path):
    """``AutoTokenizer`` on a local directory; a missing or unreadable tokenizer is one ``ConfigError``."""
    path = Path(path)
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise ConfigError(f"{path}: no tokenizer ({', '.join(TOKENIZER_FILES)}); copy the tokenizer files of the checkpoint into it")
    try:
        return AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError, ImportError) as exc:
        raise ConfigError(f"{path}: cannot load the tokenizer ({exc}); the files may be incomplete: copy them again") from None
