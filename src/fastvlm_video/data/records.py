"""Training records: LLaVA JSON/JSONL and the ``messages`` format, parsed into typed ``Sample``s.

LLaVA:    {"id", "image"|"video": str | [str], "conversations": [{"from": "human"|"gpt"|"system", "value"}]}
messages: {"id", "images"|"videos": [str], "messages": [{"role": "user"|"assistant"|"system", "content"}]}
The ``image`` key may hold a video (detected by extension), as FastVLM video forks do. A record may
carry ``start``/``end`` seconds to sample a segment of its video. ``content`` may also be a list of
parts, as transformers chat templates and TRL write it: ``{"type": "text", "text": ...}`` is text,
``{"type": "image"}`` / ``{"type": "video"}`` a placeholder of that type (rendered ``<image>\n``, as
the chat template saved with checkpoints renders it).

Placeholders and media are paired in text order. A record that lists both images and videos and
whose text uses ``<video>`` pairs each placeholder with the next item of its own type (the key it
is listed under); otherwise ``<image>`` stands for any media (LLaVA's convention) and the media are
taken as listed, images first. Text without placeholders gets one ``<image>\n`` per media item,
as listed, prepended to the first user turn.

Preference records (``train --method dpo``; docs/post_training.md) add ``chosen`` and ``rejected``
answers to a prompt that ends with the user's turn: the prompt as ``conversations`` / ``messages``
(as above, without the final answer), ``prompt`` (a string, or a list of messages as TRL writes it) or
``question`` (RLAIF-V); each answer a string, an assistant message, or a list holding one (TRL's
conversational format). The chosen answer becomes the sample's last assistant turn (so SFT on such a
record trains on it), the rejected one is kept beside it (``Sample.rejected``).

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
from ..media.kinds import media_type

ROLE_ALIASES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
PLACEHOLDER_RE = re.compile(f"{re.escape(IMAGE_TOKEN)}|{re.escape(VIDEO_TOKEN)}")
PLACEHOLDER_OF = {"image": IMAGE_TOKEN, "video": VIDEO_TOKEN}  # a media type -> its placeholder
MEDIA_TYPE_OF_KEY = {"image": "image", "images": "image", "video": "video", "videos": "video"}
INLINE_MEDIA_KEYS = ("path", "url", "image", "video")  # HF parts may carry their file; ours list it apart


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
    content: str  # media placeholders normalised to "<image>" (once paired with their media)


@dataclass
class Sample:
    """A parsed record: messages (placeholders reconciled with media) and where it came from."""

    id: str
    messages: list[Message]
    media: list[MediaRef] = field(default_factory=list)
    source: str = ""
    index: int = 0
    rejected: str | None = None  # preference records: the dispreferred answer (the chosen one ends ``messages``)

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
    # "\n" only: str.splitlines() also splits on U+2028, U+2029 and U+0085, legal inside JSON strings
    for lineno, line in enumerate(text.split("\n"), start=1):
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

    preference = "chosen" in record or "rejected" in record
    if preference and not ("chosen" in record and "rejected" in record):
        raise fail(f"a preference record needs both 'chosen' and 'rejected' (only {'chosen' if 'chosen' in record else 'rejected'!r} given)")
    if "conversations" in record:
        turns, role_key, text_key = record["conversations"], "from", "value"
        media = _media_list(record, ("image", "video"), fail)
    elif "messages" in record:
        turns, role_key, text_key = record["messages"], "role", "content"
        media = _media_list(record, ("images", "videos", "image", "video"), fail)
    elif preference and ("prompt" in record or "question" in record):
        key = "prompt" if "prompt" in record else "question"
        prompt = record[key]
        turns = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        role_key, text_key = "role", "content"
        media = _media_list(record, ("images", "videos", "image", "video"), fail)
    else:
        raise fail("no 'conversations' (LLaVA) or 'messages' key" + (" (or 'prompt' / 'question' with chosen/rejected)" if preference else ""))
    if not isinstance(turns, list) or not turns:
        raise fail("the conversation must be a non-empty list of turns")

    messages = []
    for t, turn in enumerate(turns):
        if not isinstance(turn, dict) or role_key not in turn or text_key not in turn:
            raise fail(f"turn {t} must be an object with '{role_key}' and '{text_key}'")
        role = ROLE_ALIASES.get(turn[role_key]) if isinstance(turn[role_key], str) else None
        if role is None:
            raise fail(f"turn {t} has unknown role {turn[role_key]!r} (expected one of {sorted(ROLE_ALIASES)})")
        content = _content_text(turn[text_key], f"turn {t}", text_key, fail)
        if role == "system" and t != 0:
            raise fail(f"turn {t}: a system message may only come first")
        messages.append(Message(role, content))
    rejected = None
    if preference:
        if messages[-1].role != "user":
            raise fail("a preference record's prompt must end with the user's turn: 'chosen' and 'rejected' are the two answers to it")
        chosen, rejected = (_answer_text(record[key], key, fail) for key in ("chosen", "rejected"))
        if chosen.strip() == rejected.strip():
            raise fail("'chosen' and 'rejected' are the same answer: the pair teaches nothing")
        if PLACEHOLDER_RE.search(rejected):
            raise fail(f"a media placeholder ({IMAGE_TOKEN} / {VIDEO_TOKEN}) may only appear in user turns, not in 'rejected'")
        messages.append(Message("assistant", chosen))
    if not any(m.role == "assistant" for m in messages):
        raise fail("no assistant ('gpt') turn: nothing to learn from")
    if not any(m.role == "assistant" and m.content.strip() for m in messages):
        raise fail("every assistant turn is empty")
    start, end = _segment(record, fail)
    if not allow_outside_media_folder:
        for p, _ in media:
            _check_inside(p, media_folder, fail)
    messages, paths = _pair_media(messages, media, fail)
    refs = [MediaRef(str(Path(media_folder) / p), media_type(Path(media_folder) / p), start, end) for p in paths]
    return Sample(record_id, messages, refs, source, index, rejected)


def _answer_text(answer: object, key: str, fail) -> str:
    """A preference answer: a string, an assistant message, or a list holding one (TRL); non-empty."""
    if isinstance(answer, list) and len(answer) == 1 and isinstance(answer[0], dict):
        answer = answer[0]
    if isinstance(answer, dict):
        role = answer.get("role", answer.get("from"))
        if ROLE_ALIASES.get(role) != "assistant":
            raise fail(f"'{key}' must be the assistant's answer (role 'assistant'), got role {role!r}")
        answer = answer.get("content", answer.get("value"))
        text = _content_text(answer, f"'{key}'", "content", fail)
    elif isinstance(answer, str):
        text = answer
    else:
        raise fail(f"'{key}' must be a string, an assistant message or a list holding one; got {type(answer).__name__}")
    if not text.strip():
        raise fail(f"'{key}' is empty")
    return text


def _content_text(content: object, where: str, key: str, fail) -> str:
    """A turn's text: a string, or HF-style parts joined as ``CHAT_TEMPLATE`` renders them."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise fail(f"{where}: '{key}' must be a string or a list of parts, got {type(content).__name__}")
    pieces = []
    for p, part in enumerate(content):
        here = f"{where}, part {p}"
        if not isinstance(part, dict):
            raise fail(f"{here}: a part must be an object such as {{'type': 'text', 'text': '...'}}, got {type(part).__name__}")
        kind = part.get("type")
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise fail(f"{here}: a text part needs a string 'text'")
            pieces.append(part["text"])
        elif kind in PLACEHOLDER_OF:
            inline = next((k for k in INLINE_MEDIA_KEYS if part.get(k) is not None), None)
            if inline is not None:
                raise fail(f"{here}: the {kind} part carries its file in {inline!r}; list the file under '{kind}s' "
                           f"and keep the part as a placeholder {{'type': '{kind}'}}")  # fmt: skip
            pieces.append(PLACEHOLDER_OF[kind] + "\n")
        elif kind is None:
            raise fail(f"{here}: no 'type' (expected 'text', 'image' or 'video')")
        else:
            raise fail(f"{here}: unknown part type {kind!r} (expected 'text', 'image' or 'video')")
    return "".join(pieces)


