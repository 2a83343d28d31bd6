"""Frame cache: every media item's sampled frames, decoded once at a run's video settings, read back.

A cache is a directory of plain files, so it can be copied or synced to shared or object storage
and read by any number of DataLoader workers, processes and nodes at once (readers only map and
read; nothing is locked):

    cache.json         format version, the video settings and the frame codec (one set per directory)
    shard-<id>.bin     frames back to back, cut to their content box (pad bars are not stored):
                       raw uint8 (T, 3, h, w) bytes, or one PNG/JPEG per frame
    shard-<id>.json    that shard's index, written after its frames (atomic rename); a shard without
                       its index (an interrupted build) is ignored
    build_report.json  the last build: counts, and the records training would skip (broken media)

An entry is keyed by the media item (resolved path, kind, start, end) and the settings it was decoded
at (a sample's visual budget may lower its frames), and remembers the file's stamp: its size, its
mtime and a fingerprint of its content (a hash of the size and of the first and last 64 KiB,
``FINGERPRINT_BYTES``). ``FrameCache.get`` serves frames only while the file still has that stamp and
the run's video settings equal the directory's: a changed file is counted, logged and decoded again
by the caller; other settings are refused when the cache is opened. What is detected, precisely: any
change of size or mtime, and any change within the first or last 64 KiB even when size and mtime are
kept (``cp -p`` of an edited file, a re-encode of the same length); not detected: an edit confined to
the middle of a file larger than 128 KiB that keeps both its size and its mtime. The fingerprint is
computed once per file and process (again only when the file's size, mtime, ctime or inode change). Media the build
could not read are stored as broken entries and raise the same ``MediaError`` decoding raises, so a
run skips the same samples, with the same reasons, with or without the cache.

``ShardStore`` (read, refresh, stamp check) and ``ShardWriter`` (append, publish) are the layout's two
halves, shared with the feature cache (``feature_cache.py``).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..constants import CACHE_CODECS
from ..errors import ConfigError, MediaError
from ..media.frame_folder import folder_stamp
from ..media.kinds import is_frame_folder
from ..video_config import VideoConfig
from .media_source import LoadedMedia, media_kind
from .records import MediaRef, Sample

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: stamps carry a content fingerprint
MANIFEST = "cache.json"
BUILD_REPORT = "build_report.json"
CODECS = CACHE_CODECS
PROMPT_ONLY = {"time_instruction"}  # video settings that change the prompt, not the frames
Stamp = tuple[int, int, str] | None  # (size, mtime_ns, fingerprint) of a media file; None when it cannot be read
FINGERPRINT_BYTES = 64 * 1024  # read from each end of a file for its fingerprint
_fingerprints: dict[tuple, str] = {}  # (path, size, mtime, ctime, inode) -> fingerprint, in this process


def media_key(ref: MediaRef, video: VideoConfig) -> str:
    """What identifies one entry: the resolved file, the segment asked for and the decoding settings
    (a sample's visual budget may give its videos fewer frames than the run's). ``frames_fps`` times
    only frame folders, so it keys only them (a file's key is the same as before the setting existed)."""
    settings = video.decode_kwargs()
    if not is_frame_folder(ref.path):
        settings.pop("frames_fps")
    return json.dumps([str(Path(ref.path).resolve()), ref.kind, ref.start, ref.end, settings], sort_keys=True)


def sample_media(samples: Iterable[Sample], video: VideoConfig) -> dict[str, tuple[MediaRef, VideoConfig]]:
    """Every distinct media item of ``samples`` with the settings ``load_sample_media`` decodes it at, by key."""
    found: dict[str, tuple[MediaRef, VideoConfig]] = {}
    for sample in samples:
        settings = video.for_sample([media_kind(ref) for ref in sample.media])
        for ref in sample.media:
            found.setdefault(media_key(ref, settings), (ref, settings))
    return found


def file_stamp(path: str | Path) -> Stamp:
    """(size, mtime in ns, content fingerprint) of a file, or ``None`` when it is missing or unreadable;
    for a folder of frames, (total size, a fingerprint of every file's name, size and mtime): ``folder_stamp``.

    The fingerprint (``fingerprint``) is remembered per process while the file's size, mtime, ctime and
    inode stay the same, so a lookup costs one ``stat`` after the first; ctime changes with any write,
    even one that restores the mtime, so a file edited during a run is read again. A folder of frames
    is stamped by its listing instead (total size and a fingerprint of every file's name, size and
    mtime: ``media.frame_folder.folder_stamp``), without reading its frames.
    """
    if is_frame_folder(path):
        return folder_stamp(path)
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    memo = (str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if memo not in _fingerprints:
        try:
            _fingerprints[memo] = fingerprint(path, st.st_size)
        except OSError:
            return None
    return st.st_size, st.st_mtime_ns, _fingerprints[memo]


def fingerprint(path: str | Path, size: int) -> str:
    """A hash of ``size`` and the file's first and last ``FINGERPRINT_BYTES`` (the whole file when smaller)."""
    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    with open(path, "rb") as f:
        digest.update(f.read(FINGERPRINT_BYTES))
        if size > FINGERPRINT_BYTES:
            f.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
            digest.update(f.read(FINGERPRINT_BYTES))
    return digest.hexdigest()


def write_json_atomic(path: Path, data: dict) -> None:
    """Write ``data`` as JSON so that readers see either nothing or the whole file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def read_manifest(directory: str | Path) -> dict:
    """``cache.json`` of a cache directory; ``ConfigError`` naming what to do when it is not one."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ConfigError(
            f"{directory} is not a frame cache (no {MANIFEST}): build one with "
            f"`fastvlm-video cache --data ... --media_folder ... --out {directory}`, or drop --frame_cache"
        )
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT_VERSION:
        raise ConfigError(f"{path}: frame cache format {manifest.get('format')} is not {FORMAT_VERSION}; rebuild it")
    return manifest


def check_settings(directory: str | Path, built: dict, video: VideoConfig) -> None:
    """Refuse a cache built at other video settings than this run's (frames would differ)."""
    wanted = asdict(video)
    changed = {
        f.name: (built.get(f.name), wanted[f.name])
        for f in fields(VideoConfig)
        if f.name not in PROMPT_ONLY and built.get(f.name, f.default) != wanted[f.name]  # a field added later: its default
    }
    if changed:
        diff = ", ".join(f"{name}: cache {old!r} vs run {new!r}" for name, (old, new) in changed.items())
        raise ConfigError(
            f"frame cache {directory} was built with other video settings ({diff}): rebuild it with "
            "`fastvlm-video cache` and this run's frame flags into a new --out, or drop --frame_cache"
        )


def load_index(directory: Path) -> dict[str, dict]:
    """Every complete shard's entries by media key; a later build's entry replaces an earlier one."""
    shards = []
    for path in directory.glob("shard-*.json"):
        shards.append(json.loads(path.read_text()))
    entries: dict[str, dict] = {}
    for shard in sorted(shards, key=lambda s: s["seq"]):
        for entry in shard["entries"]:
            entries[entry["key"]] = {**entry, "shard": shard["name"]}
    return entries


def content_box(frames: torch.Tensor) -> list[int]:
    """[y0, y1, x0, x1]: the smallest box holding every non-black pixel of (T, 3, S, S) frames.

    Outside it every pixel is 0 (the pad bars, or black edges of the picture itself), so storing
    the box alone and zero-filling the rest on reading is exact.
    """
    mask = frames.amax(dim=(0, 1)) > 0
    rows, cols = mask.any(dim=1).nonzero(), mask.any(dim=0).nonzero()
    if not len(rows):
        return [0, 1, 0, 1]
    return [int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1]


def decode_frames(blobs: np.ndarray | Iterable[np.ndarray], codec: str, shape: list[int], box: list[int]) -> torch.Tensor:
    """(T, 3, S, S) uint8 frames from the stored bytes of their content box: for raw, one array of
    all T frames; else one encoded image per frame."""
    y0, y1, x0, x1 = box
    frames = np.zeros(shape, dtype=np.uint8)
    if codec == "raw":  # one copy, straight from the (mapped) bytes into place
        np.copyto(frames[:, :, y0:y1, x0:x1], np.asarray(blobs).reshape(shape[0], shape[1], y1 - y0, x1 - x0))
    else:
        for t, blob in enumerate(blobs):
            with Image.open(io.BytesIO(blob)) as image:
                frames[t, :, y0:y1, x0:x1] = np.asarray(image.convert("RGB")).transpose(2, 0, 1)
    return torch.from_numpy(frames)


class ShardStore:
    """Read side shared by the frame and feature caches: a directory's published shards, mapped read-only.

    ``refresh`` picks up shards published since (by a build, or by a training run filling a cache).
    """

    name = "cache"  # for the log

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.entries = load_index(self.directory)
        self._indexes = {p.name for p in self.directory.glob("shard-*.json")}
        self.counts: Counter[str] = Counter()  # hit | broken | missing | stale, in this process
        self._maps: dict[str, np.memmap] = {}
        self._logged: set[str] = set()

    def __getstate__(self) -> dict:  # DataLoader workers map the shards themselves
        return {**self.__dict__, "_maps": {}}

    def __len__(self) -> int:
        return len(self.entries)

    def refresh(self) -> bool:
        """Load the shards published since this store last looked; ``True`` when there were any."""
        names = {p.name for p in self.directory.glob("shard-*.json")}
        if names <= self._indexes:
            return False
        self._indexes |= names
        self.entries = load_index(self.directory)
        return True

    def status(self, ref: MediaRef, key: str) -> tuple[str, dict | None]:
        """(status, entry) of ``key`` for the file of ``ref``: hit | broken | missing | stale; only stat's the file."""
        entry = self.entries.get(key)
        if entry is None:
            return "missing", None
        stamp = file_stamp(ref.path)
        if (tuple(entry["stamp"]) if entry["stamp"] else None) != stamp:
            return "stale", entry
        return ("broken" if "error" in entry else "hit"), entry

    def entry_bytes(self, entry: dict) -> np.ndarray:
        """An entry's stored bytes, as a view into its mapped shard."""
        offset = entry["offset"]
        return self._map(entry["shard"])[offset : offset + sum(entry["sizes"])]

    def _map(self, shard: str) -> np.memmap:
        if shard not in self._maps:
            self._maps[shard] = np.memmap(self.directory / f"{shard}.bin", dtype=np.uint8, mode="r")
        return self._maps[shard]

    def _note(self, path: str, status: str) -> None:
        if path in self._logged:
            return
        self._logged.add(path)
        if status == "stale":
            logger.warning("%s: %s changed since it was cached (size, mtime or content); decoding it", self.name, path)
        else:
            logger.info("%s: %s is not cached; decoding it", self.name, path)


class ShardWriter:
    """Appends entries to a new shard file and publishes its index every ``max_entries`` entries.

    Shard names are unique (time + random), so any number of processes may write into one directory.
    """

    def __init__(self, directory: Path, max_entries: int = 64):
        self.directory, self.max_entries = directory, max_entries
        self.name: str | None = None
        self.rows: list[dict] = []
        self.bytes_written = 0

    def add(self, key: str, stamp: Stamp, blobs: Iterable[bytes] = (), **meta) -> None:
        """One entry: ``blobs`` appended to the shard (its ``offset`` and ``sizes`` indexed), ``meta`` in its index row."""
        if self.name is None:
            self.name = f"shard-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
            self.file = open(self.directory / f"{self.name}.bin", "wb")  # noqa: SIM115 - closed in flush
        row = {"key": key, "stamp": stamp, **meta}
        blobs = list(blobs)
        if blobs:
            row["offset"] = self.file.tell()
            for blob in blobs:
                self.file.write(blob)
            row["sizes"] = [len(b) for b in blobs]
            self.bytes_written += sum(row["sizes"])
        self.rows.append(row)
        if len(self.rows) >= self.max_entries:
            self.flush()

    def flush(self) -> None:
        """Close the shard and publish its index (the entries become visible to readers)."""
        if self.name is None:
            return
        self.file.close()
        index = {"name": self.name, "seq": time.time_ns(), "entries": self.rows}
        write_json_atomic(self.directory / f"{self.name}.json", index)
        self.name, self.rows = None, []

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc) -> bool:
        self.flush()  # entries written completely before an interruption are kept
        return False


