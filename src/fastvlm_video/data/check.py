"""``fastvlm-video check``: find every problem of a dataset in minutes, before a run of hours.

Each step reuses what training uses, so check flags exactly what training would drop or skip:

1. records  ``load_samples``: schema, roles, placeholders, media folder containment, duplicate ids,
            unreadable files and invalid JSON (with the line).
2. leakage  the same media file used by two data files (train vs val/test).
3. media    every referenced file opens and yields its frames (training's ``load_media``: same
            sampler, same decoder), in worker processes, time-limited per file; duration, fps,
            resolution and codec are gathered on the way.
4. tokens   given a tokenizer, every sample's length with its visual tokens (T x K per media)
            against ``model_max_length``, as the training encoder sees it.

Frames are decoded at ``CHECK_IMAGE_SIZE``: which frames, and how they are decoded, is training's;
only the last resize is smaller, which fails the same way and costs far less.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

import av
from PIL import Image
from tqdm.auto import tqdm

from ..errors import MediaError, RecordError
from ..media.kinds import is_frame_folder, is_video_file
from ..media.video import read_media_index
from ..video_config import VideoConfig
from .chat import ChatEncoder, SampleTooLong
from .dataset import load_media_item, media_kind
from .parallel import parallel_map
from .records import MediaRef, Sample, load_samples

logger = logging.getLogger(__name__)

CHECK_IMAGE_SIZE = 64
SHOWN_LONGEST = 10


@dataclass(frozen=True)
class MediaJob:
    """One media item to open: a file, and the segment a record asks for."""

    path: str
    kind: str  # "video" | "image"
    start: float | None = None
    end: float | None = None

    @classmethod
    def of(cls, ref: MediaRef) -> MediaJob:
        return cls(ref.path, ref.kind, ref.start, ref.end)

    def __str__(self) -> str:
        return self.path


@dataclass
class MediaInfo:
    """What opening one media item found."""

    kind: str
    frames: int  # T, the frames the model gets
    width: int
    height: int
    duration: float | None = None  # seconds
    fps: float | None = None
    codec: str | None = None
    notes: list[str] = field(default_factory=list)  # what training would use degraded (check's warnings)


@dataclass
class Problem:
    """One error or warning, naming the data file, the record and the reason."""

    file: str
    record: int | None
    id: str | None
    kind: str  # file | record | leak | media | too_long | truncated
    reason: str

    def __str__(self) -> str:
        where = self.file if self.record is None else f"{self.file}, record {self.record}"
        where += f" (id {self.id!r})" if self.id is not None else ""
        return f"{where}: {self.reason}"

    @classmethod
    def of_sample(cls, sample: Sample, kind: str, reason: str) -> Problem:
        return cls(sample.source, sample.index, sample.id, kind, reason)

    @classmethod
    def of_record_error(cls, error: RecordError) -> Problem:
        return cls(error.source, error.index, error.record_id, "file" if error.index is None else "record", error.reason)


@dataclass
class CheckReport:
    files: list[str]
    num_records: int
    good: list[Sample]
    errors: list[Problem]
    warnings: list[Problem] = field(default_factory=list)
    media: dict = field(default_factory=dict)
    tokens: dict | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "files": self.files,
            "records": self.num_records,
            "good_records": len(self.good),
            "errors_by_kind": dict(Counter(p.kind for p in self.errors)),
            "errors": [asdict(p) for p in self.errors],
            "warnings": [asdict(p) for p in self.warnings],
            "media": self.media,
            "tokens": self.tokens,
            "seconds": round(self.seconds, 2),
        }

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path


def run_check(
    data_paths: Sequence[str | Path],
    media_folder: str | Path,
    video: VideoConfig,
    encoder: ChatEncoder | None = None,
    model_max_length: int = 2048,
    allow_outside_media_folder: bool = False,
    workers: int = 1,
    timeout: float = 60.0,
    progress: bool = True,
) -> CheckReport:
    """Check data files against the media folder; ``encoder`` (with a tokenizer) adds the token counts."""
    started = time.perf_counter()
    files = [str(p) for p in data_paths]
    samples, record_errors = load_samples(files, media_folder, skip_invalid=True, allow_outside_media_folder=allow_outside_media_folder)
    errors = [Problem.of_record_error(e) for e in record_errors]
    errors += empty_files(files, samples, record_errors)
    errors += find_leaks(samples)
    infos, failures = probe_all(samples, video, workers, timeout, progress)
    errors += media_problems(samples, failures)
    flagged = {(p.file, p.record) for p in errors}
    good = [s for s in samples if (s.source, s.index) not in flagged]
    warnings = media_warnings(good, infos)
    tokens = None
    if encoder is not None:
        tokens, too_long, truncated = count_tokens(good, infos, encoder, model_max_length, progress)
        warnings += truncated
        errors += too_long
        dropped = {(p.file, p.record) for p in too_long}
        good = [s for s in good if (s.source, s.index) not in dropped]
    order = {f: i for i, f in enumerate(files)}
    errors.sort(key=lambda p: (order.get(p.file, len(order)), -1 if p.record is None else p.record))
    num_records = len(samples) + sum(e.index is not None for e in record_errors)
    return CheckReport(files, num_records, good, errors, warnings, media_stats(infos), tokens, time.perf_counter() - started)


def empty_files(files: Sequence[str], samples: list[Sample], record_errors: Sequence[RecordError]) -> list[Problem]:
    """One error per data file that holds no record at all (an empty split: train and evaluate refuse it)."""
    used = {s.source for s in samples} | {e.source for e in record_errors}
    return [
        Problem(f, None, None, "file", "holds no records (an empty split?): training and evaluation refuse it; "
                "re-run `fastvlm-video prepare` with more data or other --split fractions, or leave this file out")
        for f in files if f not in used
    ]  # fmt: skip


def find_leaks(samples: list[Sample]) -> list[Problem]:
    """Records whose media file an earlier data file already uses (the same file, however spelled)."""
    owner: dict[str, str] = {}
    problems = []
    for sample in samples:
        for ref in sample.media:
            key = str(Path(ref.path).resolve())
            first = owner.setdefault(key, sample.source)
            if first != sample.source:
                problems.append(Problem.of_sample(sample, "leak", f"media {ref.path} is also used by {first} (leakage between data files)"))
                break
    return problems


def probe_media(job: MediaJob, video: VideoConfig) -> MediaInfo:
    """Open one media item the way training does; raises ``MediaError``. Runs in a worker process.

    What training would use degraded is kept in ``MediaInfo.notes`` (reported as warnings): frames
    standing in for a truncated tail, and a video file holding a single frame (a still image renamed
    to a video extension: every sampled frame is the same picture, no motion to learn).
    """
    ref = MediaRef(job.path, job.kind, job.start, job.end)
    item = load_media_item(ref, video)
    if media_kind(ref) == "image":
        with Image.open(job.path) as image:
            return MediaInfo("image", item.num_frames, *image.size)
    index = read_media_index(job.path, video.frames_fps)
    ts = index.timestamps
    step = (ts[-1] - ts[0]) / (len(ts) - 1) if len(ts) > 1 else None
    notes = list(item.notes)
    if index.num_frames == 1 and is_video_file(job.path):
        notes.append(f"a video with a single frame (codec {codec_name(job.path)}): a still image with a video extension? "
                     f"All {item.num_frames} sampled frames are the same picture")  # fmt: skip
    return MediaInfo(
        "video",
        item.num_frames,
        index.width,
        index.height,
        duration=round(ts[-1] + (step or 0.0), 3),
        fps=round(1 / step, 3) if step else None,
        codec="frames" if is_frame_folder(job.path) else codec_name(job.path),
        notes=notes,
    )


def media_warnings(samples: list[Sample], infos: dict[MediaJob, MediaInfo]) -> list[Problem]:
    """One warning per record and degradation of its media (kind ``media_degraded``), naming the file."""
    return [
        Problem.of_sample(sample, "media_degraded", f"{job.path}: {note}")
        for sample in samples
        for job in dict.fromkeys(map(MediaJob.of, sample.media))
        if job in infos
        for note in infos[job].notes
    ]


def codec_name(path: str) -> str:
    try:
        with av.open(path, metadata_errors="ignore") as container:
            return container.streams.video[0].codec_context.name
    except (av.error.FFmpegError, IndexError) as exc:
        raise MediaError(path, f"cannot read the codec ({exc})") from exc


def probe_all(
    samples: list[Sample], video: VideoConfig, workers: int, timeout: float, progress: bool
) -> tuple[dict[MediaJob, MediaInfo], dict[MediaJob, str]]:
    """Open every distinct media item once, in parallel: (infos, reasons of the failures)."""
    jobs = list(dict.fromkeys(MediaJob.of(ref) for s in samples for ref in s.media))
    probe = partial(probe_media, video=replace(video, image_size=CHECK_IMAGE_SIZE))
    infos: dict[MediaJob, MediaInfo] = {}
    failures: dict[MediaJob, str] = {}
    for job, info, error in parallel_map(probe, jobs, workers, timeout, desc="checking media", progress=progress):
        if error is None:
            infos[job] = info
        else:
            failures[job] = error
    return infos, failures


def media_problems(samples: list[Sample], failures: dict[MediaJob, str]) -> list[Problem]:
    """One problem per record whose media failed (the first failing media named)."""
    problems = []
    for sample in samples:
        reason = next((failures[j] for j in map(MediaJob.of, sample.media) if j in failures), None)
        if reason is not None:
            problems.append(Problem.of_sample(sample, "media", reason))
    return problems


def count_tokens(
    samples: list[Sample], infos: dict[MediaJob, MediaInfo], encoder: ChatEncoder, max_length: int, progress: bool = True
) -> tuple[dict, list[Problem], list[Problem]]:
    """Token counts as training encodes them: (summary, too long to train on, truncated)."""
    rows, errors, warnings = [], [], []
    for sample in tqdm(samples, desc="counting tokens", unit="sample", disable=not progress, leave=False):
        frames = [infos[MediaJob.of(ref)].frames for ref in sample.media]
        length = len(encoder.encode(sample.messages, frames).input_ids)
        rows.append({"file": sample.source, "record": sample.index, "id": sample.id, "tokens": length, "visual_tokens": sum(frames) * encoder.tokens_per_frame})
        if length <= max_length:
            continue
        try:
            encoder.encode(sample.messages, frames, max_length=max_length)
        except SampleTooLong as exc:
            errors.append(Problem.of_sample(sample, "too_long", str(exc)))
        else:
            warnings.append(Problem.of_sample(sample, "truncated", f"{length} tokens: the text is cut to model_max_length={max_length}"))
    lengths = [r["tokens"] for r in rows]
    summary = {
        "model_max_length": max_length,
        "tokens_per_frame": encoder.tokens_per_frame,
        "max": max(lengths, default=0),
        "mean": round(statistics.fmean(lengths), 1) if lengths else 0,
        "over_max_length": sum(n > max_length for n in lengths),
        "longest": sorted(rows, key=lambda r: -r["tokens"])[:SHOWN_LONGEST],
    }
    return summary, errors, warnings


def media_stats(infos: dict[MediaJob, MediaInfo]) -> dict:
    """Counts and spreads over distinct files: duration, fps, resolution, codec."""
    by_path = {job.path: info for job, info in infos.items()}
    videos = [i for i in by_path.values() if i.kind == "video"]
    return {
        "videos": len(videos),
        "images": len(by_path) - len(videos),
        "duration_s": _spread([v.duration for v in videos if v.duration is not None]),
        "fps": _spread([v.fps for v in videos if v.fps is not None]),
        "resolution": dict(Counter(f"{i.width}x{i.height}" for i in by_path.values()).most_common(10)),
        "codec": dict(Counter(v.codec for v in videos).most_common()),
    }


def _spread(values: list[float]) -> dict | None:
    if not values:
        return None
    return {"min": min(values), "median": round(statistics.median(values), 3), "max": max(values), "total": round(sum(values), 1)}


def format_summary(report: CheckReport, max_errors: int = 50) -> str:
    """The report as a short text table for the terminal."""
    bad = len({(p.file, p.record) for p in report.errors})
    lines = [
        f"{len(report.files)} data file(s), {report.num_records} records: {len(report.good)} good, "
        f"{len(report.errors)} error(s) in {bad} place(s), {len(report.warnings)} warning(s)  [{report.seconds:.1f} s]",
    ]
    for kind, n in sorted(Counter(p.kind for p in report.errors).items()):
        lines.append(f"  {kind:<12} {n:>7} error(s)")
    m = report.media
    lines.append(f"media: {m.get('videos', 0)} video(s), {m.get('images', 0)} image(s)")
    for key, label in (("duration_s", "duration (s)"), ("fps", "fps")):
        if m.get(key):
            s = m[key]
            lines.append(f"  {label:<13} min {s['min']:<8g} median {s['median']:<8g} max {s['max']:g}")
    for key in ("resolution", "codec"):
        if m.get(key):
            lines.append(f"  {key:<13} " + ", ".join(f"{k} ({v})" for k, v in m[key].items()))
    if report.tokens:
        t = report.tokens
        lines.append(f"tokens: max {t['max']}, mean {t['mean']}, {t['over_max_length']} over model_max_length={t['model_max_length']} ({t['tokens_per_frame']} per frame)")
        for row in t["longest"][:5]:
            lines.append(f"  {row['tokens']:>7} ({row['visual_tokens']} visual)  {row['file']}, record {row['record']} (id {row['id']!r})")
    for title, problems in (("errors", report.errors), ("warnings", report.warnings)):
        if problems:
            lines.append(f"{title}:")
            lines += [f"  [{p.kind}] {p}" for p in problems[:max_errors]]
            if len(problems) > max_errors:
                lines.append(f"  ... and {len(problems) - max_errors} more (see the JSON report)")
    lines.append("OK: no errors" if report.ok else f"FAILED: {len(report.errors)} error(s)")
    return "\n".join(lines)
