"""Original ml-fastvlm checkpoints (``llava_qwen2``, Apple's release) -> the standard ``fast_vlm`` layout.

An original checkpoint directory holds a LLaVA-style ``config.json`` (Qwen2 fields at the top level,
``mm_vision_tower: mobileclip_l_1024``, ``mm_projector_type: mlp2x_gelu``), the weights with the
MobileCLIP (MCi / FastViTHD) tower under ``model.vision_tower.vision_tower.model.``, and a Qwen2
tokenizer without an ``<image>`` token. Conversion renames the keys (map in ``shared/DESIGN.md``,
checked against Apple's code), reads the tower's shape from the weights, adds ``<image>`` to the
tokenizer (and, when the vocabulary has no spare row, to the embeddings) and attaches the ChatML template.

The released checkpoints hold the *reparameterised* tower (Apple's ``fastvithd`` is built with
``inference_mode=True``: one ``reparam_conv`` per MobileOne block); checkpoints saved from a tower
built for training (``rbr_conv`` / ``lkb_origin`` branches) are converted too. Which one a checkpoint
holds is read from its keys and written to the tower's ``model_args.inference_mode``.
"""

from __future__ import annotations

import bisect
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AddedToken, FastVlmConfig, FastVlmForConditionalGeneration, Qwen2Config

from ..constants import ENDOFTEXT, IM_END, IMAGE_TOKEN
from ..data.chat import CHAT_TEMPLATE
from ..errors import ConfigError
from ..video_config import VideoConfig
from .processor import read_tokenizer

logger = logging.getLogger(__name__)

ORIGINAL_MODEL_TYPE = "llava_qwen2"
ORIGINAL_TOWER = "model.vision_tower.vision_tower.model."
HF_TOWER = "model.vision_tower.timm_model."
# Keys an original checkpoint may hold that the standard model has no use for.
IGNORED_KEYS = (re.compile(r"^model\.vision_tower\.vision_tower\.model\.head\."), re.compile(r"rotary_emb\.inv_freq$"))

# Module names inside the tower, (original MCi name, timm name): one table read both ways (``convert``
# left -> right, ``export --format apple`` right -> left). Fragments match literally; ``^`` / ``$`` anchor.
TOWER_NAMES = (
    ("^patch_embed.", "^stem."),
    (".rbr_conv.", ".conv_kxk."),
    (".rbr_scale.", ".conv_scale."),
    (".rbr_skip.", ".identity."),
    ("^conv_exp.", "^final_conv."),
    (".lkb_origin.", ".large_conv."),
    (".proj.0.lkb_reparam.", ".proj.0.reparam_conv."),
    (".convffn.", ".mlp."),
    (".se.reduce.", ".se.fc1."),
    (".se.expand.", ".se.fc2."),
    (".layer_scale$", ".layer_scale.gamma$"),
    (".layer_scale_1$", ".layer_scale_1.gamma$"),
    (".layer_scale_2$", ".layer_scale_2.gamma$"),
)
LLM_NAMES = (
    ("^model.mm_projector.0.", "^model.multi_modal_projector.linear_1."),
    ("^model.mm_projector.2.", "^model.multi_modal_projector.linear_2."),
    ("^model.layers.", "^model.language_model.layers."),
    ("^model.embed_tokens.", "^model.language_model.embed_tokens."),
    ("^model.norm.", "^model.language_model.norm."),
)


def rename(key: str, table: tuple[tuple[str, str], ...], reverse: bool = False) -> str:
    """Apply a two-way name ``table`` to ``key``: original -> standard, or standard -> original with ``reverse``."""
    for original, standard in reversed(table) if reverse else table:
        source, target = (standard, original) if reverse else (original, standard)
        pattern = ("^" if source.startswith("^") else "") + re.escape(source.strip("^$")) + ("$" if source.endswith("$") else "")
        key = re.sub(pattern, lambda _, t=target.strip("^$"): t, key)
    return key


def downsample_positions(keys) -> list[int]:
    """Indices ``i`` of ``network.{i}`` that are a stage's downsampling ``PatchEmbed`` (they hold ``.proj``)."""
    found = {int(m.group(1)) for k in keys if (m := re.match(r"network\.(\d+)\.proj\.", k))}
    return sorted(found)


