"""fastvlm-video clean: drop videos that are too small, too dark or bright, blurred or static.

Every media file of the data is sampled with training's frame sampler (the same frames, at the
file's own resolution) and measured: shorter side (px), brightness (mean grey, 0-255), sharpness
(variance of the Laplacian; grows with detail and resolution, so look at the CSV and tune
--min_sharpness), motion (share of consecutive sampled frames whose mean grey difference exceeds
--motion_threshold). Writes a CSV with the values and the reasons of every rejection (--report)
and the records whose media all pass (--output: a file for one data file, a folder for several).

examples:
  fastvlm-video clean --data train.json --media_folder videos --output train.clean.json
  fastvlm-video clean --data train.json val.json --media_folder videos --output cleaned/ \\
      --min_short_side 360 --min_sharpness 20 --min_motion_share 0.5 --num_video_frames 16
"""

import argparse

NAME = "clean"
HELP = "drop low-quality videos (size, brightness, sharpness, motion); CSV of measured values"


def add_arguments(parser) -> None:
    from ..data.clean_thresholds import Thresholds
    from ..data.settings import add_video_arguments

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    t = Thresholds()
    parser.add_argument("--data", "--data_path", dest="data", action="extend", nargs="+", required=True, metavar="FILE",
                        help="data files (JSON/JSONL, LLaVA or messages format)")
    parser.add_argument("--media_folder", "--image_folder", dest="media_folder", default=".",
                        help="folder the media paths are relative to (default: .)")
    parser.add_argument("--allow_outside_media_folder", action="store_true", help="accept media paths that leave the media folder")
    parser.add_argument("--output", required=True, help="kept records: a file (one data file) or a folder (several)")
    parser.add_argument("--report", default="clean_report.csv", help="per-file CSV of values and reasons (default: clean_report.csv)")
    parser.add_argument("--min_short_side", type=int,
                        help=f"pixels (default: the frame size of --model / --image_size, else {t.min_short_side})")
    parser.add_argument("--min_brightness", type=float, default=t.min_brightness, help=f"mean grey 0-255 (default: {t.min_brightness:g})")
    parser.add_argument("--max_brightness", type=float, default=t.max_brightness, help=f"mean grey 0-255 (default: {t.max_brightness:g})")
    parser.add_argument("--min_sharpness", type=float, default=t.min_sharpness, help=f"variance of the Laplacian (default: {t.min_sharpness:g})")
    parser.add_argument("--motion_threshold", type=float, default=t.motion_threshold,
                        help=f"mean grey difference between sampled frames that counts as motion (default: {t.motion_threshold:g})")
    parser.add_argument("--min_motion_share", type=float, default=t.min_motion_share,
                        help=f"share of frame pairs that must move, 0 disables (default: {t.min_motion_share:g})")
    add_video_arguments(parser)
    parser.add_argument("--workers", type=int, help="processes measuring media in parallel (default: all cores)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds allowed per media file (default: 60)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")


def min_short_side(args, video) -> int:
    """``--min_short_side``, else the frame size the model gets (``--model`` / ``--image_size``), else the default."""
    from ..data.clean_thresholds import Thresholds

    if args.min_short_side is not None:
        return args.min_short_side
    if args.model or args.image_size:
        print(f"minimum size: shorter side {video.image_size} px, the model's frame size (--min_short_side to change)")
        return video.image_size
    return Thresholds().min_short_side


def run(args) -> int:
    from ..data.clean import Thresholds, clean_dataset
    from ..data.parallel import default_workers
    from ..data.settings import video_settings

    video = video_settings(args)
    thresholds = Thresholds(
        min_short_side=min_short_side(args, video),
        min_brightness=args.min_brightness,
        max_brightness=args.max_brightness,
        min_sharpness=args.min_sharpness,
        motion_threshold=args.motion_threshold,
        min_motion_share=args.min_motion_share,
    )
    verdicts = clean_dataset(
        args.data, args.media_folder, args.output, args.report, video, thresholds,
        allow_outside_media_folder=args.allow_outside_media_folder,
        workers=args.workers or default_workers(), timeout=args.timeout, progress=not args.no_progress,
    )  # fmt: skip
    rejected = [v for v in verdicts if not v.kept]
    for v in rejected[:50]:
        print(f"rejected {v.job.path}: {'; '.join(v.reasons)}")
    print(f"{len(rejected)} of {len(verdicts)} media file(s) rejected; values in {args.report}; kept records in {args.output}")
    return 0
