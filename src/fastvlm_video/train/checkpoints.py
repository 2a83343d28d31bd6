"""Checkpoints a run can trust: which one to resume from, where a run may write, and a full disk.

The Trainer writes ``checkpoint-N`` in place, ``trainer_state.json`` last; a kill or a full disk can
leave the newest folder half-written. A checkpoint counts as complete when it has no save marker, its
``trainer_state.json`` parses and its weights files are whole; resume falls back to the newest one that is.
"""

from __future__ import annotations

import errno
import json
import logging
import re
import shutil
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ConfigError, DiskFullError
from ..save_marker import is_incomplete

logger = logging.getLogger(__name__)

LATEST = ("true", "latest", "last")
WEIGHTS = ("model.safetensors", "adapter_model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def checkpoint_step(folder: Path) -> int:
    match = re.fullmatch(r"checkpoint-(\d+)", folder.name)
    return int(match.group(1)) if match else -1


def safetensors_problem(path: Path) -> str | None:
    """Why a ``.safetensors`` file is not whole (header unreadable or data cut short), or ``None``."""
    try:
        with path.open("rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(header_len))
    except (OSError, struct.error, ValueError) as exc:
        return f"{path.name} is unreadable ({exc})"
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if path.stat().st_size < 8 + header_len + end:
        return f"{path.name} is cut short"
    return None


def incomplete_reason(folder: Path) -> str | None:
    """Why ``folder`` cannot be resumed from, or ``None`` when it is complete."""
    if is_incomplete(folder):
        return "its save did not finish"
    try:
        json.loads((folder / "trainer_state.json").read_text())
    except FileNotFoundError:
        return "no trainer_state.json (written last)"
    except (OSError, ValueError):
        return "trainer_state.json is cut short"
    weights = [folder / name for name in WEIGHTS if (folder / name).is_file()]
    if not weights:
        return "no model weights"
    if weights[0].name.endswith(".index.json"):
        shards = set(json.loads(weights[0].read_text()).get("weight_map", {}).values())
        weights = [folder / shard for shard in sorted(shards)]
    for path in weights:
        if not path.is_file():
            return f"{path.name} is missing"
        if path.suffix == ".safetensors" and (problem := safetensors_problem(path)):
            return problem
    return None


def checkpoints_newest_first(run_dir: Path) -> list[Path]:
    found = [p for p in run_dir.glob("checkpoint-*") if p.is_dir() and checkpoint_step(p) >= 0]
    return sorted(found, key=checkpoint_step, reverse=True)


def latest_complete_checkpoint(run_dir: Path, below: int | None = None) -> Path | None:
    """The newest complete ``checkpoint-N`` in ``run_dir`` (N < ``below`` if given); each skipped one is logged."""
    for folder in checkpoints_newest_first(run_dir):
        if below is not None and checkpoint_step(folder) >= below:
            continue
        reason = incomplete_reason(folder)
        if reason is None:
            return folder
        logger.warning("not resuming from %s: %s (a save cut short); trying the previous checkpoint", folder, reason)
    return None


def resolve_resume(value: str | None, output_dir: str) -> str | None:
    """The checkpoint to resume from: ``latest``/``true`` = the newest complete one in ``output_dir``; a run
    folder = its newest complete one; a half-written checkpoint falls back to the previous complete one."""
    if value is None or value.lower() in ("", "false", "none"):
        return None
    path = Path(output_dir) if value.lower() in LATEST else Path(value)
    if not path.is_dir():
        raise ConfigError(f"--resume_from_checkpoint {value}: no such folder. Pass a checkpoint-N folder, or 'latest' for the newest in --output_dir")
    if checkpoint_step(path) < 0:  # a run folder
        found = latest_complete_checkpoint(path)
        if found is None:
            raise ConfigError(f"--resume_from_checkpoint {value}: no complete checkpoint-N folder in {path}")
    elif (reason := incomplete_reason(path)) is None:
        found = path
    else:
        logger.warning("not resuming from %s: %s (a save cut short)", path, reason)
        found = latest_complete_checkpoint(path.parent, below=checkpoint_step(path))
        if found is None:
            raise ConfigError(f"--resume_from_checkpoint {value}: {reason}, and {path.parent} holds no earlier complete checkpoint")
    logger.info("resuming from %s", found)
    return str(found)


def check_output_dir(output_dir: str, overwrite: bool, resuming: bool) -> None:
    """Fail at start-up when ``output_dir`` is a file, holds another run, or cannot be written."""
    path = Path(output_dir)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--output_dir {path} is a file, not a folder: choose another --output_dir")
    if path.is_dir() and any(path.iterdir()) and not (overwrite or resuming):
        raise ConfigError(
            f"--output_dir {path} already holds files (an earlier run?): pass --resume_from_checkpoint latest to "
            "continue it, --overwrite_output_dir true to write over it, or choose another --output_dir"
        )
    probe = path / ".write_test"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"--output_dir {path} cannot be written ({exc.strerror or exc}): choose a writable folder") from exc


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC anywhere in the chain, or torch's zip writer's short-write message ("unexpected pos")."""
    while exc is not None:
        text = str(exc)
        if getattr(exc, "errno", None) == errno.ENOSPC or "No space left" in text or "unexpected pos" in text:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@contextmanager
def disk_full_is_one_line(folder: Path, run_dir: Path, remove_partial: bool) -> Iterator[None]:
    """Turn a full-disk failure while saving ``folder`` into a ``DiskFullError`` naming the last complete
    checkpoint; ``remove_partial`` deletes the half-written ``folder`` (so it is never resumed from)."""
    try:
        yield
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        if remove_partial:
            shutil.rmtree(folder, ignore_errors=True)
        last = latest_complete_checkpoint(run_dir)
        raise DiskFullError(
            f"the disk is full: saving {folder} failed ({shutil.disk_usage(run_dir).free // 2**20} MiB free); "
            f"the last complete checkpoint is {last or 'none'}. Free space, then resume with --resume_from_checkpoint latest"
        ) from exc
