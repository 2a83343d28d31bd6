"""fastvlm-video cache: decode every record's sampled frames once, for train/evaluate/check --frame_cache.

The frames are decoded with training's own code at the run's video settings (--model's, or the
frame flags, exactly as `train` resolves them) and stored in --out: memory-mapped shards plus JSON
indexes, readable by many DataLoader workers and nodes, movable to shared storage. Each entry is
keyed by the media file (path, size, mtime): a changed file is decoded again during training, a
run with other video settings is refused. Broken media are recorded as training would skip them.
Interrupted? Run the same command again: finished entries are kept.

Codecs: raw (default; lossless, fastest to read, 3 MB per 1024 px frame), png (lossless, about 3x
smaller, slower to read), jpeg (--quality; about 12x smaller, not bit-identical). docs/cache.md
has the measurements.

examples:
  fastvlm-video cache --data train.json --data val.json --media_folder videos \\
      --model checkpoints/fastvlm-0.5b --num_video_frames 8 --out cache/fastvlm-8f
  fastvlm-video train --model_name_or_path checkpoints/fastvlm-0.5b --data_path train.json \\
      --image_folder videos --num_video_frames 8 --frame_cache cache/fastvlm-8f --output_dir runs/ft
"""

import argparse

NAME = "cache"
HELP = "decode every record's frames once into a frame cache (train/evaluate/check --frame_cache)"


def add_arguments(parser) -> None:
    from ..constants import CACHE_CODECS as CODECS, DEFAULT_JPEG_QUALITY
    from ..data.settings import add_data_arguments, add_video_arguments

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_data_arguments(parser)
    add_video_arguments(parser)
    parser.add_argument("--image_aspect_ratio", choices=["pad", "crop", "resize"], help="default: the model's, else pad (as train)")
    parser.add_argument("--video_backend", choices=["auto", "pyav", "decord"], help="default: the model's, else auto (as train)")
    parser.add_argument("--out", required=True, help="cache directory (created; an existing one is completed)")
    parser.add_argument("--codec", choices=CODECS, default="raw", help="frame storage (default: raw, lossless)")
    parser.add_argument("--quality", type=int, default=DEFAULT_JPEG_QUALITY,
                        help=f"JPEG quality for --codec jpeg (default: {DEFAULT_JPEG_QUALITY})")
    parser.add_argument("--workers", type=int, help="decoding processes (default: all cores)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds allowed per media file (default: 60)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from dataclasses import replace

    from ..data.cache_build import build_cache, format_report
    from ..data.parallel import default_workers
    from ..data.records import load_samples
    from ..data.settings import video_settings

    video = video_settings(args)
    video = replace(video, aspect=args.image_aspect_ratio or video.aspect, video_backend=args.video_backend or video.video_backend)
    samples, invalid = load_samples(args.data, args.media_folder, skip_invalid=True, allow_outside_media_folder=args.allow_outside_media_folder)
    for error in invalid:
        print(f"invalid record (not cached): {error}")
    report = build_cache(
        samples, video, args.out, codec=args.codec, quality=args.quality,
        workers=args.workers or default_workers(), timeout=args.timeout, progress=not args.no_progress,
    )  # fmt: skip
    print(format_report(report))
    print(f"frame cache: {args.out}  (use: --frame_cache {args.out})")
    return 0
