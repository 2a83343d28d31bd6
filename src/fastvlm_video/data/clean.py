"""``fastvlm-video clean``: drop the videos (and images) a model should not learn from.

Each media file is sampled with training's frame sampler (``load_video_tensor``: the same frames
training takes, at the file's own resolution) and measured:

- size        the shorter side, in pixels
- brightness  mean grey level (0-255) over the sampled frames
- sharpness   variance of the Laplacian of the grey frames, averaged over frames (low = blurred;
              it grows with detail and resolution, so tune ``min_sharpness`` to your data)
- motion      share of consecutive sampled frames that differ somewhere: the frame is cut into
              MOTION_GRID x MOTION_GRID tiles and a pair moves when the mean absolute grey
              difference of its busiest tile exceeds ``motion_threshold`` (videos and animations).
              Measured locally, a small subject moving in a large still frame counts as motion;
              a whole-frame mean would dilute it below any threshold.

A record is kept when all its media pass (text-only records are kept). A per-file CSV gives the
measured values and the reasons for each rejection.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path

import numpy as np

from ..media.animation import is_animated_image
from ..media.image import load_image
from ..media.video import load_video_tensor
from ..video_config import VideoConfig
from .check import MediaJob
from .clean_thresholds import Thresholds
from .parallel import parallel_map
from .records import load_samples
from .subset import write_subset

logger = logging.getLogger(__name__)

GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 luma
MOTION_GRID = 8  # motion is measured per tile of a MOTION_GRID x MOTION_GRID grid over the frame


@dataclass
class Quality:
    """Measured values of one media file; ``motion_share`` is ``None`` for images."""

    width: int
    height: int
    brightness: float
    sharpness: float
    motion_share: float | None


@dataclass
class Verdict:
    job: MediaJob
    quality: Quality | None
    reasons: list[str]

    @property
    def kept(self) -> bool:
        return not self.reasons


def grey_frames(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> (T, H, W) float32 luma."""
    return frames.astype(np.float32) @ GREY_WEIGHTS


def laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of one (H, W) frame (interior pixels)."""
    if min(grey.shape) < 3:
        return 0.0
    lap = grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1] - 4 * grey[1:-1, 1:-1]
    return float(lap.var())


def tile_means(values: np.ndarray, grid: int = MOTION_GRID) -> np.ndarray:
    """(P, H, W) -> (P, g, g): the mean of each tile of a ``grid`` x ``grid`` cut (fewer tiles on tiny frames)."""
    edges = [np.linspace(0, n, min(grid, n) + 1).astype(int) for n in values.shape[1:]]
    sums = np.add.reduceat(np.add.reduceat(values, edges[0][:-1], axis=1), edges[1][:-1], axis=2)
    return sums / np.outer(np.diff(edges[0]), np.diff(edges[1]))


def motion_share(grey: np.ndarray, indices: Sequence[int], threshold: float) -> float:
    """Share of consecutive distinct sampled frames whose busiest tile's mean |difference| exceeds ``threshold``."""
    distinct = [i for i in range(len(indices)) if i == 0 or indices[i] != indices[i - 1]]
    if len(distinct) < 2:
        return 0.0
    g = grey[distinct]
    busiest = tile_means(np.abs(g[1:] - g[:-1])).max(axis=(1, 2))
    return float((busiest > threshold).mean())


def measure(job: MediaJob, video: VideoConfig, motion_threshold: float) -> Quality:
    """Sample a file as training does (full resolution) and measure it; raises ``MediaError``."""
    still = job.kind == "image" and not is_animated_image(job.path)
    if still:
        frames, indices = np.asarray(load_image(job.path))[None], [0]
    else:
        clip = load_video_tensor(
            job.path, num_frames=video.num_frames, image_size=None, frame_sampling=video.frame_sampling,
            backend=video.video_backend, fps=video.fps, max_frames=video.max_frames, start=job.start, end=job.end,
            frames_fps=video.frames_fps,
        )  # fmt: skip
        frames, indices = clip.frames.numpy(), clip.indices
    grey = grey_frames(frames)
    return Quality(
        width=int(frames.shape[2]),
        height=int(frames.shape[1]),
        brightness=round(float(grey.mean()), 2),
        sharpness=round(float(np.mean([laplacian_variance(g) for g in grey])), 2),
        motion_share=None if still else round(motion_share(grey, indices, motion_threshold), 3),
    )


def judge(q: Quality, t: Thresholds) -> list[str]:
    """The reasons to reject a file (empty: keep it)."""
    reasons = []
    if min(q.width, q.height) < t.min_short_side:
        reasons.append(f"too small: {q.width}x{q.height} (shorter side < {t.min_short_side})")
    if q.brightness < t.min_brightness:
        reasons.append(f"too dark: brightness {q.brightness:g} < {t.min_brightness:g}")
    if q.brightness > t.max_brightness:
        reasons.append(f"too bright: brightness {q.brightness:g} > {t.max_brightness:g}")
    if q.sharpness < t.min_sharpness:
        reasons.append(f"blurred: sharpness {q.sharpness:g} < {t.min_sharpness:g}")
    if q.motion_share is not None and q.motion_share < t.min_motion_share:
        reasons.append(f"static: {q.motion_share:.0%} of frame pairs move (< {t.min_motion_share:.0%})")
    return reasons


def clean_dataset(
    data_paths: Sequence[str | Path],
    media_folder: str | Path,
    output: str | Path,
    report: str | Path,
    video: VideoConfig,
    thresholds: Thresholds = Thresholds(),
    allow_outside_media_folder: bool = False,
    workers: int = 1,
    timeout: float = 60.0,
    progress: bool = True,
) -> list[Verdict]:
    """Measure every media file of the data, write the CSV ``report`` and the kept records to ``output``.

    ``output`` is a file for one data file, a folder for several. Invalid records (see ``check``)
    are dropped with a warning.
    """
    files = [str(p) for p in data_paths]
    samples, invalid = load_samples(files, media_folder, skip_invalid=True, allow_outside_media_folder=allow_outside_media_folder)
    for error in invalid:
        logger.warning("dropped invalid record (run `fastvlm-video check`): %s", error)
    jobs = list(dict.fromkeys(MediaJob.of(ref) for s in samples for ref in s.media))
    probe = partial(measure, video=video, motion_threshold=thresholds.motion_threshold)
    verdicts: dict[MediaJob, Verdict] = {}
    for job, quality, error in parallel_map(probe, jobs, workers, timeout, desc="measuring media", progress=progress):
        reasons = [f"unreadable: {error}"] if error else judge(quality, thresholds)
        verdicts[job] = Verdict(job, quality, reasons)
    ordered = [verdicts[j] for j in jobs]
    write_report(ordered, report)
    kept = [(s.source, s.index) for s in samples if all(verdicts[MediaJob.of(r)].kept for r in s.media)]
    write_subset(kept, files, output)
    rejected = sum(not v.kept for v in ordered)
    logger.info("%d of %d media file(s) rejected; %d of %d record(s) kept", rejected, len(ordered), len(kept), len(samples) + len(invalid))
    return ordered


def write_report(verdicts: list[Verdict], path: str | Path) -> Path:
    """One CSV row per media file: measured values, kept, reasons."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = [*(f.name for f in fields(MediaJob)), *(f.name for f in fields(Quality)), "kept", "reasons"]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for v in verdicts:
            values = asdict(v.quality) if v.quality else {}
            writer.writerow({**asdict(v.job), **values, "kept": v.kept, "reasons": "; ".join(v.reasons)})
    return path
