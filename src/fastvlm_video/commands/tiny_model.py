"""fastvlm-video tiny-model: a small random FastVLM to try every command without real weights.

The real architecture, shrunk: timm's FastViTHD (fastvit_mci3) with one block per stage and narrow
widths, a 2-layer Qwen2, and a byte-level BPE tokenizer trained on the spot with Qwen2's ChatML tokens
(no download). It answers nonsense until trained, but train, check, evaluate, predict, export and plain
`transformers` all load it like a real checkpoint. At --image_size 64 a frame is one visual token, so a
few training steps run in seconds on a CPU; 1024 gives FastVLM's real 256 tokens per frame.

examples:
  fastvlm-video tiny-model models/tiny
  fastvlm-video tiny-model models/tiny1024 --image_size 1024 --num_video_frames 4
"""

import argparse

NAME = "tiny-model"
HELP = "write a small random FastVLM (no download) to try the tool without real weights"


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("out", help="output directory (must not exist, or pass --overwrite)")
    parser.add_argument("--image_size", type=int, default=64, help="frame size S, a multiple of 64: K=(S/64)^2 tokens per frame (default: 64)")
    parser.add_argument("--num_video_frames", type=int, default=8, help="frames per video saved in video_config.json (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="weights seed (default: 0)")
    parser.add_argument("--overwrite", action="store_true", help="write into an existing directory")


def run(args) -> int:
    from ..outputs import refuse_existing

    refuse_existing(args.out, args.overwrite)  # before torch is imported: a mistake is reported at once
    from ..model.tiny import save_tiny_checkpoint

    path = save_tiny_checkpoint(args.out, image_size=args.image_size, num_frames=args.num_video_frames, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote {path} (random weights, {args.image_size} px frames); try: fastvlm-video predict --model {path} --prompt Hello")
    return 0
