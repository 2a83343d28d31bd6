"""fastvlm-video export: write any checkpoint (standard, original, LoRA adapter) as one standard checkpoint.

With --merge_lora an adapter is folded into its base: the result needs neither PEFT nor the base,
and loads with plain `transformers` (AutoModelForImageTextToText + AutoProcessor). An existing,
non-empty DST is refused unless --overwrite.
--format apple writes Apple's original ml-fastvlm layout (llava_qwen2), --format mlx an mlx-vlm
folder (needs the `mlx` extra), --format coreml Apple's layout plus the vision tower as Core ML
(fastvithd.mlpackage; needs the `coreml` extra; runs on macOS/iOS only). See docs/shipping.md.

examples:
  fastvlm-video export runs/lora checkpoints/merged --merge_lora
  fastvlm-video export runs/ft checkpoints/ft-bf16 --dtype bfloat16
  fastvlm-video export checkpoints/llava-fastvithd_0.5b_stage3 checkpoints/fastvlm-0.5b   # original -> standard
  fastvlm-video export runs/ft runs/ft-apple --format apple
  fastvlm-video export runs/ft runs/ft-mlx-4bit --format mlx --quantize 4
  fastvlm-video export runs/ft runs/ft-coreml --format coreml
"""

import argparse

NAME = "export"
HELP = "write a standalone checkpoint: standard (LoRA merged), Apple's layout, MLX or Core ML"


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("src", help="checkpoint directory: fast_vlm, original llava_qwen2, or LoRA adapter")
    parser.add_argument("dst", help="output directory")
    parser.add_argument("--merge_lora", action="store_true", help="fold a LoRA adapter into its base model")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"], help="default: the checkpoint's")
    parser.add_argument("--overwrite", action="store_true", help="write into an existing, non-empty DST")
    parser.add_argument("--format", default="standard", choices=["standard", "apple", "mlx", "coreml"], help="standard fast_vlm (default), Apple's llava_qwen2, mlx-vlm, or Apple's + the tower as Core ML")
    parser.add_argument("--quantize", type=int, choices=[4, 8], help="--format mlx: quantize the LLM to 4 or 8 bits")


def run(args) -> int:
    from ..outputs import refuse_existing

    refuse_existing(args.dst, args.overwrite)  # before torch is imported: a mistake is reported at once
    from ..ship.export import export

    path = export(args.src, args.dst, args.format, args.merge_lora, args.dtype, args.quantize, args.overwrite)
    print(f"wrote {path}")
    return 0
