"""fastvlm-video check: validate training data before a long run; exit 1 when anything is wrong.

Checks, with the training's own code: the schema of every record (roles, placeholders, assistant
turn, types; invalid JSON with its line), that media paths stay inside --media_folder, duplicate
ids, media shared between data files (train/val/test leakage), that every video and image opens
and yields its frames (in parallel, time-limited per file), and - with --model or --tokenizer -
the token count of every sample (visual tokens included) against --model_max_length.

Prints a summary, writes a JSON report (check_report.json next to the first data file, or --report)
and exits 1 when any error was found. Degraded media training would still use (frames standing in
for a truncated tail, a still image named like a video) are warnings, in the summary and the report.

examples:
  fastvlm-video check --data train.json --data val.json --media_folder videos
  fastvlm-video check --data train.json --media_folder videos --model checkpoints/fastvlm-0.5b \\
      --num_video_frames 8 --model_max_length 4096 --workers 8 --write_clean train.clean.json
"""

import argparse

NAME = "check"
HELP = "validate data files and media before training (schema, media, leakage, token lengths)"


def add_arguments(parser) -> None:
    from ..data.settings import add_data_arguments, add_video_arguments

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_data_arguments(parser)
    add_video_arguments(parser)
    parser.add_argument("--tokenizer", help="tokenizer directory (default: --model's); without either, tokens are not counted")
    parser.add_argument("--model_max_length", default="auto",
                        help="longest sequence training allows: tokens, or 'auto' (default) = as training's auto, the model's context")
    parser.add_argument("--workers", type=int, help="processes opening media in parallel (default: all cores)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds allowed per media file (default: 60)")
    parser.add_argument("--report", metavar="PATH",
                        help="JSON report path (default: check_report.json next to the first data file)")
    parser.add_argument("--write_clean", metavar="OUT",
                        help="write only the good records: to OUT for one data file, into folder OUT for several")
    parser.add_argument("--frame_cache", metavar="DIR",
                        help="also check a frame cache (`fastvlm-video cache`): same video settings, how many media it holds")
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")


def default_report_path(data: list[str]):
    """``check_report.json`` in the first data file's folder (never the current folder: it would litter a checkout)."""
    from pathlib import Path

    return Path(data[0]).parent / "check_report.json"


def run(args) -> int:
    from ..data.check import format_summary, run_check
    from ..data.frame_cache import FrameCache
    from ..data.parallel import default_workers
    from ..data.preflight import check_media_folder
    from ..data.subset import write_subset
    from ..budget.tokens import context_limit
    from ..data.settings import chat_encoder, video_settings

    check_media_folder(args.data, args.media_folder, "--media_folder", args.allow_outside_media_folder)
    video = video_settings(args)
    cache = FrameCache(args.frame_cache, video) if args.frame_cache else None  # settings refused before decoding
    report = run_check(
        args.data,
        args.media_folder,
        video,
        encoder=chat_encoder(args.tokenizer or args.model, video),
        model_max_length=context_limit(args.model_max_length, args.model),
        allow_outside_media_folder=args.allow_outside_media_folder,
        workers=args.workers or default_workers(),
        timeout=args.timeout,
        progress=not args.no_progress,
    )
    if cache is not None:
        report.media["frame_cache"] = cache.coverage(report.good)
    print(format_summary(report))
    if cache is not None:
        print(cache.describe(report.good))
    print(f"report: {report.write(args.report or default_report_path(args.data))}")
    if args.write_clean:
        written = write_subset(((s.source, s.index) for s in report.good), args.data, args.write_clean)
        print(f"{len(report.good)} good record(s) written to {', '.join(map(str, written))}")
    return 0 if report.ok else 1
