"""fastvlm-video push: upload a checkpoint with a model card to the Hugging Face Hub.

The card states the base model, what trained (full / LoRA, frozen parts), the data (counts, classes),
the video settings, the latest `evaluate` metrics for the model, and how to use it (this CLI, plain
transformers, MLX). --dry_run writes the exact folder that would be uploaded and uploads nothing.
Needs a token with write access (`hf auth login` or HF_TOKEN).

examples:
  fastvlm-video push runs/ft --repo me/fastvlm-video-ft --dry_run      # look at runs/ft-hub/README.md
  fastvlm-video push runs/ft --repo me/fastvlm-video-ft --private
"""

import argparse

NAME = "push"
HELP = "upload a checkpoint + model card to the Hugging Face Hub (--dry_run: write the folder only)"


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("dir", help="checkpoint directory (standard, original or LoRA adapter)")
    parser.add_argument("--repo", required=True, help="Hub repository, e.g. me/my-model")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument(
        "--dry_run", action="store_true", help="write the upload folder and card, upload nothing"
    )
    parser.add_argument(
        "--out",
        help="where the upload folder goes (default: DIR-hub with --dry_run, a temporary folder otherwise)",
    )
    parser.add_argument(
        "--base_model", help="the base model's Hub id for the card (default: from training_summary.json)"
    )


def run(args) -> int:
    import tempfile
    from pathlib import Path

    from ..ship.push import require_token, stage, upload

    if args.dry_run:
        out = stage(args.dir, args.out or f"{Path(args.dir).resolve()}-hub", args.repo, args.base_model)
        print(f"dry run: wrote {out} (what would be uploaded to {args.repo}; card: {out / 'README.md'})")
        return 0
    require_token()  # before any work
    with tempfile.TemporaryDirectory(prefix="fastvlm-push-") as tmp:
        folder = stage(args.dir, args.out or Path(tmp) / "upload", args.repo, args.base_model)
        print(f"uploaded {folder} to {upload(folder, args.repo, args.private)}")
    return 0
