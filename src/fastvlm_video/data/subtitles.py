"""Subtitles for the frames a model sees (Video-MME "with subtitles"): ``.srt`` cues at the sampled times.

A prompt that wants subtitles carries a slot, ``<subtitles:PATH.srt>``; ``load_sample_media`` fills it
once the frames are sampled (the same call that adds time instructions), with the text of every cue
that is on screen at one of the sampled frames (``start <= t < end``), in subtitle order, one per line.
That is the official Video-MME setting (the subtitles of the sampled frames only) and lmms-eval's
``videomme_w_subtitle`` selection, with the frames the model really sees instead of a fixed 32.
Cue text inside ``<font ...>...</font>`` (as Video-MME ships it) is taken from the tag, as lmms-eval does;
other tags are removed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .records import Message

SLOT = re.compile(r"<subtitles:([^<>\n]+\.srt)>")
_TIME = re.compile(r"(\d+):(\d+):(\d+)[,.](\d+)")
_FONT = re.compile(r"<font[^>]*>(.*?)</font>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class Cue:
    start: float  # seconds
    end: float
    text: str


def slot(path: str | Path) -> str:
    """The prompt text that ``fill_subtitles`` replaces with the subtitles of ``path`` at the sampled frames."""
    text = f"<subtitles:{path}>"
    if not SLOT.fullmatch(text):
        raise ValueError(f"a subtitle file must end in .srt and have no <, > or newline in its path: {path!r}")
    return text


def _seconds(stamp: str) -> float:
    h, m, s, ms = _TIME.match(stamp.strip()).groups()
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 10 ** len(ms)


def read_srt(path: str | Path) -> list[Cue]:
    """The cues of an ``.srt`` file (blocks of index, ``start --> end``, text lines), in file order."""
    cues = []
    text = Path(path).read_text(encoding="utf-8-sig", errors="replace").replace("\r\n", "\n")
    for block in re.split(r"\n\s*\n", text):
        lines = [line for line in block.strip().split("\n")]
        times = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if times is None or not all(_TIME.match(p.strip()) for p in lines[times].split("-->")[:2]):
            continue
        start, end = (_seconds(p) for p in lines[times].split("-->")[:2])
        body = " ".join(lines[times + 1 :])
        font = _FONT.search(body)
        words = (font.group(1) if font else _TAG.sub("", body)).strip()
        if words:
            cues.append(Cue(start, end, words))
    return cues


def subtitles_at(cues: Sequence[Cue], times: Sequence[float]) -> list[str]:
    """The text of each cue shown at one of ``times`` (seconds), in cue order."""
    return [c.text for c in cues if any(c.start <= t < c.end for t in times)]


def fill_subtitles(messages: Sequence[Message], timestamps: Sequence[Sequence[float] | None]) -> list[Message]:
    """Replace each subtitle slot with the cues at the first video's sampled ``timestamps`` (none: empty)."""
    times = next((t for t in timestamps if t), [])
    out = []
    for message in messages:
        if SLOT.search(message.content):
            message = Message(message.role, SLOT.sub(lambda m: "\n".join(subtitles_at(read_srt(m.group(1)), times)), message.content))
        out.append(message)
    return out


def filled_text(text: str, timestamps: Sequence[Sequence[float] | None]) -> str:
    """``text`` with its subtitle slots filled as ``fill_subtitles`` does (for showing the prompt the model saw)."""
    return fill_subtitles([Message("user", text)], timestamps)[0].content if SLOT.search(text) else text
