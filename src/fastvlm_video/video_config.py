"""The video settings that travel with a checkpoint (``video_config.json``), read back by predict/evaluate."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from .constants import (ASPECT_MODES, DEFAULT_FRAMES_FPS, FRAME_SAMPLING_MODES, VIDEO_BACKENDS, VIDEO_CONFIG_NAME,
                        VISION_STRIDE)
from .errors import ConfigError


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
    min_frames: int = 1  # frame_sampling="fps": short clips still give this many frames
    max_visual_tokens: int = 0  # per-sample budget of image tokens (0: none); see ``for_sample``
    time_instruction: bool = False  # tell the model when its frames were taken (data/time_prompt.py)
    frames_fps: float = DEFAULT_FRAMES_FPS  # a folder of frames without fps.txt/meta.json: its frames per second

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
        if isinstance(self.frames_fps, bool) or not isinstance(self.frames_fps, (int, float)) or not (
            math.isfinite(self.frames_fps) and self.frames_fps > 0
        ):
            raise ConfigError(f"frames_fps (--frames_fps) must be a number of frames per second > 0, got {self.frames_fps!r}")
        if self.frame_sampling not in FRAME_SAMPLING_MODES:
            raise ConfigError(f"frame_sampling must be one of {FRAME_SAMPLING_MODES}, got {self.frame_sampling!r}")
        if self.aspect not in ASPECT_MODES:
            raise ConfigError(f"aspect must be one of {ASPECT_MODES}, got {self.aspect!r}")
        if self.video_backend not in VIDEO_BACKENDS:
            raise ConfigError(f"video_backend must be one of {VIDEO_BACKENDS}, got {self.video_backend!r}")
        _whole("min_frames (--min_frames)", self.min_frames, minimum=1)
        _whole("max_visual_tokens (--max_visual_tokens)", self.max_visual_tokens, minimum=0)

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
            "min_frames": self.min_frames,
            "frames_fps": self.frames_fps,
        }

    @property
    def tokens_per_frame(self) -> int:
        return (self.image_size // VISION_STRIDE) ** 2

    @property
    def frames_per_video(self) -> int:
        """The most frames one video gives (N, or the fps cap)."""
        return self.max_frames if self.frame_sampling == "fps" else self.num_frames

    def for_sample(self, kinds: Sequence[str]) -> VideoConfig:
        """The settings for one sample whose media are ``kinds`` ("video" / "image"), within ``max_visual_tokens``.

        Policy: images keep their one frame; the videos share what is left of the budget equally, so
        each gets fewer frames (never below ``min_frames``); the frame size is the run's (one tensor
        per batch), lowered at start-up when even ``min_frames`` cannot fit (``budget.tokens.fit_frame_size``).
        Without a budget, or when the sample fits, the settings are returned unchanged.
        """
        videos = sum(kind == "video" for kind in kinds)
        if not self.max_visual_tokens or not videos:
            return self
        spare = self.max_visual_tokens // self.tokens_per_frame - (len(kinds) - videos)
        frames = max(self.min_frames, spare // videos)
        if frames >= self.frames_per_video:
            return self
        return replace(self, num_frames=frames, max_frames=frames, min_frames=min(self.min_frames, frames))

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
