"""fastvlm-video plot: PNG plots of loss, validation loss, learning rate and gradient norm against
steps (epochs on the top axis) from a run's trainer_state.json (or the newest complete checkpoint's:
one half-written by an interrupted save is skipped with a warning).

examples:
  fastvlm-video plot runs/ft
  fastvlm-video plot runs/ft/checkpoint-500 --out figures/
"""

import argparse
import sys

NAME = "plot"
HELP = "training curves (PNG) from a run directory's trainer_state.json"


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("run_dir", help="training output directory (or a checkpoint-* inside it)")
    parser.add_argument("--out", help="folder for the PNGs (default: RUN_DIR/plots)")


def run(args) -> int:
    from ..infer.plots import find_trainer_state, plot_training

    if find_trainer_state(args.run_dir) is None:
        print(f"error: {args.run_dir}: no readable trainer_state.json (nor checkpoint-*/trainer_state.json)", file=sys.stderr)
        return 1
    for path in plot_training(args.run_dir, args.out):
        print(path)
    return 0