class FrameCache(ShardStore):
    """Read side of a cache directory, for one run's video settings (checked on opening)."""

    name = "frame cache"

    def __init__(self, directory: str | Path, video: VideoConfig):
        manifest = read_manifest(directory)
        check_settings(directory, manifest["video"], video)
        super().__init__(directory)
        self.video = video
        self.codec = manifest["codec"]

    def lookup(self, ref: MediaRef, video: VideoConfig) -> tuple[str, dict | None]:
        """(status, entry) of ``ref`` decoded at ``video``: hit | broken | missing | stale; only stat's the file."""
        return self.status(ref, media_key(ref, video))

    def get(self, ref: MediaRef, video: VideoConfig) -> LoadedMedia | None:
        """``ref`` decoded at ``video`` as ``load_media_item`` returns it, or ``None``: decode it instead.

        Raises the stored ``MediaError`` for media the build could not read.
        """
        status, entry = self.lookup(ref, video)
        self.counts[status] += 1
        if status == "hit":
            window = tuple(entry["window"]) if entry.get("window") is not None else None
            return LoadedMedia(self._frames(entry), entry["timestamps"], window)
        if status == "broken":
            raise MediaError(*entry["error"])
        self._note(ref.path, status)
        return None

    def coverage(self, samples: Iterable[Sample]) -> dict[str, int]:
        """How many distinct media items of ``samples`` are cached, broken, missing or stale (stat only)."""
        counts = Counter(self.lookup(ref, video)[0] for ref, video in sample_media(samples, self.video).values())
        return {status: counts.get(status, 0) for status in ("hit", "broken", "missing", "stale")}

    def describe(self, samples: Iterable[Sample]) -> str:
        """One line for the log: what this cache holds of these samples' media."""
        c = self.coverage(samples)
        line = f"frame cache {self.directory} ({self.codec}): {c['hit']} cached, {c['broken']} broken"
        if c["missing"] or c["stale"]:
            line += f"; {c['missing']} missing and {c['stale']} changed since caching will be decoded"
        return line

    def _frames(self, entry: dict) -> torch.Tensor:
        if self.codec == "raw":  # one contiguous copy out of the mapping
            return decode_frames(self.entry_bytes(entry), "raw", entry["shape"], entry["box"])
        data, offset, sizes = self._map(entry["shard"]), entry["offset"], entry["sizes"]
        starts = np.cumsum([offset, *sizes[:-1]])
        return decode_frames((data[s : s + n] for s, n in zip(starts, sizes)), self.codec, entry["shape"], entry["box"])


def open_frame_cache(directory: str | Path | None, video: VideoConfig, samples: Iterable[Sample] = ()) -> FrameCache | None:
    """The cache for ``--frame_cache`` (``None`` without one), its coverage of ``samples`` logged."""
    if not directory:
        return None
    cache = FrameCache(directory, video)
    logger.info("%s", cache.describe(samples))
    return cache
