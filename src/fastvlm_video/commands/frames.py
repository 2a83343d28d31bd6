"""fastvlm-video frames: a contact sheet of the frames the model sees, with timestamps.

examples:
  fastvlm-video frames clip.mp4 --out strip.png
  fastvlm-video frames clip.mp4 --out strip.png --num_frames 16 --frame_sampling keyframe
"""


import argparse

NAME = "frames"
HELP = "contact sheet (PNG) of the frames sampled from a video, with their timestamps"


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("video")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--num_frames", type=int, default=8)
    parser.add_argument("--frame_sampling", default="uniform", choices=["uniform", "fps", "keyframe"])
    parser.add_argument("--video_backend", default="auto", choices=["auto", "pyav", "decord"])


def run(args) -> int:
    from ..media.contact_sheet import save_contact_sheet

    path = save_contact_sheet(args.video, args.out, num_frames=args.num_frames, frame_sampling=args.frame_sampling, backend=args.video_backend)
    print(f"wrote {path}")
    return 0
