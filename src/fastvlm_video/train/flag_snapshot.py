"""The ``train`` parser's flags, saved to ``train_flags.json``: ``train --help`` and a mistyped train flag
answer without importing transformers (its ``TrainingArguments`` make up most of the flags; importing it
takes seconds).

The snapshot records the transformers version and a hash of ``train/args.py`` it was made from, and is
used only when both match what is installed; otherwise ``train`` parses as before, with the real parser.
Regenerate after changing either: ``python -m fastvlm_video.train.flag_snapshot``
(tests/test_cli_light.py fails while the stored file differs from the real parser).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
from pathlib import Path

SNAPSHOT = Path(__file__).with_name("train_flags.json")
ARGS_SOURCE = Path(__file__).with_name("args.py")
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


def load() -> argparse.ArgumentParser | None:
    """The saved parser, or None when there is none or it was made for another transformers / args.py."""
    try:
        snapshot = json.loads(SNAPSHOT.read_text())
    except (OSError, ValueError):
        return None
    if any(snapshot.get(k) != v for k, v in fingerprint().items()):
        return None
    return rebuild(snapshot)


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
