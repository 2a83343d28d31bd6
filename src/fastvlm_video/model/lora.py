"""LoRA / QLoRA through PEFT: adapters on the LLM's linear layers, projector (and tower) trained in full.

Also the other direction: an adapter directory names its base checkpoint in ``adapter_config.json``;
``load_adapter`` loads that base (in any supported format) and puts the adapter on it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ALL_LINEAR = "all-linear"


@dataclass
class LoraSettings:
    r: int = 64
    alpha: int = 16
    dropout: float = 0.05
    target_modules: str = ALL_LINEAR  # "all-linear" (every linear layer of the LLM) or "q_proj,v_proj,..."
    bias: str = "none"


def llm_linear_names(model) -> list[str]:
    """Names (last component) of the ``nn.Linear`` layers inside the LLM, e.g. ``q_proj``, ``down_proj``."""
    llm = model.model.language_model
    return sorted({name.rsplit(".", 1)[-1] for name, m in llm.named_modules() if isinstance(m, nn.Linear)})


def target_regex(model, target_modules: str) -> str:
    """A PEFT ``target_modules`` regex: the named linear layers, inside the LLM only (never the tower/projector)."""
    available = llm_linear_names(model)
    if target_modules.strip() in (ALL_LINEAR, "all_linear", ""):
        names = available
    else:
        names = [n.strip() for n in target_modules.split(",") if n.strip()]
        unknown = sorted(set(names) - set(available))
        if unknown:
            raise ConfigError(f"--lora_target_modules {unknown} are not linear layers of the LLM; choose from {available} or '{ALL_LINEAR}'")
    return r"(.*\.)?language_model\..*\.(" + "|".join(names) + ")"


def apply_lora(model, settings: LoraSettings, train_projector: bool = True, train_vision_tower: bool = False):
    """Wrap ``model`` in a PEFT LoRA model: adapters on the LLM; projector / tower trained in full if asked."""
    from peft import LoraConfig, get_peft_model

    modules_to_save = [name for name, on in (("multi_modal_projector", train_projector), ("vision_tower", train_vision_tower)) if on]
    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=target_regex(model, settings.target_modules),
        bias=settings.bias,
        modules_to_save=modules_to_save or None,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    trainable, total = peft_model.get_nb_trainable_parameters()
    logger.info("LoRA r=%d alpha=%d on %s; fully trained: %s; trainable %s of %s parameters",
                settings.r, settings.alpha, config.target_modules, modules_to_save or "nothing else", f"{trainable:,}", f"{total:,}")  # fmt: skip
    return peft_model


def quantization_config(bits: int, compute_dtype: torch.dtype, double_quant: bool = True, quant_type: str = "nf4"):
    """QLoRA's ``BitsAndBytesConfig`` (LLM quantized; tower, projector and lm_head kept in ``compute_dtype``)."""
    if bits not in (4, 8):
        raise ConfigError(f"--bits {bits}: QLoRA quantizes to 4 (or 8) bits; use 16 for no quantization")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"--bits {bits} (QLoRA) needs a CUDA GPU (bitsandbytes kernels) and none is available here. "
            "Drop --bits to train LoRA in full precision (--lora_enable), or run on a CUDA machine."
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise ConfigError("--bits needs bitsandbytes: pip install 'fastvlm-video[qlora]'") from exc
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=bits == 4,
        load_in_8bit=bits == 8,
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_use_double_quant=double_quant,
        bnb_4bit_quant_type=quant_type,
        llm_int8_skip_modules=["vision_tower", "multi_modal_projector", "lm_head"],
    )


def adapter_base(path: str | Path) -> Path:
    """The base checkpoint an adapter directory was trained on (absolute, or relative to the adapter)."""
    path = Path(path)
    base = json.loads((path / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    if not base:
        raise ConfigError(f"{path / ADAPTER_CONFIG}: no base_model_name_or_path; cannot tell which model the adapter belongs to")
    for candidate in (Path(base), path / base):
        if (candidate / "config.json").is_file() or (candidate / ADAPTER_CONFIG).is_file():
            return candidate
    raise ConfigError(f"{path}: the adapter's base model {base!r} is not a local directory; copy it here or edit {ADAPTER_CONFIG}")


def load_adapter(path: str | Path, base_model, merge: bool = False, trainable: bool = False):
    """Put the adapter in ``path`` on ``base_model``; ``merge=True`` folds it in and returns a plain model."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(base_model, str(path), is_trainable=trainable)
    return model.merge_and_unload() if merge else model
