"""``fastvlm-video``: the command line. Subcommands live in ``fastvlm_video.commands`` (one module each)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys

from . import __version__, commands
from .errors import FastVlmVideoError
from .flag_errors import option_strings, parser_error, unknown_flags

DESCRIPTION = """Fine-tune FastVLM on videos, images and text; predict and evaluate.

examples:
  fastvlm-video demo --out runs/demo                  # synthetic videos + tiny model, on CPU
  fastvlm-video tiny-model models/tiny                # a small random model to try every command
  fastvlm-video prepare clips/ --out data --question "What exercise is shown?" --answer "{class}"
  fastvlm-video train --model_name_or_path MODEL_DIR --data_path data/train.json --image_folder clips \\
      --validation_data_path data/val.json --output_dir runs/ft     # + any HF TrainingArguments flag
  fastvlm-video predict --model runs/ft --input clip.mp4 --prompt "What happens?"
  fastvlm-video frames clip.mp4 --out strip.png        # see the frames the model sees

Every command has --help with examples (fastvlm-video COMMAND --help).
"""


def load_commands() -> dict:
    """Every subcommand module in ``fastvlm_video.commands``, by name."""
    found = {}
    for info in pkgutil.iter_modules(commands.__path__):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(module, "NAME"):
            found[module.NAME] = module
    return dict(sorted(found.items()))


def build_parser(modules: dict, only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that subcommand gets its arguments (the others' are never built).
    Choices and defaults come from light modules (``constants.py``): ``--help`` and a mistyped flag answer
    before torch, transformers, timm, av or PIL is imported (tests/test_cli_light.py)."""
    parser = argparse.ArgumentParser(prog="fastvlm-video", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"fastvlm-video {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in modules.items():
        doc = (module.__doc__ or "").strip()
        passthrough = getattr(module, "PASSTHROUGH", False)
        parser_ = sub.add_parser(name, help=module.HELP, description=doc, add_help=not passthrough, allow_abbrev=False)
        if only is None or name == only:
            module.add_arguments(parser_)
    return parser


def subcommand_parser(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser:
    """The subparser of ``command`` (the top-level parser for none)."""
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices.get(command, parser)




def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    modules = load_commands()
    verbose = bool(argv) and argv[0] in ("-v", "--verbose")
    rest = argv[1:] if verbose else argv
    parser = build_parser(modules, only=rest[0] if rest and rest[0] in modules else "")
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        if rest and getattr(modules.get(rest[0]), "PASSTHROUGH", False):
            return modules[rest[0]].run(rest[1:])
        target = subcommand_parser(parser, rest[0] if rest else None)
        early = unknown_flags(option_strings(target), rest[1:]) if target is not parser else []
        if early:  # before argparse reports a missing required argument instead
            print(parser_error(target, early), file=sys.stderr)
            return 2
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            print(parser_error(subcommand_parser(parser, args.command), unknown), file=sys.stderr)
            return 2
        if args.command is None:
            parser.print_help()
            return 2
        return modules[args.command].run(args)
    except FastVlmVideoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    except KeyboardInterrupt:  # Ctrl-C: one line, no traceback
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `fastvlm-video train --help | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
