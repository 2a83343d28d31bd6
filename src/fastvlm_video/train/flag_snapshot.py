"""The ``train`` parser's flags, saved: ``train --help`` and a mistyped train flag answer without importing
transformers (its ``TrainingArguments`` make up most of the flags; importing it takes seconds).

A snapshot records the transformers version and a hash of ``train/args.py`` it was made from, and is used
only when both match what is installed. The packaged one (``train_flags.json``, made with the transformers
this project was tested with) comes first; for another transformers version, the first ``train`` run (the
real parser, seconds) saves one to ``~/.cache/fastvlm-video/train_flags/`` (``FASTVLM_VIDEO_FLAG_CACHE``: another
folder, or ``off``), so later ones answer fast too. Regenerate the packaged one after changing
``train/args.py``: ``python -m fastvlm_video.train.flag_snapshot`` (tests/test_cli_light.py checks it).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import uuid
from pathlib import Path

SNAPSHOT = Path(__file__).with_name("train_flags.json")
ARGS_SOURCE = Path(__file__).with_name("args.py")
CACHE_ENV = "FASTVLM_VIDEO_FLAG_CACHE"
EXTRA_FLAGS = ("--config",)  # taken out of argv before the parser sees it (train/args.py _expand_config)
KEYS = ("option_strings", "dest", "nargs", "const", "default", "choices", "required", "help", "metavar")


def native(value) -> bool:
    """Whether JSON gives ``value`` back unchanged (so ``--help`` prints it the same)."""
    if value is None or type(value) in (bool, int, float, str):
        return True
    return type(value) is list and all(native(v) for v in value)


def plain(key: str, value):
    """``value`` of an action's ``key`` as JSON keeps it for ``--help``: choices as a list of strings,
    other values as they are when JSON keeps them, else their ``str`` (as argparse prints them)."""
    if key == "choices" and value is not None:
        return [str(choice) for choice in value]
    if key == "option_strings":
        return list(value)
    return value if native(value) else str(value)


def fingerprint() -> dict:
    """What the snapshot depends on: the transformers version and our argument dataclasses."""
    try:
        version = importlib.metadata.version("transformers")
    except importlib.metadata.PackageNotFoundError:
        version = None
    return {"transformers": version, "args_sha256": hashlib.sha256(ARGS_SOURCE.read_bytes()).hexdigest()}


def describe(parser: argparse.ArgumentParser) -> dict:
    """The parser as plain data: its actions (kind, flags, help, defaults, ...) and the fingerprint."""
    kinds = {cls: name for name, cls in parser._registries["action"].items() if isinstance(name, str)}
    actions = [{"kind": kinds[type(a)], **{k: plain(k, getattr(a, k)) for k in KEYS}} for a in parser._actions]
    return {**fingerprint(), "prog": parser.prog, "formatter": parser.formatter_class.__name__, "actions": actions}


def rebuild(snapshot: dict) -> argparse.ArgumentParser:
    """An ``argparse`` parser with the snapshot's flags: the same ``--help`` text; not for parsing values."""
    formatter = getattr(argparse, snapshot["formatter"])
    parser = argparse.ArgumentParser(prog=snapshot["prog"], formatter_class=formatter, add_help=False, allow_abbrev=False)
    for action in snapshot["actions"]:
        kwargs = {k: action[k] for k in ("dest", "default", "required", "help")}
        if action["kind"] in ("store", "append", "extend"):
            kwargs.update({k: action[k] for k in ("nargs", "const", "choices", "metavar")})
        elif action["kind"] == "help":
            kwargs = {"help": action["help"]}
        parser.add_argument(*action["option_strings"], action=action["kind"], **kwargs)
    return parser


def cache_path(stamp: dict) -> Path | None:
    """Where a snapshot for ``stamp`` (a ``fingerprint``) is cached; None when the cache is off."""
    value = os.environ.get(CACHE_ENV)
    if value is not None and value.strip().lower() in ("", "off", "0", "none"):
        return None
    base = Path(value) if value else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fastvlm-video" / "train_flags"
    return base / f"{stamp['transformers']}-{stamp['args_sha256'][:16]}.json"


def read(path: Path | None, stamp: dict) -> dict | None:
    """The snapshot in ``path`` if it was made for ``stamp``."""
    try:
        snapshot = json.loads(path.read_text()) if path else None
    except (OSError, ValueError):
        return None
    if not isinstance(snapshot, dict) or any(snapshot.get(k) != v for k, v in stamp.items()):
        return None
    return snapshot


def load() -> argparse.ArgumentParser | None:
    """The saved parser (packaged, else cached), or None when none was made for this transformers / args.py."""
    stamp = fingerprint()
    for path in (SNAPSHOT, cache_path(stamp)):
        if (snapshot := read(path, stamp)) is not None:
            try:
                return rebuild(snapshot)
            except (KeyError, TypeError, ValueError, AttributeError):  # a damaged cache file: the real parser
                continue
    return None


def remember(parser: argparse.ArgumentParser) -> None:
    """Cache the real parser's snapshot for the next runs (best effort: a read-only home is fine)."""
    snapshot = describe(parser)
    path = cache_path(snapshot)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")  # many processes (torchrun) may write at once
        tmp.write_text(json.dumps(snapshot, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass


def known_flags(parser: argparse.ArgumentParser) -> list[str]:
    """Every flag ``train`` accepts: the parser's and ``--config``."""
    return [s for action in parser._actions for s in action.option_strings] + list(EXTRA_FLAGS)


def write() -> Path:
    """Save the real parser's snapshot (imports transformers)."""
    from .args import build_parser

    SNAPSHOT.write_text(json.dumps(describe(build_parser()), indent=0, ensure_ascii=False) + "\n")
    return SNAPSHOT


if __name__ == "__main__":
    print(f"wrote {write()}")
