"""fastvlm-video predict: ask a checkpoint about one video or image; the answer streams to stdout."""

NAME = "predict"
HELP = "ask a model about one video or image; the answer streams to stdout"


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, help="checkpoint directory")
    parser.add_argument("--input", help="video or image file (omit for a text-only question)")
    parser.add_argument("--prompt", default="Describe the video.")
    parser.add_argument("--num_frames", type=int, help="default: the checkpoint's video_config.json")
    parser.add_argument("--frame_sampling", choices=["uniform", "fps", "keyframe"], help="default: the checkpoint's")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"])
    parser.add_argument("--max_new_tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    parser.add_argument("--top_p", type=float, default=1.0)


def run(args) -> int:
    from ..infer.predictor import load

    predictor = load(args.model, device=args.device, num_frames=args.num_frames, frame_sampling=args.frame_sampling)
    prompt = predictor.prompt_for(args.input, args.prompt)
    for piece in predictor.stream(prompt, max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p):
        print(piece, end="", flush=True)
    print()
    return 0
