"""Training configuration: LLaVA / FastVLM-fork flag names + every Hugging Face ``TrainingArguments`` flag.

Parsed by ``HfArgumentParser`` from the command line or a YAML file with the same keys
(``fastvlm-video train --config run.yaml [--flag value ...]``; flags given on the command line win).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from transformers import HfArgumentParser
from transformers import TrainingArguments as HFTrainingArguments

from ..errors import ConfigError

logger = logging.getLogger(__name__)

ATTENTION = ("sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")
DEFAULT_LOGGING_STEPS = 500  # HF's default: longer than most fine-tuning runs, which then log nothing


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "Local FastVLM checkpoint directory (HF 'fast_vlm' format)."})
    freeze_backbone: bool = field(default=False, metadata={"help": "Freeze the LLM (alias: --freeze_llm).", "aliases": ["--freeze_llm"]})
    tune_mm_mlp_adapter: bool = field(
        default=False, metadata={"help": "Train only the projector (LLaVA stage 1; alias: --train_projector_only).", "aliases": ["--train_projector_only"]}
    )
    unfreeze_mm_vision_tower: bool = field(
        default=False,
        metadata={"help": "Also train the vision tower (frozen by default, as in LLaVA; alias: --train_vision_tower).", "aliases": ["--train_vision_tower"]},
    )
    vision_tower_batchnorm: str = field(
        default="frozen",
        metadata={
            "help": "BatchNorm of a trained tower: 'frozen' keeps (uses, never updates) its running statistics, as "
            "inference does; 'batch' trains on batch statistics (LLaVA's behaviour; train and inference then differ)."
        },
    )
    # Accepted so FastVLM-fork command lines run unchanged; each is checked against the checkpoint.
    version: str = field(default="qwen_2", metadata={"help": "Conversation template; FastVLM uses 'qwen_2' (ChatML)."})
    vision_tower: str | None = field(default=None, metadata={"help": "Fixed by the checkpoint; checked and ignored."})
    mm_projector_type: str = field(default="mlp2x_gelu", metadata={"help": "Fixed by the checkpoint (mlp2x_gelu)."})
    mm_vision_select_layer: int = field(default=-1, metadata={"help": "Fixed by the checkpoint (last layer)."})
    mm_use_im_start_end: bool = field(default=False, metadata={"help": "Not used by FastVLM; must stay False."})
    mm_use_im_patch_token: bool = field(default=False, metadata={"help": "Not used by FastVLM; must stay False."})
    pretrain_mm_mlp_adapter: str | None = field(default=None, metadata={"help": "Not supported: the checkpoint holds the projector."})
    attn_implementation: str = field(
        default="sdpa",
        metadata={"help": "The LLM's attention: sdpa (default), eager, flash_attention_2 / flash_attention_3 (CUDA, the "
                  "flash-attn package; padding-free --packing pays most with them) or flex_attention. The tower has none."},
    )

    def __post_init__(self):
        if self.attn_implementation not in ATTENTION:
            raise ConfigError(f"--attn_implementation {self.attn_implementation!r}: use one of {', '.join(ATTENTION)}")


@dataclass
class DataArguments:
    data_path: list[str] = field(metadata={"help": "Training data: LLaVA JSON/JSONL or 'messages' format; one or more files."})
    image_folder: str = field(default=".", metadata={"help": "Folder media paths are relative to (alias: --media_folder).", "aliases": ["--media_folder"]})
    validation_data_path: list[str] = field(default_factory=list, metadata={"help": "Validation data, evaluated during training."})
    num_video_frames: int = field(default=8, metadata={"help": "Frames sampled per video (N)."})
    frame_sampling: str = field(default="uniform", metadata={"help": "uniform | fps | keyframe."})
    video_fps: float = field(default=1.0, metadata={"help": "Frames per second for --frame_sampling fps."})
    max_frames: int = field(default=64, metadata={"help": "Cap on frames for --frame_sampling fps."})
    min_frames: int | None = field(default=None, metadata={"help": "Floor on frames for --frame_sampling fps (short clips; default 1)."})
    max_visual_tokens: int | None = field(
        default=None, metadata={"help": "Per-sample image-token budget: fewer frames first, then a smaller frame size (docs/video.md); 0: none."}
    )
    time_instruction: bool | None = field(
        default=None, metadata={"help": "Tell the model when its frames were taken, in the user turn (LLaVA-Video style; never trained)."}
    )
    video_backend: str = field(default="auto", metadata={"help": "auto | pyav | decord."})
    frames_fps: float | None = field(
        default=None, metadata={"help": "Frames per second of a folder of frames (a video) without fps.txt/meta.json (default 1)."}
    )
    image_size: int | None = field(default=None, metadata={"help": "Frame size S (default: the checkpoint's processor, 1024)."})
    image_aspect_ratio: str = field(default="pad", metadata={"help": "pad (FastVLM) | crop | resize (alias: square)."})
    allow_outside_media_folder: bool = field(
        default=False, metadata={"help": "Accept media paths that escape --image_folder (../, absolute, symlinks out)."}
    )
    skip_invalid_records: bool = field(default=False, metadata={"help": "Drop invalid records (logged, counted) instead of stopping."})
    max_skip_fraction: float = field(default=0.05, metadata={"help": "Stop when more than this share of samples is skipped."})
    probe_media: bool = field(
        default=True,
        metadata={"help": "Probe every media file's header at start-up (cached by path, size and mtime): unusable training files "
                  "count against --max_skip_fraction before the model loads, unusable validation files are left out."},
    )
    frame_cache: str | None = field(default=None, metadata={"help": "Frame cache directory (`fastvlm-video cache`): frames read, not decoded."})
    feature_cache: str | None = field(
        default=None,
        metadata={"help": "Frozen-tower feature cache directory, filled in epoch 1: later epochs skip decoding and the tower "
                  "(docs/cache.md). E.g. --feature_cache cache/features"},
    )
    lazy_preprocess: bool = field(default=True, metadata={"help": "Accepted for LLaVA compatibility; loading is always lazy."})
    is_multimodal: bool = field(default=True, metadata={"help": "Accepted for LLaVA compatibility."})

    def video_overrides(self) -> dict:
        """The ``VideoConfig`` fields these flags set (``None``: keep the checkpoint's)."""
        return {
            "num_frames": self.num_video_frames,
            "frame_sampling": self.frame_sampling,
            "fps": self.video_fps,
            "max_frames": self.max_frames,
            "image_size": self.image_size,
            "aspect": self.aspect,
            "video_backend": self.video_backend,
            "min_frames": self.min_frames,
            "max_visual_tokens": self.max_visual_tokens,
            "time_instruction": self.time_instruction,
            "frames_fps": self.frames_fps,
        }

    @property
    def aspect(self) -> str:
        aliases = {"pad": "pad", "crop": "crop", "resize": "resize", "square": "resize"}
        if self.image_aspect_ratio not in aliases:
            raise ConfigError(f"--image_aspect_ratio {self.image_aspect_ratio!r} is not supported: use one of {sorted(aliases)}")
        return aliases[self.image_aspect_ratio]


@dataclass
class TrainingArguments(HFTrainingArguments):
    model_max_length: str = field(
        default="auto",
        metadata={"help": "Longest sequence, image tokens included: 'auto' (the longest sample, capped by the model's context) or a number; "
                  "longer samples are truncated (never inside image tokens) or skipped."},
    )
    mm_projector_lr: float | None = field(default=None, metadata={"help": "Learning rate of the projector (default: --learning_rate)."})
    vision_tower_lr: float | None = field(default=None, metadata={"help": "Learning rate of the vision tower (default: --learning_rate)."})
    evaluation_strategy: str | None = field(default=None, metadata={"help": "Old name of --eval_strategy (accepted)."})
    warmup_ratio: float | None = field(default=None, metadata={"help": "Old name: share of steps to warm up (sets --warmup_steps)."})
    group_by_modality_length: bool = field(default=False, metadata={"help": "Batches of one modality (video/image/text) and similar token length: less padding (LLaVA's flag)."})
    packing: bool = field(
        default=False, metadata={"help": "Padding-free: each batch's samples in one row, positions restarting per sample (same loss, no padding)."}
    )
    cpu_threads: int = field(
        default=0,
        metadata={"help": "CPU training: torch threads. 0 follows the free cores (fast beside other jobs, but the thread count "
                  "changes float sums, so losses vary run to run); N pins N threads: the same losses every run."},
    )
    report_to: None | str | list[str] = field(default="tensorboard", metadata={"help": "tensorboard (default), wandb, none, ..."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Kept False: batches are built by our collator."})
    # LoRA / QLoRA (LLaVA's flag names).
    lora_enable: bool = field(default=False, metadata={"help": "Train LoRA adapters on the LLM (projector trained in full; tower too with --unfreeze_mm_vision_tower)."})
    lora_r: int = field(default=64, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: str = field(default="all-linear", metadata={"help": "'all-linear' (every linear layer of the LLM) or names, e.g. 'q_proj,v_proj'."})
    lora_bias: str = field(default="none", metadata={"help": "none | all | lora_only."})
    bits: int = field(default=16, metadata={"help": "4 (or 8) = QLoRA: the LLM quantized with bitsandbytes (CUDA only); 16 = no quantization."})
    double_quant: bool = field(default=True, metadata={"help": "QLoRA: quantize the quantization constants."})
    quant_type: str = field(default="nf4", metadata={"help": "QLoRA: nf4 | fp4."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Write over an --output_dir that already holds files (refused otherwise, unless resuming)."})
    dataloader_num_workers: int = field(default=1, metadata={"help": "DataLoader worker processes decoding media (0 = in the training process)."})
    # Post-training (docs/post_training.md): the objective, and DPO's settings.
    method: str = field(
        default="sft",
        metadata={"help": "Objective: sft (next-token loss on the answers; default) | dpo (preference pairs: records with "
                  "'chosen' and 'rejected') | grpo (sampled answers scored by reward rules)."},
    )
    beta: float | None = field(
        default=None,
        metadata={"help": "DPO: strength of the pull to the reference (default 0.1; SimPO: reward scale, default 2.0); "
                  "GRPO: weight of the KL term."},
    )
    loss_type: str = field(
        default="sigmoid",
        metadata={"help": "DPO loss: sigmoid (DPO) | ipo (IPO, length-averaged log-ratios) | simpo (SimPO: reference-free, "
                  "length-normalised, with --simpo_gamma)."},
    )
    simpo_gamma: float = field(default=0.5, metadata={"help": "SimPO: target reward margin gamma (loss = -log sigmoid(beta * mean log-prob difference - gamma))."})
    reference: str = field(
        default="auto",
        metadata={"help": "DPO reference model: auto (adapter_off with --lora_enable, else copy) | copy (a frozen copy of the "
                  "starting weights in memory) | adapter_off (LoRA: the base weights, adapter disabled; no extra memory) | "
                  "precompute (reference log-probs computed in one pass before training and stored in OUTPUT_DIR; no "
                  "reference in memory while training)."},
    )
    # GRPO (docs/post_training.md#grpo): sampling, rewards, the clipped objective.
    num_generations: int = field(default=4, metadata={"help": "GRPO: answers sampled per prompt (G, at least 2); a step holds batch x G sequences."})
    temperature: float = field(default=1.0, metadata={"help": "GRPO: sampling temperature of the answers (no top-k / top-p)."})
    max_completion_length: int = field(
        default=32, metadata={"help": "GRPO: most new tokens per sampled answer (alias: --max_new_tokens).", "aliases": ["--max_new_tokens"]}
    )
    epsilon: float = field(default=0.2, metadata={"help": "GRPO: the ratio is clipped to [1 - epsilon, 1 + epsilon]."})
    reward: str = field(
        default="exact",
        metadata={"help": "GRPO rewards, name[=weight] comma-separated: exact | choice | class | format | module:function "
                  "(called as fn(record, completion, times)). E.g. --reward choice=1,format=0.2"},
    )
    grpo_loss_type: str = field(
        default="grpo",
        metadata={"help": "GRPO normalisation: grpo (mean over each answer's tokens, then over answers; DeepSeekMath) | "
                  "token (mean over all answer tokens of the batch; DAPO)."},
    )
    scale_rewards: str = field(default="group", metadata={"help": "GRPO advantages: group (reward minus group mean, over group std) | none (minus the mean only)."})

    def __post_init__(self):
        if self.evaluation_strategy is not None:
            self.eval_strategy = self.evaluation_strategy
        if self.warmup_ratio is not None:
            self.warmup_steps = self.warmup_ratio
        check_post_training(self)
        if not torch.cuda.is_available():
            self.dataloader_pin_memory = False  # pinning needs an accelerator (a warning on every run otherwise)
        super().__post_init__()


METHODS = ("sft", "dpo", "grpo")
DPO_LOSSES = ("sigmoid", "ipo", "simpo")
REFERENCES = ("auto", "copy", "adapter_off", "precompute")
DEFAULT_BETA = {"sigmoid": 0.1, "ipo": 0.1, "simpo": 2.0}


def check_post_training(args: TrainingArguments) -> None:
    """Refuse an unknown --method / --loss_type / --reference, or DPO settings that cannot work, before anything loads."""
    for flag, value, allowed in (("method", args.method, METHODS), ("loss_type", args.loss_type, DPO_LOSSES),
                                 ("reference", args.reference, REFERENCES)):  # fmt: skip
        if value not in allowed:
            raise ConfigError(f"--{flag} {value!r}: use one of {', '.join(allowed)}")
    if args.method == "dpo":
        if args.beta is not None and args.beta <= 0:
            raise ConfigError(f"--beta {args.beta}: DPO needs a positive beta (default {DEFAULT_BETA[args.loss_type]} for --loss_type {args.loss_type})")
        if args.reference == "adapter_off" and not args.lora_enable:
            raise ConfigError("--reference adapter_off needs --lora_enable (the base weights are the reference); use copy or precompute")
        if args.packing:
            raise ConfigError("--packing is not supported with --method dpo (each pair is two padded rows); drop --packing")
    if args.method == "grpo":
        check_grpo(args)


GRPO_DEFAULT_BETA = 0.04  # DeepSeekMath's KL weight


def check_grpo(args: TrainingArguments) -> None:
    """GRPO settings that cannot work, refused before anything loads."""
    if args.num_generations < 2:
        raise ConfigError(f"--num_generations {args.num_generations}: GRPO compares answers within a group; use at least 2")
    if args.temperature <= 0:
        raise ConfigError(f"--temperature {args.temperature}: GRPO samples its answers; use a positive temperature (e.g. 1.0)")
    if args.max_completion_length < 1:
        raise ConfigError(f"--max_completion_length {args.max_completion_length}: allow at least 1 new token")
    if args.beta is not None and args.beta < 0:
        raise ConfigError(f"--beta {args.beta}: the KL weight cannot be negative (0 drops the reference model)")
    if args.grpo_loss_type not in ("grpo", "token"):
        raise ConfigError(f"--grpo_loss_type {args.grpo_loss_type!r}: use grpo or token")
    if args.scale_rewards not in ("group", "none"):
        raise ConfigError(f"--scale_rewards {args.scale_rewards!r}: use group or none")
    if args.reference not in ("auto", "copy"):
        raise ConfigError(f"--reference {args.reference}: GRPO's reference is a frozen copy of the starting model (auto / copy); "
                          "its answers are sampled online, so no log-probs can be precomputed")
    if args.packing:
        raise ConfigError("--packing is not supported with --method grpo (answers are generated per prompt); drop --packing")


def grpo_beta(args: TrainingArguments) -> float:
    """--beta, or GRPO's default (DeepSeekMath's 0.04)."""
    return args.beta if args.beta is not None else GRPO_DEFAULT_BETA


def dpo_beta(args: TrainingArguments) -> float:
    """--beta, or the loss type's default."""
    return args.beta if args.beta is not None else DEFAULT_BETA[args.loss_type]


def reference_kind(args: TrainingArguments) -> str | None:
    """The DPO reference actually used: None for SimPO (reference-free); auto resolves by --lora_enable."""
    if args.loss_type == "simpo":
        return None
    if args.reference == "auto":
        return "adapter_off" if args.lora_enable else "copy"
    return args.reference


class TrainArgumentParser(HfArgumentParser):
    """``HfArgumentParser`` for the three dataclasses: no abbreviated flags, errors as ``ConfigError``."""

    def __init__(self):
        super().__init__((ModelArguments, DataArguments, TrainingArguments), prog="fastvlm-video train", allow_abbrev=False)

    def error(self, message: str):
        raise ConfigError(f"{message} (all flags: fastvlm-video train --help)")

    def known_keys(self) -> list[str]:
        return [opt[2:] for action in self._actions for opt in action.option_strings if opt.startswith("--")]

    def unknown(self, key: str, yaml_file: str | None = None) -> ConfigError:
        """An unknown flag (or YAML key of ``yaml_file``), with the closest known one."""
        close = difflib.get_close_matches(key, self.known_keys(), n=1, cutoff=0.6)
        if yaml_file:
            hint = f": did you mean {close[0]!r}?" if close else ""
            return ConfigError(f"{yaml_file}: unknown key {key!r}{hint} (all keys: fastvlm-video train --help)")
        hint = f": did you mean --{close[0]}?" if close else ""
        return ConfigError(f"unknown flag --{key}{hint} (all flags: fastvlm-video train --help)")

    def default_of(self, key: str):
        for action in self._actions:
            if f"--{key}" in action.option_strings:
                return action.default
        return None


def _load_yaml(path: str) -> dict:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--config {path}: no such file")
    try:
        config = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping of flag names to values")
    return config


def _yaml_to_argv(path: str, parser: TrainArgumentParser) -> list[str]:
    """The YAML file as flags. ``null`` keeps a default of None; a mapping (e.g. ``lr_scheduler_kwargs``) is JSON."""
    argv: list[str] = []
    known = set(parser.known_keys())
    for key, value in _load_yaml(path).items():
        if key not in known:
            raise parser.unknown(str(key), yaml_file=path)
        if value is None:
            if parser.default_of(key) is not None:
                raise ConfigError(f"{path}: {key}: null is not accepted (its default is {parser.default_of(key)!r}); remove the line to keep the default")
            continue
        values = value if isinstance(value, list) else [value]
        argv += [f"--{key}", *(json.dumps(v) if isinstance(v, dict) else str(v) for v in values)]
    return argv


def _expand_config(argv: list[str], parser: TrainArgumentParser) -> list[str]:
    """``--config FILE`` anywhere: its keys first, so the other flags on the command line win."""
    for i, arg in enumerate(argv):
        if arg == "--config" or arg.startswith("--config="):
            path = arg.split("=", 1)[1] if "=" in arg else (argv[i + 1] if i + 1 < len(argv) else None)
            if not path or path.startswith("--"):
                raise ConfigError("--config needs a YAML file")
            rest = argv[:i] + argv[i + (1 if "=" in arg else 2) :]
            return _yaml_to_argv(path, parser) + rest
    return argv


def parse_train_args(argv: list[str]) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    """Parse ``argv`` (``--config FILE.yaml`` anywhere; flags on the command line override it)."""
    parser = TrainArgumentParser()
    argv = _expand_config(argv, parser)
    try:
        *parsed, rest = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    except ValueError as exc:  # TrainingArguments' own checks
        message = " ".join(str(exc).split())
        if "bf16" in message:
            message += " (no GPU with bf16 here: pass --bf16 false, or --use_cpu true)"
        raise ConfigError(message) from None
    flags = [arg for arg in rest if arg.startswith("--")]
    if flags:
        raise parser.unknown(flags[0][2:].split("=", 1)[0])
    if rest:
        raise ConfigError(f"unexpected value(s) {rest} (all flags: fastvlm-video train --help)")
    model_args, data_args, training_args = parsed
    training_args.logging_steps_given = any(a == "--logging_steps" or a.startswith("--logging_steps=") for a in argv)
    return model_args, data_args, training_args


def build_parser() -> HfArgumentParser:
    return TrainArgumentParser()
