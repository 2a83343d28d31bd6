"""Typed errors: each message names the file, the record and the reason."""

from __future__ import annotations


class FastVlmVideoError(Exception):
    """Base class of every error this package raises on purpose."""


class MediaError(FastVlmVideoError):
    """A video or image cannot be read. ``path`` and ``reason`` are kept for counting and reports."""

    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class RecordError(FastVlmVideoError):
    """A data record is malformed (schema, placeholders, roles). Names file, record index and id."""

    def __init__(self, source: str, index: int | None, reason: str, record_id: str | None = None):
        self.source, self.index, self.reason, self.record_id = str(source), index, reason, record_id
        where = self.source if index is None else f"{self.source}, record {index}"
        if record_id is not None:
            where += f" (id {record_id!r})"
        super().__init__(f"{where}: {reason}")


class ConfigError(FastVlmVideoError, ValueError):
    """A command-line or YAML setting is invalid or inconsistent with the checkpoint (a ``ValueError`` too)."""


class TooManySkippedSamples(FastVlmVideoError):
    """More samples were skipped (broken media, too long) than the run tolerates."""


class TrainingInterrupted(FastVlmVideoError):
    """Ctrl-C (SIGINT) stopped a run; the message names the last complete checkpoint and how to resume."""

    exit_code = 130  # the shell's code for a process stopped by SIGINT


class DiskFullError(FastVlmVideoError):
    """A save failed because the disk is full; the message names the last complete checkpoint."""


class UnreadableMediaError(MediaError):
    """A media file cannot be read at all: missing, empty, a directory, not a video, no video stream,
    truncated or corrupt beyond decoding. Raised in bounded time; ``reason`` says which."""
