"""fastvlm-video export: write any checkpoint (standard, original, LoRA adapter) as one standard checkpoint.

With --merge_lora an adapter is folded into its base: the result needs neither PEFT nor the base,
and loads with plain `transformers` (AutoModelForImageTextToText + AutoProcessor). An existing,
non-empty DST is refused unless --overwrite.

examples:
  fastvlm-video export runs/lora checkpoints/merged --merge_lora
  fastvlm-video export runs/ft checkpoints/ft-bf16 --dtype bfloat16
  fastvlm-video export checkpoints/llava-fastvithd_0.5b_stage3 checkpoints/fastvlm-0.5b   # original -> standard
"""

import argparse

NAME = "export"
HELP = "write a standalone standard checkpoint (LoRA merged with --merge_lora)"


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("src", help="checkpoint directory: fast_vlm, original llava_qwen2, or LoRA adapter")
    parser.add_argument("dst", help="output directory")
    parser.add_argument("--merge_lora", action="store_true", help="fold a LoRA adapter into its base model")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"], help="default: the checkpoint's")
    parser.add_argument("--overwrite", action="store_true", help="write into an existing, non-empty DST")


def run(args) -> int:
    from ..model.export import export_checkpoint

    print(f"wrote {export_checkpoint(args.src, args.dst, merge_lora=args.merge_lora, dtype=args.dtype, overwrite=args.overwrite)}")
    return 0
