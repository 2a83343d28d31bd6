"""``fastvlm-video``: command-line entry points. Each subcommand parses, calls one function, exits."""

from __future__ import annotations

import argparse
import logging
import sys

from .errors import FastVlmVideoError

DESCRIPTION = """Fine-tune FastVLM on videos, images and text; predict and evaluate.

  fastvlm-video demo --out runs/demo                 # synthetic videos + tiny model, on CPU
  fastvlm-video train --model_name_or_path M --data_path train.json --image_folder media \\
        --validation_data_path val.json --output_dir runs/ft   # all HF TrainingArguments accepted
  fastvlm-video predict --model runs/ft --input clip.mp4 --prompt "What happens?"
  fastvlm-video frames clip.mp4 --out strip.png       # see the frames the model sees
"""


def _cmd_train(argv: list[str]) -> int:
    from .train.args import build_parser, parse_train_args
    from .train.run import train

    if not argv or argv[0] in ("-h", "--help"):
        build_parser().print_help()
        print("\nA YAML file with the same keys: fastvlm-video train --config run.yaml [--flag value ...]")
        return 0
    result = train(*parse_train_args(argv))
    print(f"saved to {result.output_dir} (train loss {result.train_loss:.4f}"
          + (f", eval loss {result.eval_loss:.4f}" if result.eval_loss is not None else "")
          + f", {result.skipped} samples skipped, {result.invalid_records} invalid records dropped)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo.run import format_metrics, run_demo

    metrics = run_demo(args.out, num_video_frames=args.num_video_frames, epochs=args.epochs, seed=args.seed)
    print(format_metrics(metrics))
    print(f"\nmodel: {args.out}/model   metrics: {args.out}/metrics.json")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from .infer.predictor import load

    overrides = {"num_frames": args.num_frames, "frame_sampling": args.frame_sampling}
    predictor = load(args.model, device=args.device, **overrides)
    prompt = predictor.prompt_for(args.input, args.prompt)
    for piece in predictor.stream(prompt, max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p):
        print(piece, end="", flush=True)
    print()
    return 0


def _cmd_frames(args: argparse.Namespace) -> int:
    from .media.contact_sheet import save_contact_sheet

    path = save_contact_sheet(args.video, args.out, num_frames=args.num_frames, frame_sampling=args.frame_sampling, backend=args.video_backend)
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastvlm-video", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("train", help="fine-tune (flags: `fastvlm-video train --help`)", add_help=False)

    demo = sub.add_parser("demo", help="synthetic video QA + tiny model, trained and evaluated on CPU")
    demo.add_argument("--out", default="runs/demo", help="output folder (data, model, metrics.json)")
    demo.add_argument("--num_video_frames", type=int, default=8, help="frames per video (1 shows the model cannot tell motion)")
    demo.add_argument("--epochs", type=int, default=16)
    demo.add_argument("--seed", type=int, default=0)

    predict = sub.add_parser("predict", help="ask a model about one video or image; the answer streams to stdout")
    predict.add_argument("--model", required=True, help="checkpoint directory")
    predict.add_argument("--input", help="video or image file (omit for text only)")
    predict.add_argument("--prompt", default="Describe the video.")
    predict.add_argument("--num_frames", type=int, help="default: the checkpoint's video_config.json")
    predict.add_argument("--frame_sampling", choices=["uniform", "fps", "keyframe"])
    predict.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"])
    predict.add_argument("--max_new_tokens", type=int, default=256)
    predict.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    predict.add_argument("--top_p", type=float, default=1.0)

    frames = sub.add_parser("frames", help="contact sheet of the frames sampled from a video, with timestamps")
    frames.add_argument("video")
    frames.add_argument("--out", required=True, help="PNG file to write")
    frames.add_argument("--num_frames", type=int, default=8)
    frames.add_argument("--frame_sampling", default="uniform", choices=["uniform", "fps", "keyframe"])
    frames.add_argument("--video_backend", default="auto", choices=["auto", "pyav", "decord"])
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if argv and argv[0] == "train":
        command, rest, args = "train", argv[1:], None
    else:
        args = parser.parse_args(argv)
        command, rest = args.command, []
    logging.basicConfig(
        level=logging.DEBUG if args is not None and args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        if command == "train":
            return _cmd_train(rest)
        handlers = {"demo": _cmd_demo, "predict": _cmd_predict, "frames": _cmd_frames}
        if command not in handlers:
            parser.print_help()
            return 2
        return handlers[command](args)
    except FastVlmVideoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
