"""fastvlm-video train: LLaVA/FastVLM-fork flags + every HF TrainingArguments flag (or --config run.yaml)."""

NAME = "train"
HELP = "fine-tune FastVLM on videos/images/text (all flags: fastvlm-video train --help)"
PASSTHROUGH = True  # the remaining argv goes to HfArgumentParser


def add_arguments(parser) -> None:
    pass


def run(argv: list[str]) -> int:
    from ..train.args import build_parser, parse_train_args
    from ..train.run import train

    if not argv or argv[0] in ("-h", "--help"):
        build_parser().print_help()
        print("\nOr a YAML file with the same keys: fastvlm-video train --config run.yaml [--flag value ...]")
        return 0
    result = train(*parse_train_args(argv))
    eval_part = f", eval loss {result.eval_loss:.4f}" if result.eval_loss is not None else ""
    print(
        f"saved to {result.output_dir} (train loss {result.train_loss:.4f}{eval_part}, "
        f"{result.skipped} samples skipped, {result.invalid_records} invalid records dropped)"
    )
    return 0
