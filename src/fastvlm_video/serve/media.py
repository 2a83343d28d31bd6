"""Where the server may read videos from: one allowed folder (read-only) and its own upload folder.

Every reference a client sends (a relative path, ``file://`` URL, ``upload://<name>`` or a base64
``data:`` URL) resolves to a real file inside one of the two, or raises ``RequestError``: symlinks and
``..`` that lead outside are refused, uploads and data URLs are size-limited.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..media.kinds import FRAME_EXTENSIONS
from ..media.video import VIDEO_EXTENSIONS, is_video_file

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
MIME_EXTENSIONS = {"video/mp4": ".mp4", "video/quicktime": ".mov", "video/webm": ".webm", "video/x-matroska": ".mkv",
                   "image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}  # fmt: skip
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[^,;]*)*;base64,", re.IGNORECASE)


class RequestError(Exception):
    """A client mistake: answered with ``status`` and this message, never a crash."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid_request"):
        super().__init__(message)
        self.status, self.code = status, code


def is_media_name(name: str) -> bool:
    return is_video_file(name) or Path(name).suffix.lower() in IMAGE_EXTENSIONS


def _inside(root: Path, path: Path) -> bool:
    root_real, real = os.path.realpath(root), os.path.realpath(path)
    return os.path.commonpath([root_real, real]) == root_real


