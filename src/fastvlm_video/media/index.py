"""What every frame source shares: the ``VideoIndex`` of a clip and the ``SizeFn`` that sizes its frames.

A leaf module (no imports from the rest of ``media``), so ``video.py`` can import its sources
(PyAV, decord, animations, frame folders) and they can import these types without an import circle.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

SizeFn = Callable[[int, int], tuple[int, int]]  # (display width, height) -> (width, height) to resize to


@dataclass
class VideoIndex:
    """What a clip holds, read from its packets (not from container metadata, which may lie)."""

    path: str
    timestamps: list[float]  # presentation time of every frame, seconds, sorted
    keyframes: list[int]  # indices (into ``timestamps``) of the keyframes
    width: int
    height: int
    pts: list[int] = field(default_factory=list, repr=False)  # raw stream timestamps, for seeking

    @property
    def num_frames(self) -> int:
        return len(self.timestamps)

    def keyframe_at_or_before(self, i: int) -> int:
        """Index of the last keyframe at or before frame ``i`` (frame 0 when there is none)."""
        pos = bisect.bisect_right(self.keyframes, i) - 1
        return self.keyframes[pos] if pos >= 0 else 0

    def is_keyframe(self, i: int) -> bool:
        pos = bisect.bisect_left(self.keyframes, i)
        return pos < len(self.keyframes) and self.keyframes[pos] == i
