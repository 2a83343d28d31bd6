"""fastvlm-video: fine-tune FastVLM (FastViTHD + Qwen2) on videos, images and text; predict and evaluate.

The model is the stock ``transformers`` ``FastVlmForConditionalGeneration``: a video of T sampled
frames is T images, each ``<image>`` placeholder expanded to T x (S/64)^2 image tokens.
"""

from .errors import ConfigError, FastVlmVideoError, MediaError, RecordError, TooManySkippedSamples
from .media.video import VideoClip, is_video_file, load_video_frames, load_video_tensor
from .model.frames import flatten_frames
from .video_config import VideoConfig

__version__ = "0.1.0"


def load(path, device: str = "auto", **kwargs):
    """A ``Predictor`` for a checkpoint directory: ``fastvlm_video.load(DIR).ask("clip.mp4", "What happens?")``."""
    from .infer.predictor import load as _load

    return _load(path, device=device, **kwargs)


__all__ = [
    "ConfigError", "FastVlmVideoError", "MediaError", "RecordError", "TooManySkippedSamples",
    "VideoClip", "VideoConfig", "flatten_frames", "is_video_file", "load", "load_video_frames", "load_video_tensor",
]  # fmt: skip