class MediaStore:
    def __init__(self, allowed: str | Path, uploads: str | Path, max_bytes: int):
        self.allowed, self.uploads, self.max_bytes = Path(allowed).resolve(), Path(uploads).resolve(), max_bytes
        self.uploads.mkdir(parents=True, exist_ok=True)

    @property
    def limit_text(self) -> str:
        return f"{self.max_bytes / 2**20:g} MiB"

    def listing(self, query: str = "", limit: int = 500) -> dict:
        """Videos (frame folders, listed ``name/``, among them), then images, in the allowed folder whose
        path contains ``query`` (case-insensitive).

        Hidden files and folders (a name starting with ".") are skipped; links leading out are not listed.
        Returns ``{"videos": [relative paths], "total": matches, "truncated": total > limit}``.
        """
        query, matches, folders = query.casefold(), [], set()
        for root, dirs, files in os.walk(self.allowed):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            rel_root = Path(root).relative_to(self.allowed).as_posix()
            if rel_root != "." and any(Path(n).suffix.lower() in FRAME_EXTENSIONS for n in files if not n.startswith(".")):
                if query in rel_root.casefold() and _inside(self.allowed, Path(root)):
                    folders.add(rel_root + "/")  # a folder of frames is a video (media/frame_folder.py)
                    matches.append(rel_root + "/")
            for name in files:
                path = Path(root, name)
                rel = path.relative_to(self.allowed).as_posix()
                if name.startswith(".") or not is_media_name(name) or query not in rel.casefold():
                    continue
                if path.is_file() and _inside(self.allowed, path):
                    matches.append(rel)
        matches.sort(key=lambda rel: (not (is_video_file(rel) or rel in folders), rel))
        return {"videos": matches[:limit], "total": len(matches), "truncated": len(matches) > limit}

    def public(self, text: str) -> str:
        """``text`` with the server's folders replaced by names a client may see (no absolute paths)."""
        for root, shown in ((self.uploads, "upload://"), (self.allowed, "")):
            for form in {str(root), os.path.realpath(root)}:
                text = text.replace(form + os.sep, shown).replace(form, shown or self.allowed.name)
        return text

    def resolve(self, ref: str) -> Path:
        """A client's media reference -> a file inside the allowed or upload folder."""
        if not isinstance(ref, str) or not ref.strip():
            raise RequestError("empty media reference")
        if _DATA_URL.match(ref):
            return self.save_data_url(ref)
        parsed = urlparse(ref)
        if parsed.scheme == "upload":
            root, rel = self.uploads, unquote(parsed.netloc + parsed.path)
        elif parsed.scheme == "file":
            root, rel = self.allowed, unquote(parsed.path)
        elif parsed.scheme in ("", "path"):
            root, rel = self.allowed, ref
            if "%" in ref and not (root / ref).exists():  # a percent-encoded path ("my%20clip.mp4")
                rel = unquote(ref)
        else:
            raise RequestError(f"unsupported media URL scheme {parsed.scheme!r}: send a path inside the allowed folder, "
                               "upload://NAME or a base64 data: URL (the server never downloads)")  # fmt: skip
        shown = repr(ref) if len(ref) <= 200 else f"{ref[:100]!r}... ({len(ref)} characters)"
        try:
            path = Path(rel) if Path(rel).is_absolute() else root / rel
            if not _inside(root, path):
                raise RequestError(f"{shown} is outside the allowed folder", status=403, code="forbidden_path")
            if path.is_dir() and path != root:
                return path  # a folder of frames is a video (media/frame_folder.py)
            if not path.is_file():
                raise RequestError(f"{shown}: no such file in the allowed folder", status=404, code="not_found")
        except (OSError, ValueError):  # a name too long for the file system, a NUL byte, ...
            raise RequestError(f"{shown} is not a usable file name") from None
        if not is_media_name(path.name):
            raise RequestError(f"{shown} is not a video or image file (by its extension)")
        return path

    def save_upload(self, filename: str, chunks: Iterable[bytes]) -> str:
        """Store an upload under a fresh name; returns its ``upload://`` reference. Over the limit -> 413."""
        suffix = Path(filename or "").suffix.lower()
        if not is_media_name(f"x{suffix}"):
            raise RequestError(f"{filename!r}: upload a video ({', '.join(sorted(VIDEO_EXTENSIONS))}) or an image")
        name = f"{uuid.uuid4().hex}{suffix}"
        self._write(self.uploads / name, chunks)
        return f"upload://{name}"

    def save_frames(self, frames: object, fps: object, max_frames: int = 64) -> Path:
        """A live window: base64 image data URLs -> a frame folder (a video, ``fps.txt`` giving its times)."""
        if not isinstance(frames, list) or not 0 < len(frames) <= max_frames or not all(isinstance(f, str) for f in frames):
            raise RequestError(f"'frames' must be a list of 1..{max_frames} image data: URLs")
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= 240:
            raise RequestError("'fps' must be a number in (0, 240]: the frames' rate")
        folder = self.uploads / f"frames-{uuid.uuid4().hex}"
        folder.mkdir()
        try:
            for i, url in enumerate(frames):
                path = self.save_data_url(url)
                if path.suffix not in IMAGE_EXTENSIONS:
                    raise RequestError(f"frames[{i}] is not an image data: URL")
                path.rename(folder / f"frame_{i:04d}{path.suffix}")
            (folder / "fps.txt").write_text(f"{float(fps)!r}\n")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return folder

    def save_data_url(self, url: str) -> Path:
        match = _DATA_URL.match(url)
        if match is None:
            raise RequestError("expected a base64 data: URL (data:TYPE;base64,...)")
        suffix = MIME_EXTENSIONS.get((match.group("mime") or "").lower())
        if suffix is None:
            raise RequestError(f"data URL type {match.group('mime')!r}: use one of {sorted(MIME_EXTENSIONS)}")
        payload = url[match.end():]
        if len(payload) * 3 // 4 > self.max_bytes:
            raise RequestError(f"media larger than the {self.limit_text} limit", status=413, code="too_large")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError("the data URL is not valid base64") from None
        path = self.uploads / f"{uuid.uuid4().hex}{suffix}"
        self._write(path, [data])
        return path

    def _write(self, path: Path, chunks: Iterable[bytes]) -> None:
        size = 0
        try:
            with open(path, "wb") as f:
                for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise RequestError(f"upload larger than the {self.limit_text} limit "
                                           "(serve --max_upload_mb)", status=413, code="too_large")  # fmt: skip
                    f.write(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if size == 0:
            path.unlink(missing_ok=True)
            raise RequestError("the upload is empty")
