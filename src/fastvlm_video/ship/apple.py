"""Standard ``fast_vlm`` checkpoint -> Apple's original ml-fastvlm layout (``llava_qwen2``).

The exact inverse of ``model/convert.py``: the same two-way name tables (``convert.TOWER_NAMES``,
``convert.LLM_NAMES``) read right to left, timm's nested stages laid flat again as MCi's ``network``
list, the tokenizer without the added ``<image>`` token (Apple's code marks an image with the index
-200 in the ids), the original CLIP image processor (mean 0, std 1) and ChatML template, and
``video_config.json`` beside it. ``fastvlm-video convert`` (or loading with this package) of the result
gives back the same weights; Apple's code and mlx-vlm's ``llava_qwen2`` loader read it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..constants import IM_END, IMAGE_TOKEN
from ..data.chat import CHAT_TEMPLATE
from ..errors import ConfigError
from ..file_modes import share_like_other_files
from ..model import convert
from ..model.processor import make_image_processor
from ..video_config import VideoConfig

logger = logging.getLogger(__name__)

HEAD_KEY = convert.ORIGINAL_TOWER + "head.proj"  # MobileCLIP's image-embedding head: unused by FastVLM
HEAD_DIM = 768  # mobileclip_l's projection width (Apple's and mlx-vlm's tower build the head, unused)


def reparameterise_tower(model) -> None:
    """Fold the tower's train-time branches into one conv per block, in place (what Apple's release holds)."""
    from timm.utils.model import reparameterize_model

    vision = model.config.vision_config
    if (vision.model_args or {}).get("inference_mode"):
        return
    tower = model.model.vision_tower
    tower.timm_model = reparameterize_model(tower.timm_model.eval(), inplace=True)
    vision.model_args = {**(vision.model_args or {}), "inference_mode": True}
    logger.info("reparameterised the vision tower (one conv per MobileOne block, as in Apple's release)")


def to_original_state_dict(
    state_dict: dict[str, torch.Tensor], head_shape: tuple[int, int]
) -> dict[str, torch.Tensor]:
    """Rename every key to Apple's names; add the (unused, zero) tower head that Apple's code builds.

    Raises ``ConfigError`` naming every key whose name does not come back unchanged through ``convert``
    (a module the name tables do not know), so a silently wrong export cannot happen.
    """
    names = convert.original_key_map(list(state_dict))
    back = convert.key_map(list(names))  # {standard: original}, as `convert` reads the export
    wrong = sorted(
        f"{std} -> {orig} -> {back.get(std, 'dropped')}"
        for orig, std in names.items()
        if back.get(std) != orig
    )
    unknown = sorted(std for orig, std in names.items() if orig == std and std != "lm_head.weight")
    if wrong or unknown:
        raise ConfigError(
            f"the Apple layout cannot represent this model. Keys that do not come back through convert: "
            f"{wrong or 'none'}. Keys no name rule knows: {unknown or 'none'}. Is it a FastVLM (FastViTHD + Qwen2) model?"
        )
    out = {orig: state_dict[std].contiguous() for orig, std in names.items()}
    dtype = next(iter(state_dict.values())).dtype
    out[HEAD_KEY] = torch.zeros(head_shape, dtype=dtype)
    return out


def original_config(model, tokenizer, video: VideoConfig, vocab_size: int) -> dict:
    """Apple's ``llava_qwen2`` config: Qwen2 fields at the top level plus the LLaVA ``mm_*`` fields."""
    text = model.config.text_config.to_dict()
    rope = text.get("rope_parameters") or {}
    keep = (
        "hidden_act", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "max_position_embeddings", "rms_norm_eps", "tie_word_embeddings",
        "attention_dropout", "initializer_range", "sliding_window", "max_window_layers", "use_sliding_window",
        "bos_token_id",
    )  # fmt: skip
    tower = model.config.vision_config
    config = {k: text[k] for k in keep if k in text}
    config.update(
        architectures=["LlavaQwen2ForCausalLM"],
        model_type=convert.ORIGINAL_MODEL_TYPE,
        rope_theta=rope.get("rope_theta", text.get("rope_theta", 1000000.0)),
        vocab_size=vocab_size,
        eos_token_id=tokenizer.convert_tokens_to_ids(IM_END),
        torch_dtype=str(model.dtype).removeprefix("torch."),
        use_cache=True,
        mm_hidden_size=tower.hidden_size,
        mm_projector_type="mlp2x_gelu",
        mm_vision_tower=f"mobileclip_l_{video.image_size}",
        mm_vision_select_layer=-2,
        mm_vision_select_feature="patch",
        mm_use_im_start_end=False,
        mm_use_im_patch_token=False,
        mm_patch_merge_type="flat",
        image_aspect_ratio="pad" if video.aspect == "pad" else "crop",
        tokenizer_model_max_length=min(
            tokenizer.model_max_length, model.config.text_config.max_position_embeddings
        ),  # mlx-vlm cuts prompts here
        tokenizer_padding_side="right",
        tune_mm_mlp_adapter=False,
        unfreeze_mm_vision_tower=True,
        use_mm_proj=True,
        # Not Apple's: the tower's shape, for loaders that cannot read it from the weights (ship.mlx_runtime).
        fastvlm_video_tower={
            k: tower.model_args[k] for k in ("layers", "embed_dims") if k in tower.model_args
        },
    )
    return config


