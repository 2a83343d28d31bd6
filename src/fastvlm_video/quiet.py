"""Quiet output for commands a person reads (``doctor``, ``predict``, ``serve``): no progress bars for
loading or writing weights, and no transformers / PEFT / timm warnings (e.g. "You are using a model of
type llava_qwen2 to instantiate a model of type ..." for an Apple checkpoint, which loads correctly).
``fastvlm-video -v COMMAND`` (debug logging) keeps them."""

from __future__ import annotations

import logging
import os
import warnings

LIBRARIES = ("transformers", "huggingface_hub", "peft", "timm", "accelerate", "torch")


def quiet_libraries() -> None:
    """Silence the libraries' progress bars, warnings and info logs (this package's own logging stays)."""
    if logging.getLogger().isEnabledFor(logging.DEBUG):  # `fastvlm-video -v`: show everything
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module=rf"{name}(\.|$)")
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
