"""fastvlm-video: fine-tune FastVLM (FastViTHD + Qwen2) on videos, images and text; predict and evaluate.

The model is the stock ``transformers`` ``FastVlmForConditionalGeneration``: a video of T sampled
frames is T images, each ``<image>`` placeholder expanded to T x (S/64)^2 image tokens.
"""

from importlib import import_module

from .errors import ConfigError, FastVlmVideoError, MediaError, RecordError, TooManySkippedSamples

__version__ = "0.1.0"

# Imported on first use (PEP 562): `import fastvlm_video` (and the CLI's argument parsing) stays free of torch.
_LAZY = {
    "VideoClip": "media.video", "is_video_file": "media.video", "load_video_frames": "media.video",
    "load_video_tensor": "media.video", "flatten_frames": "model.frames", "VideoConfig": "video_config",
}  # fmt: skip


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load(path, device: str = "auto", **kwargs):
    """A ``Predictor`` for a checkpoint directory: ``fastvlm_video.load(DIR).ask("clip.mp4", "What happens?")``."""
    from .infer.predictor import load as _load

    return _load(path, device=device, **kwargs)


__all__ = [
    "ConfigError", "FastVlmVideoError", "MediaError", "RecordError", "TooManySkippedSamples",
    "VideoClip", "VideoConfig", "flatten_frames", "is_video_file", "load", "load_video_frames", "load_video_tensor",
]  # fmt: skip
