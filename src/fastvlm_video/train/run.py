"""``fastvlm-video train``: build everything from the arguments and hand it to the HF Trainer.

Read top to bottom: output folder (or the checkpoint to resume) -> checkpoint -> video settings -> data
-> what trains (full, frozen parts, LoRA) -> Trainer -> save. A LoRA run saves its adapter (``adapter_config.json``), which every command loads;
``fastvlm-video export OUT DST --merge_lora`` turns it into a standalone checkpoint.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import set_seed

from ..budget.tokens import max_position_embeddings, plan_lengths
from ..data.chat import ChatEncoder
from ..data.collate import Collator
from ..data.dataset import ConversationDataset
from ..data.feature_cache import FeatureCacheCallback, check_allowed, open_feature_cache
from ..data.frame_cache import open_frame_cache
from ..data.preference import PreferenceCollator, PreferenceDataset, length_variants, require_pairs
from ..data.preflight import check_unusable_share, preflight, screen_media
from ..errors import ConfigError, TooManySkippedSamples, TrainingInterrupted
from ..file_modes import share_like_other_files
from ..model.load import load_model, load_tokenizer, video_config_of
from ..model.lora import LoraSettings, apply_lora, quantization_config
from ..model.processor import make_processor
from ..save_marker import mark_complete, mark_incomplete
from .args import DataArguments, ModelArguments, TrainingArguments, dpo_beta, reference_kind
from .checkpoints import checkpoints_newest_first, check_output_dir, disk_full_is_one_line, incomplete_reason, resolve_resume
from .dpo import DPOTrainer, frozen_copy
from .freeze import BATCHNORM_MODES, set_trainable
from .grpo_setup import GRPO_PARTS, grpo_max_length, grpo_parts, write_grpo_summary
from .summary import run_progress, write_summary
from .threads import cpu_thread_callbacks
from .trainer import SKIP_REPORT, SkipCounter, VideoTrainer

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    output_dir: Path
    train_loss: float
    eval_loss: float | None
    skipped: int
    invalid_records: int
    eval_excluded: int = 0  # validation samples left out of the validation loss (unusable media)


def check_fork_flags(model_args: ModelArguments, model) -> None:
    """FastVLM-fork flags that the checkpoint fixes: fail on a contradiction, note the rest."""
    if model_args.version not in ("qwen_2", "qwen2", "chatml"):
        raise ConfigError(f"--version {model_args.version!r}: FastVLM uses the 'qwen_2' (ChatML) template")
    if model_args.mm_projector_type != "mlp2x_gelu":
        raise ConfigError(f"--mm_projector_type {model_args.mm_projector_type!r}: FastVLM's projector is mlp2x_gelu")
    if model_args.mm_use_im_start_end or model_args.mm_use_im_patch_token:
        raise ConfigError("--mm_use_im_start_end / --mm_use_im_patch_token: FastVLM checkpoints use neither; leave them False")
    if model_args.pretrain_mm_mlp_adapter:
        raise ConfigError("--pretrain_mm_mlp_adapter: the checkpoint already holds its projector")
    if model_args.vision_tower:
        logger.info("--vision_tower %s ignored: the checkpoint's tower is %s", model_args.vision_tower, model.config.vision_config.architecture)
    if model_args.mm_vision_select_layer not in (-1, -2):
        logger.info("--mm_vision_select_layer %s ignored: FastVLM uses the last layer", model_args.mm_vision_select_layer)


def model_dtype(training_args: TrainingArguments) -> torch.dtype:
    return torch.bfloat16 if training_args.bf16 else (torch.float16 if training_args.fp16 else torch.float32)


def load_for_training(model_args: ModelArguments, training_args: TrainingArguments):
    """The checkpoint (any format; an adapter is merged into its base), its LLM quantized for QLoRA and with
    ``--attn_implementation`` (the LLM only: the timm tower keeps its own attention)."""
    dtype = model_dtype(training_args)
    extra = {"attn_implementation": {"text_config": model_args.attn_implementation}}
    if training_args.bits < 16:
        if not training_args.lora_enable:
            raise ConfigError(f"--bits {training_args.bits} quantizes the LLM for QLoRA: add --lora_enable")
        extra["quantization_config"] = quantization_config(training_args.bits, dtype, training_args.double_quant, training_args.quant_type)
    try:
        return load_model(model_args.model_name_or_path, dtype=dtype, merge_lora=True, **extra)
    except (ImportError, ValueError) as exc:
        if model_args.attn_implementation == "sdpa" or "ttention" not in str(exc):
            raise
        raise ConfigError(f"--attn_implementation {model_args.attn_implementation}: {' '.join(str(exc).split())} "
                          "(use --attn_implementation sdpa, or install what it needs)") from None


def tower_trains(model_args: ModelArguments) -> bool:
    return model_args.unfreeze_mm_vision_tower and not model_args.tune_mm_mlp_adapter


def choose_trainable(model, model_args: ModelArguments, training_args: TrainingArguments):
    """Freeze what the flags say; with --lora_enable the LLM trains through adapters. Returns the model to train."""
    train_llm = not (model_args.freeze_backbone or model_args.tune_mm_mlp_adapter)
    train_tower = tower_trains(model_args)
    if training_args.activation_checkpointing:  # the Trainer turns it on; frozen embeddings must still pass grads
        model.enable_input_require_grads()
    batchnorm = model_args.vision_tower_batchnorm
    if not training_args.lora_enable:
        set_trainable(model, train_llm=train_llm, train_projector=True, train_vision_tower=train_tower, tower_batchnorm=batchnorm)
        return model
    if not train_llm:
        raise ConfigError("--lora_enable puts adapters on the LLM: drop --freeze_backbone / --tune_mm_mlp_adapter")
    set_trainable(model, train_llm=False, train_projector=True, train_vision_tower=train_tower, tower_batchnorm=batchnorm)
    settings = LoraSettings(
        r=training_args.lora_r,
        alpha=training_args.lora_alpha,
        dropout=training_args.lora_dropout,
        target_modules=training_args.lora_target_modules,
        bias=training_args.lora_bias,
    )
    return apply_lora(model, settings, train_projector=True, train_vision_tower=train_tower)


def check_batchnorm_mode(model_args: ModelArguments) -> None:
    if model_args.vision_tower_batchnorm not in BATCHNORM_MODES:
        raise ConfigError(f"--vision_tower_batchnorm {model_args.vision_tower_batchnorm!r}: use one of {', '.join(BATCHNORM_MODES)}")


def worker_message(exc: Exception) -> str:
    """The original message of an error re-raised from a DataLoader worker, without the traceback."""
    text, marker = str(exc), f"{type(exc).__name__}: "
    return text.rsplit(marker, 1)[1].strip() if text.startswith("Caught ") and marker in text else text


def last_checkpoint_note(run_dir: Path) -> str:
    """'the last complete checkpoint is X (checkpoint-N: why not)', or that there is none; for one-line messages."""
    passed = []
    for folder in checkpoints_newest_first(run_dir):
        reason = incomplete_reason(folder)
        if reason is None:
            skipped = f" ({'; '.join(passed)}: not resumable)" if passed else ""
            return f"the last complete checkpoint is {folder}{skipped}"
        passed.append(f"{folder.name}: {reason}")
    return "there is no complete checkpoint" + (f" ({'; '.join(passed)})" if passed else "")


def stop_on_skips(trainer: VideoTrainer, counter: SkipCounter, exc: TooManySkippedSamples) -> TooManySkippedSamples:
    """Save the skip report and a resumable checkpoint, then the one-line error to raise.

    The checkpoint is saved when one process trains and at least one step finished. With several processes
    each stops on its own draw, at its own step, and a save is collective (it would wait for the others):
    the message then names the last complete checkpoint instead, as it does at step 0 (nothing to save).
    """
    output_dir = Path(trainer.args.output_dir)
    step = trainer.state.global_step
    if trainer.args.world_size == 1 and step > 0:
        trainer._save_checkpoint(trainer.model, trial=None)
        saved = f" State saved in {output_dir / f'checkpoint-{step}'} (resume with --resume_from_checkpoint latest)."
    else:
        why = "it stopped before the first step finished" if step == 0 else (
            f"{trainer.args.world_size} processes stop at different steps and a save needs them all")
        saved = f" No checkpoint saved at the stop ({why}); {last_checkpoint_note(output_dir)}."
    if trainer.is_world_process_zero():
        counter.write(output_dir / SKIP_REPORT)
    return TooManySkippedSamples(f"{worker_message(exc)}{saved} Skipped samples: {output_dir / SKIP_REPORT}")


def interrupted(trainer: VideoTrainer) -> TrainingInterrupted:
    """Ctrl-C: one line with the step, the last complete checkpoint and the resume command."""
    run_dir = Path(trainer.args.output_dir)
    note = last_checkpoint_note(run_dir)
    hint = ("resume with the same command plus --resume_from_checkpoint latest" if note.startswith("the last")
            else "start the run again (checkpoints are saved every --save_steps)")
    return TrainingInterrupted(f"training interrupted at step {trainer.state.global_step}; {note}: {hint}")


def planned_steps(samples: int, args: TrainingArguments) -> int:
    """Optimizer steps the run will take: ``--max_steps``, or epochs x batches per epoch (as the Trainer counts)."""
    if args.max_steps > 0:
        return args.max_steps
    batches = math.ceil(samples / (args.per_device_train_batch_size * max(1, args.world_size)))
    return max(1, math.ceil(args.num_train_epochs * max(1, batches // args.gradient_accumulation_steps)))


def cap_logging_steps(args: TrainingArguments, total_steps: int) -> None:
    """Log about 20 times in a short run: HF's default (every 500 steps) logs nothing in most fine-tuning runs.

    An explicit ``--logging_steps`` is kept unless it is longer than the whole run."""
    if args.logging_strategy != "steps" or args.logging_steps < 1:  # a float < 1 is already a share of the run
        return
    cap = max(1, total_steps // 20)
    given = getattr(args, "logging_steps_given", False)
    if args.logging_steps > cap and (not given or args.logging_steps > total_steps):
        logger.info("logging every %d steps (%d steps in this run; --logging_steps %g would log %s); pass --logging_steps to choose",
                    cap, total_steps, args.logging_steps, "nothing" if args.logging_steps > total_steps else "rarely")
        args.logging_steps = cap


def prepare_output_dir(training_args: TrainingArguments) -> str | None:
    """The checkpoint to resume from (a complete one), after checking ``--output_dir`` may be written."""
    resume = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)
    if training_args.process_index == 0:
        check_output_dir(training_args.output_dir, training_args.overwrite_output_dir, resuming=resume is not None)
    return resume


def save_final(trainer: VideoTrainer, video, counter: SkipCounter, output_dir: Path, write_extra: Callable[[Path], object]) -> None:
    """The model, ``video_config.json`` first and the save marker removed last (a cut-short save is refused);
    ``write_extra(output_dir)`` writes the run's other files (the training summary) before the marker goes."""
    main = trainer.is_world_process_zero()
    with disk_full_is_one_line(output_dir, output_dir, remove_partial=False):
        if main:
            mark_incomplete(output_dir)
            video.save(output_dir)
        trainer.save_model(str(output_dir))
        trainer.save_state()
        if main:
            counter.write(output_dir / SKIP_REPORT)
            write_extra(output_dir)
            share_like_other_files(output_dir)
            mark_complete(output_dir)