def strip_image_token(directory: Path) -> None:
    """Remove ``<image>`` from a saved tokenizer (``tokenizer.json`` + ``tokenizer_config.json``), as in Apple's."""
    path = directory / "tokenizer.json"
    data = json.loads(path.read_text())
    ids = [t["id"] for t in data["added_tokens"] if t["content"] == IMAGE_TOKEN]
    if data["model"].get("vocab", {}).get(IMAGE_TOKEN) is not None:
        raise ConfigError(
            f"{IMAGE_TOKEN} is part of the tokenizer's own vocabulary: Apple's layout cannot drop it"
        )
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] != IMAGE_TOKEN]
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2))
    config_path = directory / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    for i in ids:
        config.get("added_tokens_decoder", {}).pop(str(i), None)
    for field in (
        "extra_special_tokens",
        "model_specific_special_tokens",
    ):  # transformers re-adds tokens named there
        extra = config.get(field)
        if isinstance(extra, dict):
            config[field] = {k: v for k, v in extra.items() if v != IMAGE_TOKEN}
        elif isinstance(extra, list):
            config[field] = [v for v in extra if v != IMAGE_TOKEN]
    config.pop("image_token", None)
    config.pop("processor_class", None)  # ours is LlavaProcessor; Apple's folder has none
    config_path.write_text(json.dumps(config, ensure_ascii=False, indent=2))


def save_original(model, tokenizer, video: VideoConfig, out: str | Path) -> Path:
    """Write ``model`` (a plain ``FastVlmForConditionalGeneration``) in Apple's original layout."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model_args = model.config.vision_config.model_args or {}
    if model.config.vision_config.architecture != "fastvit_mci3":
        raise ConfigError(
            f"vision tower {model.config.vision_config.architecture!r}: Apple's layout holds FastViTHD (fastvit_mci3) only"
        )
    if video.aspect == "resize":
        logger.warning(
            "aspect 'resize' (squash) has no equivalent in Apple's code (pad or crop): its own preprocessing will differ; video_config.json keeps 'resize'"
        )
    state_dict = model.state_dict()
    if model.config.text_config.tie_word_embeddings:
        state_dict.pop("lm_head.weight", None)
    weights = to_original_state_dict(state_dict, (model.config.vision_config.hidden_size, HEAD_DIM))
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    vocab = weights["model.embed_tokens.weight"].shape[0]
    (out / "config.json").write_text(
        json.dumps(original_config(model, tokenizer, video, vocab), indent=2) + "\n"
    )
    model.generation_config.save_pretrained(str(out))
    # Apple's preprocessor_config.json: CLIP (shortest edge + centre crop, mean 0, std 1); its code pads first.
    image_processor = make_image_processor(video.image_size, "crop").to_dict()
    image_processor["image_processor_type"] = "CLIPImageProcessor"
    (out / "preprocessor_config.json").write_text(json.dumps(image_processor, indent=2) + "\n")
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(str(out))
    strip_image_token(out)
    video.save(out)
    share_like_other_files(out)
    logger.info("wrote Apple's llava_qwen2 layout to %s (tower %s, vocabulary %d)", out, model_args, vocab)
    return out
