"""``fastvlm-video cache``: decode every record's sampled frames once, into a frame cache directory.

Media are decoded with training's ``load_media_item`` at the settings ``load_sample_media`` gives
each sample (same sampler, decoder, pixels and visual budget) in worker
processes (``parallel_map``: progress bar, time limit per file). Frames go into shards whose index
is written after them, every ``shard_entries`` media, so an interrupted build keeps what it
finished: running the same command again skips every entry that is still fresh. Media that raise
``MediaError`` are stored as broken entries with their reason, and the records that use them are
reported exactly as ``check`` reports them and training skips them. Time-outs and unexpected errors
are reported but not stored (training would still try them).
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import torch
from PIL import Image

from ..constants import DEFAULT_JPEG_QUALITY  # noqa: F401  (re-exported)
from ..errors import ConfigError, MediaError
from ..video_config import VideoConfig
from .check import MediaJob, Problem, media_problems
from .media_source import load_media_item
from .frame_cache import (
    BUILD_REPORT,
    CODECS,
    FORMAT_VERSION,
    MANIFEST,
    ShardWriter,
    check_settings,
    content_box,
    file_stamp,
    load_index,
    sample_media,
    write_json_atomic,
)
from .parallel import parallel_map
from .records import MediaRef, Sample

logger = logging.getLogger(__name__)


@dataclass
class Encoded:
    """One media item's frames, encoded for storage (or the ``MediaError`` that reading it raised)."""

    shape: list[int] | None = None
    box: list[int] | None = None  # content box [y0, y1, x0, x1]; pixels outside it are 0
    timestamps: list[float] | None = None
    window: list[float] | None = None  # the clip's time window (s), for the time instruction
    blobs: list[bytes] = field(default_factory=list)
    error: tuple[str, str] | None = None  # MediaError (path, reason)


@dataclass
class BuildReport:
    directory: str
    media: int
    built: int
    reused: int
    broken: int
    failed: dict[str, str]  # media path -> reason, not stored (time-out, unexpected error)
    skipped_records: list[Problem]  # records training would skip, as `check` reports them
    bytes_written: int
    seconds: float

    def to_dict(self) -> dict:
        data = asdict(self)
        data["skipped_by_reason"] = dict(Counter(p.reason for p in self.skipped_records))
        return data


def encode_frames(frames: torch.Tensor, codec: str, quality: int = DEFAULT_JPEG_QUALITY) -> list[bytes]:
    """(T, 3, h, w) uint8 frames as stored bytes: raw (one blob), or one PNG / JPEG per frame.

    JPEG keeps full-resolution colour (4:4:4): 4:2:0 chroma subsampling blurs small coloured
    objects (max error 63 against 17 on the demo's 64 px frames at quality 95).
    """
    if codec == "raw":
        return [frames.contiguous().numpy().tobytes()]
    options = {"format": "PNG", "compress_level": 1} if codec == "png" else {"format": "JPEG", "quality": quality, "subsampling": 0}
    blobs = []
    for frame in frames.permute(0, 2, 3, 1).numpy():
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, **options)
        blobs.append(buffer.getvalue())
    return blobs


@dataclass(frozen=True)
class CacheJob:
    """One entry to build: a media item and the settings its samples decode it at."""

    key: str
    ref: MediaRef
    video: VideoConfig

    def __str__(self) -> str:
        return self.ref.path


def encode_media(job: CacheJob, codec: str, quality: int) -> Encoded:
    """Decode one media item as training does and encode its frames. Runs in a worker process."""
    try:
        item = load_media_item(job.ref, job.video)
    except MediaError as exc:
        return Encoded(error=(exc.path, exc.reason))
    for note in item.notes:  # the stored frames carry it; training from the cache does not see it again
        logger.warning("%s: %s", job.ref.path, note)
    frames = item.frames
    y0, y1, x0, x1 = box = content_box(frames)
    window = list(item.window) if item.window is not None else None
    return Encoded(list(frames.shape), box, item.timestamps, window, encode_frames(frames[:, :, y0:y1, x0:x1], codec, quality))


