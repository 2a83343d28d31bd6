"""Video settings and tokenizer for the data tools (check, clean): the model's, or flags, as training.

``add_video_arguments`` gives check and clean the same frame flags as ``train``; ``video_settings``
resolves them the way training does (``video_config_of``), so the tools sample the same frames.
"""

from __future__ import annotations

from ..errors import ConfigError
from ..video_config import VideoConfig
from .chat import ChatEncoder


def add_data_arguments(parser) -> None:
    """``--data`` (one or more files), ``--media_folder`` and ``--allow_outside_media_folder``."""
    parser.add_argument("--data", "--data_path", dest="data", action="extend", nargs="+", required=True, metavar="FILE",
                        help="data files (JSON/JSONL, LLaVA or messages format): train, val, test, ...")
    parser.add_argument("--media_folder", "--image_folder", dest="media_folder", default=".",
                        help="folder the media paths are relative to (default: .)")
    parser.add_argument("--allow_outside_media_folder", action="store_true",
                        help="accept media paths that leave the media folder (../, absolute, symlinks out)")


def add_video_arguments(parser) -> None:
    """``--model`` and the frame flags of ``train`` (defaults: the model's video settings)."""
    parser.add_argument("--model", help="checkpoint directory: its video settings (and tokenizer) are used")
    parser.add_argument("--num_video_frames", type=int, help="frames sampled per video (default: the model's, else 8)")
    parser.add_argument("--frame_sampling", choices=["uniform", "fps", "keyframe"], help="default: the model's, else uniform")
    parser.add_argument("--video_fps", type=float, help="frames per second for --frame_sampling fps")
    parser.add_argument("--max_frames", type=int, help="cap on frames for --frame_sampling fps")
    parser.add_argument("--image_size", type=int, help="frame size S, K=(S/64)^2 tokens per frame (default: the model's, else 1024)")
    parser.add_argument("--min_frames", type=int, help="floor on frames for --frame_sampling fps (default: the model's, else 1)")
    parser.add_argument("--max_visual_tokens", type=int, help="per-sample image-token budget: fewer frames, then smaller frames (0: none)")
    parser.add_argument("--frames_fps", type=float,
                        help="frames per second of a folder of frames without fps.txt/meta.json (default: the model's, else 1)")
    parser.add_argument("--time_instruction", action="store_true", default=None, help="add the frame-times sentence to the prompt (default: the model's)")


def video_settings(args) -> VideoConfig:
    """The ``VideoConfig`` training would use for these flags."""
    overrides = {
        "num_frames": args.num_video_frames,
        "frame_sampling": args.frame_sampling,
        "fps": args.video_fps,
        "max_frames": args.max_frames,
        "image_size": args.image_size,
        "min_frames": getattr(args, "min_frames", None),
        "max_visual_tokens": getattr(args, "max_visual_tokens", None),
        "time_instruction": getattr(args, "time_instruction", None),
        "frames_fps": getattr(args, "frames_fps", None),
    }
    try:
        if args.model:
            from ..model.load import video_config_of

            return video_config_of(args.model, **overrides)
        return VideoConfig(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def chat_encoder(tokenizer_dir: str | None, video: VideoConfig) -> ChatEncoder | None:
    """The training encoder for a tokenizer directory, or ``None`` without one."""
    if not tokenizer_dir:
        return None
    from ..model.load import load_tokenizer

    try:
        return ChatEncoder(load_tokenizer(tokenizer_dir), video.tokens_per_frame)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{tokenizer_dir}: cannot load a usable tokenizer ({exc})") from None
