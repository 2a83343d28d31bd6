"""fastvlm-video budget: plan a run before renting GPUs - tokens per sample, memory per GPU, what fits.

Reads only the checkpoint's config.json (and tokenizer) and the data records: no weights are
loaded and no video is decoded (fps sampling reads each video's container header, ~1 ms a file).
Prints (1) image/text/total tokens per sample (p50/p95/max) and how many samples cannot fit
--model_max_length; (2) the estimated peak memory per GPU, split into weights, gradients,
optimizer states and activations; (3) with --gpu_memory, the frames / frame size / batch / max
length options that fit. The memory model is a formula of the config (docs/performance.md
compares it with measured peaks).

examples:
  fastvlm-video budget --model checkpoints/fastvlm-0.5b --data train.json --media_folder videos \\
      --num_video_frames 8 --gpu_memory 24GB
  fastvlm-video budget --model checkpoints/fastvlm-7b/config.json --train lora --precision bf16 \\
      --gradient_checkpointing --num_video_frames 16 --image_size 512 --gpu_memory 80GB
"""

import argparse

NAME = "budget"
HELP = "estimate tokens per sample and GPU memory of a fine-tune; list the settings that fit a GPU"


def add_arguments(parser) -> None:
    from ..constants import DTYPE_BYTES as BYTES, TRAIN_MODES
    from ..data.settings import add_video_arguments

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_video_arguments(parser)
    parser.add_argument("--data", "--data_path", dest="data", action="extend", nargs="+", default=[], metavar="FILE",
                        help="data files (training + validation) to count tokens of (optional)")
    parser.add_argument("--media_folder", "--image_folder", dest="media_folder", default=".", help="folder media paths are relative to")
    parser.add_argument("--tokenizer", help="tokenizer directory (default: --model's)")
    parser.add_argument("--model_max_length", default="auto", help="'auto' (longest sample, capped by the model's context) or tokens")
    parser.add_argument("--text_tokens", type=int, default=128, help="text tokens per sample when no --data is given (default: 128)")
    parser.add_argument("--batch_size", type=int, default=1, help="per-GPU batch size (default: 1)")
    parser.add_argument("--precision", choices=sorted(BYTES), default="bf16", help="default: bf16")
    parser.add_argument("--train", choices=TRAIN_MODES, default="full",
                        help="full LLM + projector; frozen_llm/projector: projector only; lora / qlora: adapters on the LLM (default: full)")
    parser.add_argument("--train_vision_tower", action="store_true", help="the vision tower trains too")
    parser.add_argument("--lora_r", type=int, default=64, help="LoRA rank (default: 64)")
    parser.add_argument("--gradient_checkpointing", action="store_true", help="recompute LLM layers in the backward pass")
    parser.add_argument("--zero_stage", type=int, choices=[0, 1, 2, 3], default=0, help="DeepSpeed ZeRO stage (0: none)")
    parser.add_argument("--num_gpus", type=int, default=1, help="GPUs the run is spread over (default: 1)")
    parser.add_argument("--gpu_memory", help="GPU memory to fit, e.g. 24GB: prints the options that fit")
    parser.add_argument("--method", choices=["sft", "dpo", "grpo"], default="sft",
                        help="objective (as train --method): dpo holds 2 sequences per sample, grpo --num_generations; "
                             "both a frozen reference copy unless --reference none (default: sft)")
    parser.add_argument("--num_generations", type=int, default=4, help="GRPO: sampled answers per prompt, G (default: 4)")
    parser.add_argument("--reference", choices=["auto", "copy", "none"], default="auto",
                        help="dpo/grpo: auto = a frozen copy (none for DPO with --train lora/qlora: adapter off); "
                             "none = GRPO with --beta 0, or DPO with precomputed reference log-probs")


def run(args) -> int:
    from pathlib import Path

    from ..budget.memory import ModelShape, Setting, estimate, parse_size
    from ..budget.report import fit_lines, fit_options, memory_lines, token_lines
    from ..budget.tokens import LengthReport, fit_frame_size, measure, resolve_max_length
    from ..data.records import load_samples
    from ..data.settings import chat_encoder, video_settings
    from ..errors import ConfigError

    if not args.model:
        raise ConfigError("budget needs --model: a checkpoint directory or its config.json")
    model_path = Path(args.model)
    args.model = str(model_path.parent if model_path.is_file() else model_path)
    shape = ModelShape.from_path(model_path)
    video = video_settings(args)
    text_tokens, max_length, frames = args.text_tokens, None, video.frames_per_video
    if args.data:
        samples, _ = load_samples(args.data, args.media_folder, skip_invalid=True, allow_outside_media_folder=True)
        video = fit_frame_size(video, samples)
        encoder = chat_encoder(args.tokenizer or args.model, video)
        if encoder is None or not samples:
            raise ConfigError("counting tokens needs the tokenizer: give --tokenizer DIR (or --model a checkpoint directory)")
        report = measure(samples, encoder, video)
        max_length = resolve_max_length(args.model_max_length, report, shape.max_positions)
        print("\n".join(token_lines(report, max_length, video)))
        print()
        text_tokens = report.table()["text"]["max"]
        frames = max((s.frames for s in report.lengths), default=frames)
    if max_length is None and str(args.model_max_length).lower() != "auto":
        max_length = resolve_max_length(args.model_max_length, LengthReport([]), None)
    seq_len = max_length or text_tokens + frames * video.tokens_per_frame
    setting = Setting(
        batch_size=args.batch_size, seq_len=seq_len, frames=frames, image_size=video.image_size,
        precision=args.precision, train=args.train, train_vision_tower=args.train_vision_tower, lora_r=args.lora_r,
        gradient_checkpointing=args.gradient_checkpointing, zero_stage=args.zero_stage, num_gpus=args.num_gpus,
        rows_per_sample=rows_per_sample(args.method, args.num_generations), reference_copy=reference_copy(args),
    )
    print("\n".join(memory_lines(estimate(shape, setting), setting)))
    if args.gpu_memory:
        print()
        gpu = parse_size(args.gpu_memory)
        print("\n".join(fit_lines(fit_options(shape, setting, gpu, text_tokens, shape.max_positions), gpu)))
    return 0


def rows_per_sample(method: str, num_generations: int) -> int:
    """Sequences per sample in one step: SFT 1, DPO 2 (chosen + rejected), GRPO G."""
    return {"sft": 1, "dpo": 2}.get(method, num_generations)


def reference_copy(args) -> bool:
    """Whether the run holds a frozen copy of the model (``--reference auto`` resolved as ``train`` does)."""
    if args.method == "sft" or args.reference == "none":
        return False
    return args.reference == "copy" or not (args.method == "dpo" and args.train in ("lora", "qlora"))