def prepare_directory(out: Path, video: VideoConfig, codec: str, quality: int) -> None:
    """Create the cache directory, or check an existing one was built with the same settings."""
    if codec not in CODECS:
        raise ConfigError(f"--codec must be one of {CODECS}, got {codec!r}")
    manifest = {"format": FORMAT_VERSION, "video": asdict(video), "codec": codec, "quality": quality if codec == "jpeg" else None}
    path = out / MANIFEST
    if path.is_file():
        built = json.loads(path.read_text())
        check_settings(out, built.get("video", {}), video)
        if (built.get("codec"), built.get("quality")) != (codec, manifest["quality"]):
            raise ConfigError(
                f"{out} holds {built.get('codec')} frames (quality {built.get('quality')}), not {codec} "
                f"(quality {manifest['quality']}): choose another --out or the same --codec/--quality"
            )
        for orphan in out.glob("shard-*.bin"):  # frames of an interrupted shard that never got its index
            if not orphan.with_suffix(".json").exists():
                orphan.unlink()
        return
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, manifest)


def build_cache(
    samples: list[Sample],
    video: VideoConfig,
    out: str | Path,
    codec: str = "raw",
    quality: int = DEFAULT_JPEG_QUALITY,
    workers: int = 1,
    timeout: float = 60.0,
    progress: bool = True,
    shard_entries: int = 64,
) -> BuildReport:
    """Cache every distinct media item of ``samples``; entries still fresh in ``out`` are kept."""
    started, out = time.perf_counter(), Path(out)
    prepare_directory(out, video, codec, quality)
    existing = load_index(out)
    jobs = [CacheJob(key, ref, settings) for key, (ref, settings) in sample_media(samples, video).items()]
    stamps = {job.key: file_stamp(job.ref.path) for job in jobs}  # before decoding: a file changed meanwhile reads as stale

    def fresh(job: CacheJob) -> bool:
        entry = existing.get(job.key)
        return entry is not None and (tuple(entry["stamp"]) if entry["stamp"] else None) == stamps[job.key]

    failures: dict[MediaJob, str] = {}  # by media, as `check` and training report them
    for job in filter(fresh, jobs):
        if "error" in existing[job.key]:
            failures[MediaJob.of(job.ref)] = str(MediaError(*existing[job.key]["error"]))
    todo = [job for job in jobs if not fresh(job)]
    failed: dict[str, str] = {}
    encode = partial(encode_media, codec=codec, quality=quality)
    with ShardWriter(out, shard_entries) as writer:
        for job, encoded, error in parallel_map(encode, todo, workers, timeout, desc="caching frames", progress=progress):
            if error is not None:
                failed[job.ref.path] = error
                continue
            if encoded.error is not None:
                writer.add(job.key, stamps[job.key], error=list(encoded.error))
                failures[MediaJob.of(job.ref)] = str(MediaError(*encoded.error))
            else:
                writer.add(job.key, stamps[job.key], encoded.blobs, shape=encoded.shape, box=encoded.box,
                           timestamps=encoded.timestamps, window=encoded.window)  # fmt: skip
    report = BuildReport(
        str(out), len(jobs), len(todo) - len(failed), len(jobs) - len(todo),
        len(failures), failed, media_problems(samples, failures),
        writer.bytes_written, round(time.perf_counter() - started, 2),
    )  # fmt: skip
    write_json_atomic(out / BUILD_REPORT, report.to_dict())
    return report


def format_report(report: BuildReport) -> str:
    """A few lines for the terminal."""
    lines = [
        f"{report.media} media: {report.built} decoded now, {report.reused} already cached, {report.broken} broken",
        f"{report.bytes_written / 1e6:.1f} MB written in {report.seconds:.1f} s",
    ]
    if report.skipped_records:
        lines.append(f"{len(report.skipped_records)} record(s) training will skip (broken media):")
        lines += [f"  {p}" for p in report.skipped_records[:10]]
    lines += [f"not cached (decoded during training): {path}: {reason}" for path, reason in report.failed.items()]
    return "\n".join(lines)
