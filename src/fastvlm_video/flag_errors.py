"""Unknown-flag errors, found by the flag names alone (no parsing, no imports): ``PROG: error: unrecognized
argument --promt; did you mean --prompt? (see PROG --help)``. Used by the CLI before a subcommand's
required arguments are checked, and by ``train`` before transformers is imported."""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Iterable

NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


def unknown_flags(known: Iterable[str], tokens: list[str]) -> list[str]:
    """The tokens argparse would reject as unknown options (``--flag`` / ``--flag=value``; not values such as
    ``-1``), given the ``known`` option strings: found before argparse checks for missing required
    arguments, so ``evaluate --no_such_flag`` names the mistake."""
    known = set(known)
    unknown = []
    for token in tokens:
        if token == "--":
            break
        if not token.startswith("-") or token == "-" or " " in token or NEGATIVE_NUMBER.match(token):
            continue
        if token.split("=", 1)[0] not in known and token not in known:
            unknown.append(token)
    return unknown


def unknown_flags_error(known: list[str], prog: str, unknown: list[str]) -> str:
    """'PROG: error: unrecognized argument --promt; did you mean --prompt? (see PROG --help)', one line for
    each unknown flag; ``known`` are the option strings it may have meant."""
    lines = []
    for token in unknown:
        flag = token.split("=", 1)[0]
        if not flag.startswith("-"):
            continue
        close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
        lines.append(f"unrecognized argument {flag}" + (f"; did you mean {close[0]}?" if close else ""))
    if not lines:
        lines.append(f"unrecognized arguments: {' '.join(unknown)}")
    return "\n".join(f"{prog}: error: {line} (see {prog} --help)" for line in lines)


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every option string of ``parser`` (``--prompt``, ``-h``, aliases)."""
    return [s for action in parser._actions for s in action.option_strings]


def parser_error(parser: argparse.ArgumentParser, unknown: list[str]) -> str:
    """``unknown_flags_error`` for ``parser``'s own flags."""
    return unknown_flags_error(option_strings(parser), parser.prog, unknown)