def tower_key(key: str, downsamples: list[int]) -> str:
    """One MCi key (prefix removed) -> its timm ``FastVit`` name.

    The original lays the stages out flat: ``network = [blocks0, down1, blocks1, down2, blocks2,
    down3, pos3, blocks3, down4, pos4, blocks4]``; timm nests them as ``stages.{s}.downsample /
    .pos_emb / .blocks``. A stage starts at each downsample, so ``s = bisect(downsamples, i)``.
    """
    key = rename(key, TOWER_NAMES)
    match = re.match(r"network\.(\d+)\.(.*)", key)
    if match is None:
        return key
    index, rest = int(match.group(1)), match.group(2)
    stage = f"stages.{bisect.bisect_right(downsamples, index)}"
    if rest.startswith("proj."):
        return f"{stage}.downsample.{rest}"
    if rest.startswith("pe."):
        return f"{stage}.pos_emb.pos_enc.{rest[3:]}"
    if rest.startswith("reparam_conv."):
        return f"{stage}.pos_emb.{rest}"
    return f"{stage}.blocks.{rest}"


def convert_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename every key of an original checkpoint; ignorable keys (tower head, rotary buffers) are dropped.

    Keys that match no rule keep their name, so loading reports them as unexpected.
    """
    return {new: state_dict[old] for new, old in key_map(list(state_dict)).items()}


def key_map(keys: list[str]) -> dict[str, str]:
    """``{standard name: original name}`` for the keys of an original checkpoint (ignorable keys left out)."""
    tower_keys = [k[len(ORIGINAL_TOWER) :] for k in keys if k.startswith(ORIGINAL_TOWER)]
    downsamples = downsample_positions(tower_keys)
    out = {}
    for key in keys:
        if any(p.search(key) for p in IGNORED_KEYS):
            continue
        if key.startswith(ORIGINAL_TOWER):
            new = HF_TOWER + tower_key(key[len(ORIGINAL_TOWER) :], downsamples)
        else:
            new = rename(key, LLM_NAMES)
        out[new] = key
    return out


PARTS = ("downsample", "pos_emb", "blocks")  # order of a timm stage's parts in MCi's flat ``network`` list


def network_positions(tower_keys: list[str]) -> dict[str, str]:
    """``{timm prefix: MCi prefix}``: where each part of timm's nested stages sits in the flat ``network``.

    The inverse of ``tower_key``: stages in order, each contributing its downsample, its positional
    conv (RepCPE, attention stages only) and its blocks, when present.
    """
    present = {(int(m.group(1)), m.group(2)) for k in tower_keys if (m := re.match(r"stages\.(\d+)\.(\w+)\.", k))}
    where, index = {}, 0
    for stage in sorted({s for s, _ in present}):
        for part in PARTS:
            if (stage, part) in present:
                if part == "pos_emb":  # RepCPE's train-time conv: "pos_emb.pos_enc." in timm, "pe." in MCi
                    where[f"stages.{stage}.pos_emb.pos_enc."] = f"network.{index}.pe."
                where[f"stages.{stage}.{part}."] = f"network.{index}."
                index += 1
    return where


def original_tower_key(key: str, where: dict[str, str]) -> str:
    """One timm tower key (prefix removed) -> its MCi name."""
    prefix = next((p for p in where if key.startswith(p)), None)  # "pos_emb.pos_enc." is listed before "pos_emb."
    if prefix is not None:
        key = where[prefix] + key[len(prefix) :]
    return rename(key, TOWER_NAMES, reverse=True)


def original_key_map(keys: list[str]) -> dict[str, str]:
    """``{original name: standard name}`` for the keys of a standard ``fast_vlm`` state dict (``key_map`` reversed)."""
    where = network_positions([k[len(HF_TOWER) :] for k in keys if k.startswith(HF_TOWER)])
    out = {}
    for key in keys:
        if key.startswith(HF_TOWER):
            out[ORIGINAL_TOWER + original_tower_key(key[len(HF_TOWER) :], where)] = key
        else:
            out[rename(key, LLM_NAMES, reverse=True)] = key
    return out


def tower_model_args(state_dict: dict[str, torch.Tensor]) -> dict:
    """The tower's shape read from converted weights: blocks per stage, widths, and reparameterised or not."""
    blocks: dict[int, set[int]] = {}
    widths: dict[int, int] = {}
    for key, value in state_dict.items():
        match = re.match(re.escape(HF_TOWER) + r"stages\.(\d+)\.blocks\.(\d+)\.mlp\.fc1\.weight$", key)
        if match:
            stage, block = int(match.group(1)), int(match.group(2))
            blocks.setdefault(stage, set()).add(block)
            widths[stage] = value.shape[1]
    if not blocks:
        raise ConfigError("no FastViTHD blocks found under 'model.vision_tower.vision_tower.model.network.*'")
    stages = sorted(blocks)
    return {
        "layers": [len(blocks[s]) for s in stages],
        "embed_dims": [widths[s] for s in stages],
        "inference_mode": f"{HF_TOWER}stem.0.reparam_conv.weight" in state_dict,
    }


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint directory: ``*.safetensors`` (one or sharded) or ``pytorch_model*.bin``."""
    from safetensors.torch import load_file

    files = sorted(path.glob("*.safetensors"))
    loader = load_file
    if not files:
        files = sorted(path.glob("pytorch_model*.bin"))
        loader = lambda f: torch.load(f, map_location="cpu", weights_only=True)  # noqa: E731
    if not files:
        raise ConfigError(f"{path}: no weights found (expected *.safetensors or pytorch_model*.bin)")
    state_dict: dict[str, torch.Tensor] = {}
    for file in files:
        if is_lfs_pointer(file):
            raise ConfigError(f"{file} is a Git-LFS pointer, not the weights: run `git lfs pull` in {path} (or download the file itself)")
        try:
            state_dict.update(loader(str(file)))
        except Exception as exc:  # safetensors / torch raise their own types for a damaged file
            raise ConfigError(f"{file}: cannot read the weights ({exc}); the file is damaged or incomplete (an interrupted download?): fetch it again") from None
    return state_dict


def is_lfs_pointer(file: Path) -> bool:
    """A small text file Git-LFS leaves in place of a large file cloned without ``git lfs``."""
    with open(file, "rb") as f:
        return f.read(40).startswith(b"version https://git-lfs.github.com/spec/")


def original_tokenizer(path: str | Path):
    """The checkpoint's Qwen2 tokenizer with ``<image>`` added (a special token) and the ChatML template."""
    tokenizer = read_tokenizer(path)
    if IMAGE_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_tokens([AddedToken(IMAGE_TOKEN, special=True, normalized=False)], special_tokens=True)
    tokenizer.chat_template = CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = ENDOFTEXT
    return tokenizer


