"""fastvlm-video serve: a web page (upload or pick a video, see the frames the model sees, ask, watch the
answer stream, or ask about the live camera) and an OpenAI-compatible POST /v1/chat/completions on the same
server. Requests that arrive together are answered as one batch (--max_batch); past --max_queue waiting
requests the server answers 429. Binds to 127.0.0.1 (this machine only) unless --host says otherwise; any
other address needs --api_key (or FASTVLM_VIDEO_API_KEY), or --insecure to expose it without one.
Needs the serve extra: pip install 'fastvlm-video[serve]'.

examples:
  fastvlm-video serve --model runs/ft --media_folder clips             # then open http://127.0.0.1:8000
  fastvlm-video serve --model runs/ft --media_folder clips --port 9000 --max_upload_mb 50
  FASTVLM_VIDEO_API_KEY=s3cret fastvlm-video serve --model runs/ft --host 0.0.0.0   # clients send the key
  curl -N http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' -d \\
    '{"stream": true, "messages": [{"role": "user", "content": [
      {"type": "video_url", "video_url": {"url": "clip.mp4"}}, {"type": "text", "text": "What happens?"}]}]}'
"""

import argparse
import os

NAME = "serve"
HELP = "web page + OpenAI-compatible API for one model (localhost by default)"

LOOPBACK = ("127.0.0.1", "localhost", "::1")
KEY_VARIABLE = "FASTVLM_VIDEO_API_KEY"


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--model", required=True, help="checkpoint directory")
    parser.add_argument("--media_folder", default=".", help="the only folder whose videos clients may name (read-only)")
    parser.add_argument("--upload_folder", help="where uploads are kept (default: a temporary folder, removed on exit)")
    parser.add_argument("--max_upload_mb", type=float, default=200.0, help="largest upload / base64 video accepted")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind; anything but loopback exposes the model")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api_key", default=os.environ.get(KEY_VARIABLE),
                        help=f"require 'Authorization: Bearer KEY' on every API call (default: ${KEY_VARIABLE})")
    parser.add_argument("--insecure", action="store_true", help="allow a non-loopback --host without --api_key")
    parser.add_argument("--max_batch", type=int, default=8, help="most requests answered together in one batch")
    parser.add_argument("--max_queue", type=int, default=64, help="most requests waiting or being read; more get 429")
    parser.add_argument("--request_timeout", type=float, default=300.0, help="seconds a request may take in all")
    parser.add_argument("--decode_workers", type=int, default=2, help="threads decoding requests' media (one clip each)")
    parser.add_argument("--num_frames", type=int, help="default: the checkpoint's video_config.json")
    parser.add_argument("--frame_sampling", choices=["uniform", "fps", "keyframe"], help="default: the checkpoint's")
    parser.add_argument("--frames_fps", type=float, help="frames per second of a folder of frames without fps.txt (default: the checkpoint's, 1)")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"])


def run(args) -> int:
    from ..quiet import quiet_libraries

    quiet_libraries()  # no progress bars or library warnings in what a person reads
    import logging
    import tempfile
    from pathlib import Path

    from ..errors import ConfigError

    try:
        import uvicorn

        from ..serve.app import create_app
    except ImportError as exc:
        raise ConfigError(f"serve needs FastAPI and uvicorn ({exc.name} is missing): pip install 'fastvlm-video[serve]'") from None
    from ..infer.predictor import load

    if not Path(args.media_folder).is_dir():
        raise ConfigError(f"--media_folder {args.media_folder!r} is not a folder")
    if args.host not in LOOPBACK and not args.api_key:
        if not args.insecure:
            raise ConfigError(f"--host {args.host} exposes the model to the network: set --api_key KEY (or "
                              f"${KEY_VARIABLE}), or pass --insecure to serve it without a key")  # fmt: skip
        logging.getLogger(__name__).warning("binding to %s without a key: anyone who reaches it can use the model", args.host)
    if min(args.max_batch, args.max_queue, args.decode_workers) < 1 or args.request_timeout <= 0:
        raise ConfigError("--max_batch, --max_queue and --decode_workers must be at least 1, --request_timeout positive")
    from ..media.pyav_backend import decode_one_thread_per_clip

    decode_one_thread_per_clip()  # many clips at once, each in one --decode_workers thread
    predictor = load(args.model, device=args.device, num_frames=args.num_frames, frame_sampling=args.frame_sampling,
                     frames_fps=args.frames_fps)
    with tempfile.TemporaryDirectory(prefix="fastvlm-serve-") as tmp:
        app = create_app(predictor, args.media_folder, args.upload_folder or tmp, int(args.max_upload_mb * 2**20),
                         Path(args.model).name, api_key=args.api_key, max_batch=args.max_batch, max_queue=args.max_queue,
                         request_timeout=args.request_timeout, decode_workers=args.decode_workers)  # fmt: skip
        print(f"serving {args.model} on http://{args.host}:{args.port}  (media folder {Path(args.media_folder).resolve()})")
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
