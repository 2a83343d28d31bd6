"""Which parts of FastVLM train: LLM, projector, vision tower (LLaVA's flags, clearer aliases)."""

from __future__ import annotations

import logging
import types

from torch import nn

logger = logging.getLogger(__name__)


def keep_in_eval_mode(module: nn.Module) -> None:
    """Pin ``module`` in eval mode even when the Trainer calls ``model.train()``.

    A frozen FastViTHD must not update its BatchNorm running statistics.
    """
    module.eval()
    module.train = types.MethodType(lambda self, mode=True: nn.Module.train(self, False), module)


def set_trainable(model, train_llm: bool, train_projector: bool, train_vision_tower: bool) -> dict[str, int]:
    """Freeze/unfreeze the three parts; returns trainable parameter counts per part."""
    parts = {
        "llm": (model.model.language_model, train_llm),
        "lm_head": (model.lm_head, train_llm),
        "projector": (model.model.multi_modal_projector, train_projector),
        "vision_tower": (model.model.vision_tower, train_vision_tower),
    }
    counts = {}
    for name, (module, trainable) in parts.items():
        module.requires_grad_(trainable)
        if not trainable and name == "vision_tower":
            keep_in_eval_mode(module)
        counts[name] = sum(p.numel() for p in module.parameters() if p.requires_grad)
    logger.info("trainable parameters: %s", ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    return counts
