"""A header probe of every media file, cheap enough to run on a whole dataset before a model loads.

What it catches: a missing, unreadable, non-regular or empty (0-byte) file; a folder of frames
(a video) holding no image, with an unusable ``fps.txt``/``meta.json`` or an unreadable first frame
(its listing, sidecar and first frame's header are read, as decoding reads them); a video that FFmpeg cannot
open (no ``moov`` atom: a half-uploaded MP4, a text file named ``.mp4``) or that has no video stream
(audio only); an image whose header PIL cannot identify. What it does not catch: a file whose header
is intact but whose frames are not (a truncated tail with the index first): decoding finds those,
and training skips them then (``fastvlm-video check`` decodes every file up front).

Files are probed in threads (FFmpeg and PIL spend their time in I/O and C code). Results are cached
in a small JSON file keyed by the resolved path, size and mtime (``FASTVLM_VIDEO_PROBE_CACHE``; default
``~/.cache/fastvlm-video/media_probe.json``; ``off`` disables it), so a second start-up re-probes only
the files that changed. Cost per file: ``benchmarks/results/bench_probe.txt``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from ..errors import MediaError
from ..media.files import check_media_file
from ..media.frame_folder import folder_stamp
from ..media.kinds import is_frame_folder
from ..media.pyav_backend import _open_video
from ..media.video import read_media_index
from .records import MediaRef

logger = logging.getLogger(__name__)

CACHE_ENV = "FASTVLM_VIDEO_PROBE_CACHE"
MAX_CACHED = 200_000  # entries kept in the cache file (the newest)
MAX_THREADS = 8


def default_cache_path() -> Path | None:
    """The probe cache file, or ``None`` when ``FASTVLM_VIDEO_PROBE_CACHE=off``."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "off", "0", "none") else Path(value)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "fastvlm-video" / "media_probe.json"


def probe_file(path: str, kind: str) -> str | None:
    """``None`` when ``path``'s header is usable as a ``kind`` ("video" | "image"), else the reason."""
    try:
        if is_frame_folder(path):  # a folder of frames: its listing, its sidecar and its first frame's header
            read_media_index(path)
            return None
        check_media_file(path)
        if kind == "video":
            with _open_video(path):
                pass
        else:
            with Image.open(path) as image:
                if not image.size[0] or not image.size[1]:
                    return f"{path}: image of size {image.size}"
    except MediaError as exc:
        return str(exc)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        return f"{path}: cannot read image ({exc.__class__.__name__}: {exc})"
    return None


def _stamp(path: str) -> list[int] | None:
    if is_frame_folder(path):  # a folder's own mtime misses an edited frame: stamp its listing
        stamp = folder_stamp(path)
        return list(stamp) if stamp else None
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return [st.st_size, st.st_mtime_ns]


class ProbeCache:
    """Probe outcomes by (resolved path, kind), valid while the file keeps its size and mtime."""

    def __init__(self, path: Path | None):
        self.path = path
        self.entries: dict[str, list] = {}
        self.changed = False
        if path is not None and path.is_file():
            try:
                self.entries = json.loads(path.read_text())
            except (OSError, ValueError):
                logger.debug("probe cache %s unreadable; starting a new one", path)

    @staticmethod
    def key(path: str, kind: str) -> str:
        return f"{kind}:{os.path.realpath(path)}"

    def get(self, path: str, kind: str) -> tuple[bool, str | None]:
        """(found, reason) for a file whose size and mtime are those cached."""
        entry = self.entries.get(self.key(path, kind))
        stamp = _stamp(path)
        if entry is None or stamp is None or entry[:2] != stamp:
            return False, None
        return True, entry[2]

    def put(self, path: str, kind: str, reason: str | None) -> None:
        stamp = _stamp(path)
        if stamp is not None:
            key = self.key(path, kind)
            self.entries.pop(key, None)  # re-inserted last: the newest are kept
            self.entries[key] = [*stamp, reason]
            self.changed = True

    def save(self) -> None:
        if self.path is None or not self.changed:
            return
        entries = dict(list(self.entries.items())[-MAX_CACHED:])
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(entries))
            os.replace(tmp, self.path)
        except OSError as exc:  # a read-only home must not stop a run
            logger.debug("probe cache %s not written: %s", self.path, exc)


def probe_media(
    refs: Iterable[MediaRef], cache_path: Path | None | str = "default", threads: int | None = None, progress: bool = True
) -> dict[tuple[str, str], str]:
    """Probe each distinct (path, kind) once; returns the failures: (path, kind) -> reason."""
    cache = ProbeCache(default_cache_path() if cache_path == "default" else (Path(cache_path) if cache_path else None))
    files = list(dict.fromkeys((ref.path, ref.kind) for ref in refs))
    failures: dict[tuple[str, str], str] = {}
    todo = []
    for path, kind in files:
        found, reason = cache.get(path, kind)
        if not found:
            todo.append((path, kind))
        elif reason is not None:
            failures[(path, kind)] = reason
    if todo:
        workers = max(1, min(threads or MAX_THREADS, len(todo)))
        bar = tqdm(total=len(todo), desc="probing media", unit="file", disable=not progress or len(todo) < 200, leave=False)
        with ThreadPoolExecutor(workers) as pool:
            for (path, kind), reason in zip(todo, pool.map(lambda job: probe_file(*job), todo)):
                bar.update(1)
                cache.put(path, kind, reason)
                if reason is not None:
                    failures[(path, kind)] = reason
        bar.close()
    cache.save()
    logger.debug("probed %d media files (%d from the cache): %d unusable", len(files), len(files) - len(todo), len(failures))
    return failures