def train(model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments) -> TrainResult:
    set_seed(training_args.seed)
    on_cpu = training_args.device.type == "cpu"
    if training_args.fsdp and on_cpu:  # accelerate would quietly run DDP instead
        raise ConfigError("--fsdp needs GPUs (accelerate enables FSDP only on accelerators); on CPU drop --fsdp (DDP runs)")
    check_batchnorm_mode(model_args)
    if data_args.feature_cache:
        check_allowed(tower_trains(model_args), model_args.vision_tower_batchnorm, training_args.n_gpu > 1)
    thread_callbacks = cpu_thread_callbacks(training_args.cpu_threads) if on_cpu else []
    resume = prepare_output_dir(training_args)
    path = model_args.model_name_or_path
    # Cheap checks before the model loads (files, media folder, records); their samples are the run's.
    rules = (data_args.image_folder, "--image_folder", data_args.skip_invalid_records, data_args.allow_outside_media_folder)
    train_samples, invalid = preflight(data_args.data_path, *rules)
    val_samples, val_invalid = preflight(data_args.validation_data_path, *rules) if data_args.validation_data_path else ([], [])
    tokenizer = load_tokenizer(path)
    video = video_config_of(path, **data_args.video_overrides())

    for error in invalid + val_invalid:
        logger.warning("dropped invalid record: %s", error)
    dpo, grpo = training_args.method == "dpo", training_args.method == "grpo"
    if dpo:
        require_pairs(train_samples)
        require_pairs(val_samples, "--validation_data_path")
    # Every media header probed: unusable training samples count against --max_skip_fraction now and are
    # never drawn; unusable validation samples are left out of the validation loss (never replaced).
    counter = SkipCounter(len(train_samples), max_fraction=data_args.max_skip_fraction, eval_size=len(val_samples))
    screen = screen_media if data_args.probe_media else (lambda samples, what: (samples, []))
    train_samples, unusable = screen(train_samples, "training")
    check_unusable_share(unusable, counter.dataset_size, counter.allowed, data_args.max_skip_fraction)
    if not train_samples:
        raise ConfigError(f"{', '.join(map(str, data_args.data_path))}: no training sample has usable media (see the log)")
    val_samples, val_unusable = screen(val_samples, "validation")
    if val_unusable and not val_samples:
        raise ConfigError(f"{', '.join(map(str, data_args.validation_data_path))}: no validation sample has usable media "
                          "(see the log): fix them (`fastvlm-video check`) or drop --validation_data_path")  # fmt: skip
    # Before the model loads: frame size for the visual budget, --model_max_length auto, the fit check.
    planned = length_variants(train_samples + val_samples) if dpo else train_samples + val_samples
    plan = plan_lengths(planned, ChatEncoder(tokenizer, video.tokens_per_frame), video,
                        training_args.model_max_length, max_position_embeddings(path), data_args.max_skip_fraction)
    video, max_length = plan.video, plan.max_length
    if grpo:
        max_length = grpo_max_length(training_args, max_length, max_position_embeddings(path))
    training_args.model_max_length = max_length
    logger.info("video settings: %s (%d tokens per frame)", video, video.tokens_per_frame)
    encoder = ChatEncoder(tokenizer, video.tokens_per_frame)
    cache = open_frame_cache(data_args.frame_cache, video, train_samples + val_samples)  # refused before the model loads
    model = load_for_training(model_args, training_args)
    check_fork_flags(model_args, model)
    tower = model.model.vision_tower
    features = open_feature_cache(data_args.feature_cache, model, model_dtype(training_args), training_args.device.type,
                                  train_samples + val_samples, video)  # fmt: skip
    media = {"frame_cache": cache, "feature_cache": features}
    if grpo:
        train_set = GRPO_PARTS.dataset(train_samples, encoder, video, max_length, **media)
        val_set = ConversationDataset(val_samples, encoder, video, max_length, substitute=False, **media) if val_samples else None  # SFT loss
    else:
        dataset_class = PreferenceDataset if dpo else ConversationDataset
        train_set = dataset_class(train_samples, encoder, video, max_length, **media)
        val_set = dataset_class(val_samples, encoder, video, max_length, substitute=False, **media) if val_samples else None
    if val_set is None and training_args.eval_strategy != "no":
        raise ConfigError(f"--eval_strategy {training_args.eval_strategy.value} needs --validation_data_path")
    logger.info("%d training samples, %d validation samples%s", len(train_set), len(val_samples),
                f" ({len(unusable)} training and {len(val_unusable)} validation samples left out: unusable media)"
                if unusable or val_unusable else "")  # fmt: skip

    reference = reference_kind(training_args) if dpo else None
    ref_model = frozen_copy(model) if reference == "copy" else None  # the starting weights, before anything trains
    grpo_kwargs = grpo_parts(training_args, model, tokenizer, encoder, tower_trains(model_args)) if grpo else {}  # before training changes it
    model = choose_trainable(model, model_args, training_args)
    model.config.use_cache = False
    if features is not None:
        features.attach(tower)  # stored outputs pass through it; the saved weights are the tower's own

    cap_logging_steps(training_args, planned_steps(len(train_set), training_args))
    processor = make_processor(tokenizer, video.image_size, video.aspect)
    if resume and (Path(resume) / SKIP_REPORT).is_file():
        counter.load(Path(resume) / SKIP_REPORT)  # the counts carry on where the checkpoint left them
    counter.add(unusable)
    counter.exclude(val_unusable, log=False)  # named by the probe
    collator_class = GRPO_PARTS.collator if grpo else (PreferenceCollator if dpo else Collator)
    method_kwargs = dict(beta=dpo_beta(training_args), loss_type=training_args.loss_type, simpo_gamma=training_args.simpo_gamma,
                         reference=reference, ref_model=ref_model) if dpo else grpo_kwargs  # fmt: skip
    trainer = (GRPO_PARTS.trainer if grpo else DPOTrainer if dpo else VideoTrainer)(
        model=model,
        args=training_args,
        train_dataset=train_set,
        eval_dataset=val_set,
        data_collator=collator_class(pad_token_id=tokenizer.pad_token_id, packing=training_args.packing),
        processing_class=processor,
        callbacks=thread_callbacks + ([FeatureCacheCallback(features, tower)] if features is not None else []),
        skip_counter=counter,
        video=video,
        probe_excluded=len(val_unusable),
        **method_kwargs,
    )
    if reference == "precompute":
        trainer.precompute_reference([d for d in (train_set, val_set) if d is not None], Path(training_args.output_dir))
    try:
        outcome = trainer.train(resume_from_checkpoint=resume)
    except TooManySkippedSamples as exc:
        raise stop_on_skips(trainer, counter, exc) from None
    except KeyboardInterrupt:
        raise interrupted(trainer) from None
    eval_metrics = trainer.evaluate() if val_set is not None else {}
    eval_loss = eval_metrics.get("eval_loss")

    output_dir = Path(training_args.output_dir)
    model.config.use_cache = True
    batch = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps * max(1, training_args.world_size)
    progress = run_progress(trainer.state, counter.used * max(1, training_args.world_size), batch)  # each rank counts its own

    def write_extra(out: Path) -> None:
        write_summary(out, model_args, training_args, train_samples, val_samples, video, outcome.training_loss, eval_loss,
                      eval_metrics, skipped=len(counter.skipped), eval_excluded=len(counter.excluded), progress=progress)
        if grpo:
            write_grpo_summary(out, training_args, trainer.state.log_history)

    save_final(trainer, video, counter, output_dir, write_extra)
    logger.info("skipped samples during training: %s%s", counter.summary(),
                f"; {len(counter.excluded)} validation sample(s) excluded from the validation loss" if counter.excluded else "")
    return TrainResult(output_dir, outcome.training_loss, eval_loss, len(counter.skipped), len(invalid) + len(val_invalid),
                       len(counter.excluded))
