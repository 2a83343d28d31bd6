"""fastvlm-video predict: ask a checkpoint about one video or image; the answer streams to stdout.

Any checkpoint loads: standard, original ml-fastvlm, or a LoRA adapter. --verbose prints, on stderr,
the time to first token split into decode / preprocess / vision encode / prefill, and tokens per second.
A missing --input is reported before the model loads.

examples:
  fastvlm-video predict --model runs/ft --input clip.mp4 --prompt "What happens?"
  fastvlm-video predict --model runs/ft --input photo.jpg --prompt "What is this?" --verbose
  fastvlm-video predict --model runs/lora --input clip.mp4 --num_frames 16 --temperature 0.7
"""


import argparse

NAME = "predict"
HELP = "ask a model about one video or image; the answer streams to stdout"


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--model", required=True, help="checkpoint directory (fast_vlm, original llava_qwen2, or LoRA adapter)")
    parser.add_argument("--input", help="video or image file, or a folder of frames (a video); omit for a text-only question")
    parser.add_argument("--prompt", default="Describe the video.")
    parser.add_argument("--num_frames", type=int, help="default: the checkpoint's video_config.json")
    parser.add_argument("--frame_sampling", choices=["uniform", "fps", "keyframe"], help="default: the checkpoint's")
    parser.add_argument("--frames_fps", type=float, help="frames per second of a folder of frames without fps.txt (default: the checkpoint's, 1)")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"])
    parser.add_argument("--max_new_tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    parser.add_argument("--top_p", type=float, default=1.0)
    parser.add_argument("--verbose", action="store_true", help="print the time to first token, split, and tokens/s (stderr)")


def run(args) -> int:
    from ..quiet import quiet_libraries

    quiet_libraries()  # no progress bars or library warnings in what a person reads
    import sys

    from ..data.preflight import require_files
    from ..infer.predictor import Timings, load

    if args.input:
        require_files([args.input], "input", folders=True)
    predictor = load(args.model, device=args.device, num_frames=args.num_frames, frame_sampling=args.frame_sampling, frames_fps=args.frames_fps)
    timings = Timings()
    prompt = predictor.prompt_for(args.input, args.prompt, timings)
    for piece in predictor.stream(prompt, args.max_new_tokens, timings, temperature=args.temperature, top_p=args.top_p):
        print(piece, end="", flush=True)
    print()
    if args.verbose:
        print(timings.report(), file=sys.stderr)
    return 0
