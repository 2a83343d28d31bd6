"""fastvlm-video frames: a contact sheet of exactly the pixels the model gets, with frame times.

The media item goes through training's own loader (``load_sample_media``: the same decoder,
sampling, 16-bit scaling, EXIF rotation, resize and pad, visual budget), so what the sheet shows is
what train, evaluate, predict and serve feed the model. Each tile is one model frame (S x S),
enlarged by a whole factor (nearest) when smaller than --thumb, so single pixels stay visible.
With --model, the checkpoint's video settings and frame size are used (flags override them).

examples:
  fastvlm-video frames clip.mp4 --out strip.png
  fastvlm-video frames clip.mp4 --model runs/ft --out strip.png                  # as this checkpoint sees it
  fastvlm-video frames long.mp4 --start 30 --end 45 --num_frames 16 --out seg.png  # a record's segment
  fastvlm-video frames clip.mp4 --frame_sampling fps --video_fps 2 --out fps.png
  fastvlm-video frames frames_dir/ --frames_fps 3 --out folder.png               # a folder of frames is a video
  fastvlm-video frames scan16.png --model runs/ft --out image.png                # images too (16-bit, EXIF, CMYK)
"""


import argparse

NAME = "frames"
HELP = "contact sheet (PNG) of the pixels the model gets from a video, image or frame folder, with frame times"


def add_arguments(parser) -> None:
    from ..data.settings import add_video_arguments

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("media", metavar="video", help="video or image file, or a folder of frames")
    parser.add_argument("--out", required=True, help="PNG file to write")
    add_video_arguments(parser)
    parser.add_argument("--num_frames", dest="num_video_frames", type=int, help="same as --num_video_frames")
    parser.add_argument("--video_backend", choices=["auto", "pyav", "decord"], help="default: the model's, else auto")
    parser.add_argument("--start", type=float, help="segment start, seconds (as a record's 'start')")
    parser.add_argument("--end", type=float, help="segment end, seconds (as a record's 'end')")
    parser.add_argument("--thumb", type=int, default=256, help="tile size in pixels (default: 256)")
    parser.add_argument("--columns", type=int, default=4, help="tiles per row (default: 4)")


def run(args) -> int:
    from dataclasses import replace

    from ..data.preflight import require_files
    from ..data.settings import video_settings

    require_files([args.media], "media", folders=True)
    video = video_settings(args)
    if args.video_backend:
        video = replace(video, video_backend=args.video_backend)
    sheet, item = model_frames_sheet(args.media, video, args.start, args.end, args.thumb, args.columns)
    sheet.save(args.out)
    span = f", {item.window[0]:.2f}-{item.window[1]:.2f} s" if item.window else ""
    what = "image" if item.timestamps is None else f"{video.frame_sampling} sampling{span}"
    print(f"wrote {args.out}: {item.num_frames} frame(s) of {video.image_size}x{video.image_size} ({video.aspect}), {what}")
    for note in item.notes:
        print(f"warning: {args.media}: {note}")
    return 0


def model_frames_sheet(path, video, start=None, end=None, thumb: int = 256, columns: int = 4):
    """The sheet of the frames ``load_sample_media`` gives for ``path`` at ``video``, and that ``LoadedMedia``."""
    from ..data.dataset import load_sample_media
    from ..data.records import MediaRef
    from ..media.contact_sheet import contact_sheet, frames_to_images
    from ..media.kinds import media_type

    [item], _ = load_sample_media([], [MediaRef(str(path), media_type(path), start, end)], video)
    if item.timestamps is None:
        labels = ["image"]
    else:
        labels = [f"#{i}  {t:.2f}s" for i, t in enumerate(item.timestamps)]
    return contact_sheet(frames_to_images(item.frames), labels, columns=columns, thumb=thumb), item