def image_size_of_original(config: dict) -> int:
    """The frame size in the tower's name, as the original code reads it (``mobileclip_l_1024`` -> 1024)."""
    if not config.get("mm_vision_tower"):
        raise ConfigError("config.json has no 'mm_vision_tower' (an original FastVLM config names its tower, e.g. 'mobileclip_l_1024')")
    tower = str(config["mm_vision_tower"])
    suffix = tower.rsplit("_", 1)[-1]
    if not tower.startswith("mobileclip") or not suffix.isdigit():
        raise ConfigError(f"mm_vision_tower {tower!r}: only FastViTHD towers ('mobileclip_l_<size>') are supported")
    return int(suffix)


def original_video_config(path: str | Path) -> VideoConfig:
    config = read_config(path)
    aspect = "pad" if config.get("image_aspect_ratio", "pad") == "pad" else "resize"
    return VideoConfig(image_size=image_size_of_original(config), aspect=aspect)


def read_config(path: str | Path) -> dict:
    return json.loads((Path(path) / "config.json").read_text())


def text_config_of(config: dict, vocab_size: int) -> Qwen2Config:
    """The Qwen2 part of a LLaVA config: the top-level fields ``Qwen2Config`` knows."""
    known = (set(Qwen2Config().to_dict()) | {"rope_theta", "rope_scaling"}) - {"architectures", "model_type", "transformers_version", "dtype"}
    fields = {k: v for k, v in config.items() if k in known}
    return Qwen2Config(**{**fields, "vocab_size": vocab_size})


@dataclass
class Converted:
    state_dict: dict[str, torch.Tensor]
    config: FastVlmConfig
    sources: dict[str, str]  # standard name -> original name, for error messages