def _media_list(record: dict, keys: tuple[str, ...], fail) -> list[tuple[str, str]]:
    """``(path, type)`` of every media item, in key order; the type is the key's (image or video)."""
    media: list[tuple[str, str]] = []
    for key in keys:
        value = record.get(key)
        if value is None:
            continue
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(p, str) and p for p in items):
            raise fail(f"'{key}' must be a path or a list of paths")
        for p in items:
            if "\0" in p:  # os calls would raise a bare ValueError later, naming nothing
                raise fail(f"media path {p!r} contains a NUL byte")
        media.extend((p, MEDIA_TYPE_OF_KEY[key]) for p in items)
    return media


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


def _pair_media(messages: list[Message], media: list[tuple[str, str]], fail) -> tuple[list[Message], list[str]]:
    """Pair placeholders (user turns only) with media; returns the messages with placeholders normalised
    to ``<image>`` and the media paths in placeholder order (the order the encoder expands them in)."""
    if any(m.role != "user" and PLACEHOLDER_RE.search(m.content) for m in messages):
        raise fail(f"a media placeholder ({IMAGE_TOKEN} / {VIDEO_TOKEN}) may only appear in user turns")
    found = [p for m in messages for p in PLACEHOLDER_RE.findall(m.content)]
    if not found and media:
        first_user = next((i for i, m in enumerate(messages) if m.role == "user"), None)
        if first_user is None:
            raise fail(f"{len(media)} media item(s) but no user turn to attach them to")
        m = messages[first_user]
        messages = list(messages)
        messages[first_user] = Message(m.role, (IMAGE_TOKEN + "\n") * len(media) + m.content)
        return messages, [p for p, _ in media]
    by_type = {t: [p for p, kind in media if kind == t] for t in PLACEHOLDER_OF}
    if VIDEO_TOKEN in found and all(by_type.values()):  # typed text, both types listed: pair by type
        wanted = {t: found.count(PLACEHOLDER_OF[t]) for t in PLACEHOLDER_OF}
        if any(wanted[t] != len(by_type[t]) for t in PLACEHOLDER_OF):
            raise fail(
                f"{wanted['image']} {IMAGE_TOKEN} placeholder(s) for {len(by_type['image'])} image(s) and "
                f"{wanted['video']} {VIDEO_TOKEN} placeholder(s) for {len(by_type['video'])} video(s); "
                "with both images and videos listed, each placeholder takes the next item of its own type"
            )
        queues = {PLACEHOLDER_OF[t]: iter(paths) for t, paths in by_type.items()}
        paths = [next(queues[p]) for p in found]
    elif len(found) == len(media):
        paths = [p for p, _ in media]
    else:
        raise fail(f"{len(found)} media placeholder(s) in the text but {len(media)} media item(s)")
    return [Message(m.role, PLACEHOLDER_RE.sub(IMAGE_TOKEN, m.content)) for m in messages], paths


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
