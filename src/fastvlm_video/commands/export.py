"""fastvlm-video export: write any checkpoint (standard, original, LoRA adapter) as one standard checkpoint.

With --merge_lora an adapter is folded into its base: the result needs neither PEFT nor the base,
and loads with plain `transformers` (AutoModelForImageTextToText + AutoProcessor).
"""

NAME = "export"
HELP = "write a standalone standard checkpoint (LoRA merged with --merge_lora)"


def add_arguments(parser) -> None:
    parser.add_argument("src", help="checkpoint directory: fast_vlm, original llava_qwen2, or LoRA adapter")
    parser.add_argument("dst", help="output directory")
    parser.add_argument("--merge_lora", action="store_true", help="fold a LoRA adapter into its base model")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"], help="default: the checkpoint's")


def run(args) -> int:
    from ..model.export import export_checkpoint

    print(f"wrote {export_checkpoint(args.src, args.dst, merge_lora=args.merge_lora, dtype=args.dtype)}")
    return 0
