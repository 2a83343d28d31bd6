"""Training records: LLaVA JSON/JSONL and the ``messages`` format, parsed into typed ``Sample``s.

LLaVA:    {"id", "image"|"video": str | [str], "conversations": [{"from": "human"|"gpt"|"system", "value"}]}
messages: {"id", "images"|"videos": [str], "messages": [{"role": "user"|"assistant"|"system", "content"}]}
The ``image`` key may hold a video (detected by extension), as FastVLM video forks do. A record may
carry ``start``/``end`` seconds to sample a segment of its video.

Rules shared by training and ``fastvlm-video check``: every media path must stay inside the media
folder (no ``../``, no absolute path elsewhere, no symlink out) unless ``allow_outside_media_folder``;
an explicit ``id`` may appear only once across the files loaded together; in JSONL, a line that is
not valid JSON is one invalid record (named by its line), not a lost file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..constants import IMAGE_TOKEN, VIDEO_TOKEN
from ..errors import RecordError
from ..media.video import is_video_file

ROLE_ALIASES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
PLACEHOLDER_RE = re.compile(f"{re.escape(IMAGE_TOKEN)}|{re.escape(VIDEO_TOKEN)}")


@dataclass(frozen=True)
class MediaRef:
    """One image or video a sample refers to."""

    path: str  # resolved against the media folder
    kind: str  # "video" | "image"
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str  # media placeholders normalised to "<image>"


@dataclass
class Sample:
    """A parsed record: messages (placeholders reconciled with media) and where it came from."""

    id: str
    messages: list[Message]
    media: list[MediaRef] = field(default_factory=list)
    source: str = ""
    index: int = 0

    @property
    def where(self) -> str:
        return f"{self.source}, record {self.index} (id {self.id!r})"


def iter_records(path: str | Path) -> Iterator[tuple[int, object]]:
    """``(index, record)`` of a JSON list or JSONL file.

    A JSONL line that is not valid JSON yields a ``RecordError`` (naming its line) in place of its
    record, so one bad line costs one record. A file that cannot be read at all raises.
    """
    path = Path(path)
    text = _read_text(path)
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecordError(str(path), None, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
        if not isinstance(records, list):
            raise RecordError(str(path), None, "expected a JSON list of records or JSONL (one record per line)")
        yield from enumerate(records)
        return
    index = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield index, json.loads(line)
        except json.JSONDecodeError as exc:
            yield index, RecordError(str(path), index, f"invalid JSON on line {lineno}: {exc.msg}")
        index += 1


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RecordError(str(path), None, "data file not found") from None
    except IsADirectoryError:
        raise RecordError(str(path), None, "is a directory, not a data file") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise RecordError(str(path), None, f"not valid UTF-8 at line {line} (byte {exc.start})") from None


def read_json_records(path: str | Path) -> list[object]:
    """Read a JSON list or a JSONL file; errors name the file and the line."""
    records = []
    for _, record in iter_records(path):
        if isinstance(record, RecordError):
            raise record
        records.append(record)
    return records


def parse_record(
    record: object, source: str, index: int, media_folder: str | Path = ".", allow_outside_media_folder: bool = False
) -> Sample:
    """Validate one record and turn it into a ``Sample``. Raises ``RecordError`` naming the problem."""
    if not isinstance(record, dict):
        raise RecordError(source, index, f"a record must be a JSON object, got {type(record).__name__}")
    record_id = str(record.get("id", index))

    def fail(reason: str) -> RecordError:
        return RecordError(source, index, reason, record_id)

    if "conversations" in record:
        turns, role_key, text_key = record["conversations"], "from", "value"
        media = _media_list(record, ("image", "video"), fail)
    elif "messages" in record:
        turns, role_key, text_key = record["messages"], "role", "content"
        media = _media_list(record, ("images", "videos", "image", "video"), fail)
    else:
        raise fail("no 'conversations' (LLaVA) or 'messages' key")
    if not isinstance(turns, list) or not turns:
        raise fail("the conversation must be a non-empty list of turns")

    messages = []
    for t, turn in enumerate(turns):
        if not isinstance(turn, dict) or role_key not in turn or text_key not in turn:
            raise fail(f"turn {t} must be an object with '{role_key}' and '{text_key}'")
        role = ROLE_ALIASES.get(turn[role_key]) if isinstance(turn[role_key], str) else None
        if role is None:
            raise fail(f"turn {t} has unknown role {turn[role_key]!r} (expected one of {sorted(ROLE_ALIASES)})")
        content = turn[text_key]
        if not isinstance(content, str):
            raise fail(f"turn {t}: '{text_key}' must be a string, got {type(content).__name__}")
        if role == "system" and t != 0:
            raise fail(f"turn {t}: a system message may only come first")
        messages.append(Message(role, PLACEHOLDER_RE.sub(IMAGE_TOKEN, content)))
    if not any(m.role == "assistant" for m in messages):
        raise fail("no assistant ('gpt') turn: nothing to learn from")
    if not any(m.role == "assistant" and m.content.strip() for m in messages):
        raise fail("every assistant turn is empty")
    start, end = _segment(record, fail)
    if not allow_outside_media_folder:
        for p in media:
            _check_inside(p, media_folder, fail)
    refs = [
        MediaRef(str(Path(media_folder) / p), "video" if is_video_file(p) else "image", start, end) for p in media
    ]
    return Sample(record_id, _reconcile_placeholders(messages, len(refs), fail), refs, source, index)


def _media_list(record: dict, keys: tuple[str, ...], fail) -> list[str]:
    paths: list[str] = []
    for key in keys:
        value = record.get(key)
        if value is None:
            continue
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(p, str) and p for p in items):
            raise fail(f"'{key}' must be a path or a list of paths")
        paths.extend(items)
    return paths


def _check_inside(path: str, media_folder: str | Path, fail) -> None:
    """A media path must resolve (symlinks followed) to a file inside the media folder."""
    folder = os.path.realpath(media_folder)
    target = os.path.realpath(os.path.join(media_folder, path))
    if os.path.commonpath([folder, target]) != folder:
        raise fail(
            f"media {path!r} is outside the media folder {str(media_folder)!r} (it resolves to {target}); "
            "fix the path or pass --allow_outside_media_folder"
        )


def _segment(record: dict, fail) -> tuple[float | None, float | None]:
    start, end = record.get("start"), record.get("end")
    for name, value in (("start", start), ("end", end)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise fail(f"'{name}' must be a non-negative number of seconds")
    if start is not None and end is not None and end <= start:
        raise fail(f"'end' ({end}) must be after 'start' ({start})")
    return start, end


def _reconcile_placeholders(messages: list[Message], num_media: int, fail) -> list[Message]:
    """One placeholder per media item, in user turns; none at all -> prepend them to the first user turn."""
    if any(m.role != "user" and IMAGE_TOKEN in m.content for m in messages):
        raise fail(f"a media placeholder ({IMAGE_TOKEN} / {VIDEO_TOKEN}) may only appear in user turns")
    found = sum(m.content.count(IMAGE_TOKEN) for m in messages)
    if found == num_media:
        return messages
    if found == 0:
        first_user = next((i for i, m in enumerate(messages) if m.role == "user"), None)
        if first_user is None:
            raise fail(f"{num_media} media item(s) but no user turn to attach them to")
        m = messages[first_user]
        messages = list(messages)
        messages[first_user] = Message(m.role, (IMAGE_TOKEN + "\n") * num_media + m.content)
        return messages
    raise fail(f"{found} media placeholder(s) in the text but {num_media} media item(s)")


def load_samples(
    paths: str | Path | list,
    media_folder: str | Path = ".",
    skip_invalid: bool = False,
    allow_outside_media_folder: bool = False,
) -> tuple[list[Sample], list[RecordError]]:
    """Parse every record of every data file.

    Invalid records are collected, not stopped at: with ``skip_invalid=False`` (the default, fail
    fast at start-up) one ``RecordError`` lists them all; otherwise they are returned beside the
    good samples so the caller can log and count them. A repeated explicit ``id`` (in any of the
    files) is an invalid record; its first occurrence is kept.
    """
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    samples: list[Sample] = []
    errors: list[RecordError] = []
    first_seen: dict[str, str] = {}
    for path in paths:
        try:
            records = list(iter_records(path))
        except RecordError as exc:  # the whole file is unreadable
            errors.append(exc)
            continue
        for i, record in records:
            try:
                if isinstance(record, RecordError):
                    raise record
                sample = parse_record(record, str(path), i, media_folder, allow_outside_media_folder)
                _claim_id(record, sample, first_seen)
                samples.append(sample)
            except RecordError as exc:
                errors.append(exc)
    if errors and not skip_invalid:
        shown = "\n  ".join(str(e) for e in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise RecordError(
            ", ".join(map(str, paths)),
            None,
            f"{len(errors)} invalid record(s):\n  {shown}{more}\n"
            "Fix them (`fastvlm-video check` lists every problem) or pass --skip_invalid_records.",
        )
    return samples, errors


def _claim_id(record: dict, sample: Sample, first_seen: dict[str, str]) -> None:
    """Explicit ids must be unique across the files loaded together (implicit ones are indices)."""
    if "id" not in record:
        return
    if sample.id in first_seen:
        raise RecordError(sample.source, sample.index, f"duplicate id (first seen in {first_seen[sample.id]})", sample.id)
    first_seen[sample.id] = f"{sample.source}, record {sample.index}"
