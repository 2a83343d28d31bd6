"""The thresholds of ``fastvlm-video clean`` (light: the command's flags take their defaults from here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    """What a usable clip needs; defaults suit ordinary camera footage."""

    min_short_side: int = 224
    min_brightness: float = 20.0
    max_brightness: float = 235.0
    min_sharpness: float = 50.0
    motion_threshold: float = 2.0  # mean |grey difference| (0-255) in the busiest tile that counts as motion
    min_motion_share: float = 0.2
