"""fastvlm-video convert: an original ml-fastvlm checkpoint (llava_qwen2) -> a standard fast_vlm checkpoint.

Training and predict convert original checkpoints on load; converting once makes later loads fast
and gives a directory that plain `transformers` (AutoModelForImageTextToText) loads alone.
A non-empty DST is refused unless --overwrite.

examples:
  fastvlm-video convert checkpoints/llava-fastvithd_0.5b_stage3 checkpoints/fastvlm-0.5b
  fastvlm-video convert checkpoints/llava-fastvithd_1.5b_stage3 checkpoints/fastvlm-1.5b --dtype bfloat16
"""

import argparse

NAME = "convert"
HELP = "convert an original ml-fastvlm checkpoint (llava_qwen2) to a standard fast_vlm checkpoint"


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("src", help="original checkpoint directory (config.json with model_type llava_qwen2)")
    parser.add_argument("dst", help="output directory")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"], help="default: the checkpoint's")
    parser.add_argument("--overwrite", action="store_true", help="write into an existing, non-empty DST")


def run(args) -> int:
    from ..errors import ConfigError
    from ..model.convert import ORIGINAL_MODEL_TYPE
    from ..model.export import export_checkpoint
    from ..model.load import detect_format

    fmt = detect_format(args.src)
    if fmt != ORIGINAL_MODEL_TYPE:
        hint = "use `fastvlm-video export SRC DST --merge_lora`" if fmt == "lora" else "it loads as it is"
        raise ConfigError(f"{args.src} is already a {fmt} checkpoint, not an original {ORIGINAL_MODEL_TYPE} one: {hint}")
    print(f"wrote {export_checkpoint(args.src, args.dst, dtype=args.dtype, overwrite=args.overwrite)}")
    return 0
