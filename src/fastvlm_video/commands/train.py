"""fastvlm-video train: LLaVA/FastVLM-fork flags + every HF TrainingArguments flag (or --config run.yaml)."""

NAME = "train"
HELP = "fine-tune FastVLM on videos/images/text (all flags: fastvlm-video train --help)"
PASSTHROUGH = True  # the remaining argv goes to HfArgumentParser

USAGE = """usage: fastvlm-video train --model_name_or_path MODEL --data_path TRAIN.json --image_folder MEDIA
                           --output_dir OUT [--validation_data_path VAL.json] [--flag value ...]
       fastvlm-video train --config run.yaml [--flag value ...]

Fine-tune FastVLM on videos, images and text. Media paths in the data are relative to --image_folder
(checked before the model loads). A YAML file takes the same keys; flags given after it win.

examples:
  fastvlm-video train --model_name_or_path checkpoints/fastvlm-0.5b --data_path data/train.json \\
      --validation_data_path data/val.json --image_folder clips --output_dir runs/ft \\
      --num_video_frames 8 --eval_strategy steps --eval_steps 50 --bf16 true
  fastvlm-video train --config configs/finetune_lora.yaml --model_name_or_path checkpoints/fastvlm-0.5b
  fastvlm-video tiny-model models/tiny && fastvlm-video train --model_name_or_path models/tiny \\
      --data_path data/train.json --image_folder clips --output_dir runs/try --max_steps 4   # no weights needed

most used: --num_video_frames --frame_sampling --image_size --model_max_length --learning_rate
  --num_train_epochs --per_device_train_batch_size --gradient_accumulation_steps --lora_enable
  --unfreeze_mm_vision_tower --resume_from_checkpoint --skip_invalid_records

All flags follow (this tool's first, then Hugging Face TrainingArguments):
"""


def add_arguments(parser) -> None:
    pass


def run(argv: list[str]) -> int:
    import sys

    from ..flag_errors import unknown_flags, unknown_flags_error
    from ..train import flag_snapshot

    parser = flag_snapshot.load()  # the flags without importing transformers (None: none saved for this install)
    if parser is None:
        from ..train.args import build_parser

        parser = build_parser()
        flag_snapshot.remember(parser)  # the next runs answer --help / a typo without transformers
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        parser.print_help()
        return 0
    if unknown := unknown_flags(flag_snapshot.known_flags(parser), argv):
        print(unknown_flags_error(flag_snapshot.known_flags(parser), "fastvlm-video train", unknown), file=sys.stderr)
        return 2

    from ..train.args import parse_train_args
    from ..train.run import train

    result = train(*parse_train_args(argv))
    eval_part = f", eval loss {result.eval_loss:.4f}" if result.eval_loss is not None else ""
    if result.eval_excluded:
        eval_part += f" over the usable validation samples ({result.eval_excluded} excluded)"
    print(
        f"saved to {result.output_dir} (train loss {result.train_loss:.4f}{eval_part}, "
        f"{result.skipped} samples skipped, {result.invalid_records} invalid records dropped)"
    )
    return 0