def convert_checkpoint(path: str | Path, tokenizer) -> Converted:
    """Weights and ``FastVlmConfig`` of an original checkpoint, for ``tokenizer`` (which holds ``<image>``)."""
    path = Path(path)
    config = read_config(path)
    if config.get("mm_projector_type", "mlp2x_gelu") != "mlp2x_gelu":
        raise ConfigError(f"{path}: mm_projector_type {config['mm_projector_type']!r}; only FastVLM's mlp2x_gelu is supported")
    image_size_of_original(config)
    original = read_state_dict(path)
    sources = key_map(list(original))
    state_dict = {new: original[old] for new, old in sources.items()}
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    vocab_size = grow_vocabulary(state_dict, image_id + 1)
    vision = tower_model_args(state_dict)
    vision_config = {
        "model_type": "timm_wrapper",
        "architecture": "fastvit_mci3",
        "do_pooling": False,
        "hidden_size": int(config.get("mm_hidden_size", vision["embed_dims"][-1] * 2)),
        "model_args": vision,
    }
    fast_vlm = FastVlmConfig(
        vision_config=vision_config,
        text_config=text_config_of(config, vocab_size),
        image_token_index=image_id,
        eos_token_id=tokenizer.convert_tokens_to_ids(IM_END),
        pad_token_id=tokenizer.pad_token_id,
    )
    if config.get("torch_dtype"):
        fast_vlm.dtype = config["torch_dtype"]
    logger.info("converted %s: tower %s, vocabulary %d, <image> id %d", path, vision, vocab_size, image_id)
    return Converted(state_dict, fast_vlm, sources)


def grow_vocabulary(state_dict: dict[str, torch.Tensor], needed: int) -> int:
    """Append rows (the mean of the existing ones, deterministic) to embeddings and lm_head up to ``needed``."""
    names = ["model.language_model.embed_tokens.weight", "lm_head.weight"]
    for name in names:
        if name not in state_dict:
            continue
        weight = state_dict[name]
        if weight.shape[0] < needed:
            extra = weight.float().mean(0, keepdim=True).to(weight.dtype).expand(needed - weight.shape[0], -1)
            state_dict[name] = torch.cat([weight, extra])
    rows = [state_dict[n].shape[0] for n in names if n in state_dict]
    return max(rows + [needed])


def check_shapes(path: str | Path, converted: Converted) -> None:
    """Every tensor's shape against the model its config describes (built on the meta device: no memory)."""
    with torch.device("meta"):
        expected = FastVlmForConditionalGeneration(converted.config).state_dict()
    wrong = [
        f"{converted.sources[k]} {tuple(v.shape)} (expected {tuple(expected[k].shape)})"
        for k, v in converted.state_dict.items()
        if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    if wrong:
        shown = "; ".join(wrong[:5]) + (f"; ... and {len(wrong) - 5} more" if len(wrong) > 5 else "")
        raise ConfigError(
            f"{path}: {len(wrong)} tensor(s) have a shape that config.json does not describe: {shown}. "
            "Do config.json and the weights come from the same checkpoint?"
        )


def load_original(path: str | Path, tokenizer=None, dtype: torch.dtype | str | None = None, **kwargs) -> FastVlmForConditionalGeneration:
    """Convert and load an original checkpoint; raises ``ConfigError`` naming missing or unexpected keys."""
    tokenizer = tokenizer or original_tokenizer(path)
    converted = convert_checkpoint(path, tokenizer)
    check_shapes(path, converted)
    model, info = FastVlmForConditionalGeneration.from_pretrained(
        None, config=converted.config, state_dict=converted.state_dict, dtype=dtype or "auto", output_loading_info=True, **kwargs
    )
    original = {standard: name for name, standard in original_key_map(list(model.state_dict())).items()}
    missing = sorted(original.get(k, k) for k in info["missing_keys"])
    unexpected = sorted(converted.sources.get(k, k) for k in info["unexpected_keys"])
    if missing or unexpected:
        raise ConfigError(
            f"{path}: the checkpoint does not match FastVLM after conversion (original key names). "
            f"Missing keys: {missing or 'none'}. Unexpected keys: {unexpected or 'none'}. "
            "Is it a complete ml-fastvlm checkpoint (stage 2 or 3)?"
        )
    model.generation_config.eos_token_id = converted.config.eos_token_id
    model.generation_config.pad_token_id = converted.config.pad_token_id
    return model
