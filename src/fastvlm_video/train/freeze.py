"""Which parts of FastVLM train: LLM, projector, vision tower (LLaVA's flags, clearer aliases)."""

from __future__ import annotations

import logging
import types

from torch import nn

logger = logging.getLogger(__name__)

BATCHNORM_MODES = ("frozen", "batch")


def keep_in_eval_mode(module: nn.Module) -> None:
    """Pin ``module`` in eval mode even when the Trainer calls ``model.train()``.

    A frozen FastViTHD must not update its BatchNorm running statistics.
    """
    module.eval()
    module.train = types.MethodType(lambda self, mode=True: nn.Module.train(self, False), module)


def freeze_batchnorm_statistics(module: nn.Module) -> int:
    """Pin every BatchNorm layer of ``module`` in eval mode: its running statistics are used and never
    updated, while its weight and bias still train. Returns the number of layers.

    FastViTHD keeps 44 BatchNorm layers; trained on batch statistics (a batch = a few correlated frames)
    they behave differently at inference, which uses the running statistics.
    """
    layers = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for layer in layers:
        keep_in_eval_mode(layer)
    return len(layers)


def set_trainable(
    model, train_llm: bool, train_projector: bool, train_vision_tower: bool, tower_batchnorm: str = "frozen"
) -> dict[str, int]:
    """Freeze/unfreeze the three parts; returns trainable parameter counts per part.

    A trained tower's BatchNorm keeps its running statistics (``tower_batchnorm="frozen"``) unless
    ``"batch"`` asks for batch statistics (LLaVA's behaviour; train and inference then differ).
    """
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
        elif name == "vision_tower" and tower_batchnorm == "frozen":
            n = freeze_batchnorm_statistics(module)
            logger.info("vision tower trains; its %d BatchNorm layers keep their running statistics (--vision_tower_batchnorm frozen)", n)
        counts[name] = sum(p.numel() for p in module.parameters() if p.requires_grad)
    logger.info("trainable parameters: %s", ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    return counts
