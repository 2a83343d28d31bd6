"""``fastvlm-video``: the command line. Subcommands live in ``fastvlm_video.commands`` (one module each)."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from . import commands
from .errors import FastVlmVideoError

DESCRIPTION = """Fine-tune FastVLM on videos, images and text; predict and evaluate.

examples:
  fastvlm-video demo --out runs/demo                  # synthetic videos + tiny model, on CPU
  fastvlm-video train --model_name_or_path MODEL_DIR --data_path train.json --image_folder media \\
      --validation_data_path val.json --output_dir runs/ft     # + any HF TrainingArguments flag
  fastvlm-video predict --model runs/ft --input clip.mp4 --prompt "What happens?"
  fastvlm-video frames clip.mp4 --out strip.png        # see the frames the model sees
"""


def load_commands() -> dict:
    """Every subcommand module in ``fastvlm_video.commands``, by name."""
    found = {}
    for info in pkgutil.iter_modules(commands.__path__):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(module, "NAME"):
            found[module.NAME] = module
    return dict(sorted(found.items()))


def build_parser(modules: dict) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastvlm-video", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in modules.items():
        doc = (module.__doc__ or "").strip()
        module.add_arguments(sub.add_parser(name, help=module.HELP, description=doc, add_help=not getattr(module, "PASSTHROUGH", False)))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    modules = load_commands()
    parser = build_parser(modules)
    verbose = bool(argv) and argv[0] in ("-v", "--verbose")
    rest = argv[1:] if verbose else argv
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        if rest and getattr(modules.get(rest[0]), "PASSTHROUGH", False):
            return modules[rest[0]].run(rest[1:])
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        return modules[args.command].run(args)
    except FastVlmVideoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
