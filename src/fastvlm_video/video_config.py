"""The video settings that travel with a checkpoint (``video_config.json``), read back by predict/evaluate."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .constants import VIDEO_CONFIG_NAME, VISION_STRIDE
from .errors import ConfigError
from .media.sampling import FRAME_SAMPLING_MODES
from .media.transforms import ASPECT_MODES
from .media.video import VIDEO_BACKENDS


@dataclass
class VideoConfig:
    """How a video becomes frames for this model: T frames of S x S pixels, K = (S/64)^2 tokens each."""

    num_frames: int = 8
    frame_sampling: str = "uniform"  # uniform | fps | keyframe
    fps: float = 1.0  # frame_sampling="fps"
    max_frames: int = 64  # cap for frame_sampling="fps"
    image_size: int = 1024
    aspect: str = "pad"  # pad (FastVLM) | crop (CLIP) | resize
    video_backend: str = "auto"

    def __post_init__(self) -> None:
        """Every setting checked at start-up; a ``ConfigError`` names the field, its flag and what to use."""
        _whole("num_frames (--num_video_frames)", self.num_frames, minimum=1)
        _whole("max_frames (--max_frames)", self.max_frames, minimum=1)
        _whole("image_size (--image_size)", self.image_size, minimum=None)
        if self.image_size < VISION_STRIDE or self.image_size % VISION_STRIDE:
            raise ConfigError(
                f"image_size (--image_size) must be a positive multiple of {VISION_STRIDE} (FastViTHD stride), "
                f"got {self.image_size}: use e.g. 512 or 1024 (the released models' size)"
            )
        if isinstance(self.fps, bool) or not isinstance(self.fps, (int, float)) or not math.isfinite(self.fps):
            raise ConfigError(f"fps (--video_fps) must be a finite number of frames per second, got {self.fps!r}")
        if self.fps <= 0:
            raise ConfigError(f"fps (--video_fps) must be > 0, got {self.fps}")
        if self.frame_sampling not in FRAME_SAMPLING_MODES:
            raise ConfigError(f"frame_sampling must be one of {FRAME_SAMPLING_MODES}, got {self.frame_sampling!r}")
        if self.aspect not in ASPECT_MODES:
            raise ConfigError(f"aspect must be one of {ASPECT_MODES}, got {self.aspect!r}")
        if self.video_backend not in VIDEO_BACKENDS:
            raise ConfigError(f"video_backend must be one of {VIDEO_BACKENDS}, got {self.video_backend!r}")

    def decode_kwargs(self) -> dict:
        """The keyword arguments of ``load_video_tensor`` these settings stand for."""
        return {
            "num_frames": self.num_frames,
            "image_size": self.image_size,
            "frame_sampling": self.frame_sampling,
            "aspect": self.aspect,
            "backend": self.video_backend,
            "fps": self.fps,
            "max_frames": self.max_frames,
        }

    @property
    def tokens_per_frame(self) -> int:
        return (self.image_size // VISION_STRIDE) ** 2

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / VIDEO_CONFIG_NAME
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> VideoConfig | None:
        """The settings saved beside a checkpoint, or ``None`` when it has none."""
        path = Path(directory) / VIDEO_CONFIG_NAME
        if not path.is_file():
            return None
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(path.read_text()).items() if k in known})


def _whole(name: str, value: object, minimum: int | None) -> None:
    """``value`` must be an int (not a bool, not a float) and at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
