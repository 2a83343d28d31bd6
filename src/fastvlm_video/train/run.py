"""``fastvlm-video train``: build everything from the arguments and hand it to the HF Trainer.

Read top to bottom: output folder (or the checkpoint to resume) -> checkpoint -> video settings -> data
-> what trains (full, frozen parts, LoRA) -> Trainer -> save. A LoRA run saves its adapter (``adapter_config.json``), which every command loads;
``fastvlm-video export OUT DST --merge_lora`` turns it into a standalone checkpoint.
"""

from __future__ import annotations

import logging
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
from ..data.preflight import check_unusable_share, preflight, screen_media
from ..errors import ConfigError, TooManySkippedSamples
from ..model.load import load_model, load_tokenizer, video_config_of
from ..model.lora import LoraSettings, apply_lora, quantization_config
from ..model.processor import make_processor
from ..save_marker import mark_complete, mark_incomplete
from .args import DataArguments, ModelArguments, TrainingArguments
from .checkpoints import check_output_dir, disk_full_is_one_line, resolve_resume
from .freeze import BATCHNORM_MODES, set_trainable
from .summary import write_summary
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
    """The checkpoint (any format; an adapter is merged into its base), its LLM quantized for QLoRA."""
    dtype = model_dtype(training_args)
    extra = {}
    if training_args.bits < 16:
        if not training_args.lora_enable:
            raise ConfigError(f"--bits {training_args.bits} quantizes the LLM for QLoRA: add --lora_enable")
        extra["quantization_config"] = quantization_config(training_args.bits, dtype, training_args.double_quant, training_args.quant_type)
    return load_model(model_args.model_name_or_path, dtype=dtype, merge_lora=True, **extra)


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


def stop_on_skips(trainer: VideoTrainer, counter: SkipCounter, exc: TooManySkippedSamples) -> TooManySkippedSamples:
    """Save the skip report and (one process) a resumable checkpoint, then the one-line error to raise."""
    output_dir = Path(trainer.args.output_dir)
    saved = ""
    if trainer.args.world_size == 1 and trainer.state.global_step > 0:
        trainer._save_checkpoint(trainer.model, trial=None)
        saved = f" State saved in {output_dir / f'checkpoint-{trainer.state.global_step}'} (resume with --resume_from_checkpoint latest)."
    if trainer.is_world_process_zero():
        counter.write(output_dir / SKIP_REPORT)
    return TooManySkippedSamples(f"{worker_message(exc)}{saved} Skipped samples: {output_dir / SKIP_REPORT}")


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
    plan = plan_lengths(train_samples + val_samples, ChatEncoder(tokenizer, video.tokens_per_frame), video,
                        training_args.model_max_length, max_position_embeddings(path), data_args.max_skip_fraction)
    video, max_length = plan.video, plan.max_length
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
    train_set = ConversationDataset(train_samples, encoder, video, max_length, **media)
    val_set = ConversationDataset(val_samples, encoder, video, max_length, substitute=False, **media) if val_samples else None
    if val_set is None and training_args.eval_strategy != "no":
        raise ConfigError(f"--eval_strategy {training_args.eval_strategy.value} needs --validation_data_path")
    logger.info("%d training samples, %d validation samples%s", len(train_set), len(val_samples),
                f" ({len(unusable)} training and {len(val_unusable)} validation samples left out: unusable media)"
                if unusable or val_unusable else "")  # fmt: skip

    model = choose_trainable(model, model_args, training_args)
    model.config.use_cache = False
    if features is not None:
        features.attach(tower)  # stored outputs pass through it; the saved weights are the tower's own

    processor = make_processor(tokenizer, video.image_size, video.aspect)
    if resume and (Path(resume) / SKIP_REPORT).is_file():
        counter.load(Path(resume) / SKIP_REPORT)  # the counts carry on where the checkpoint left them
    counter.add(unusable)
    counter.exclude(val_unusable, log=False)  # named by the probe
    trainer = VideoTrainer(
        model=model,
        args=training_args,
        train_dataset=train_set,
        eval_dataset=val_set,
        data_collator=Collator(pad_token_id=tokenizer.pad_token_id, packing=training_args.packing),
        processing_class=processor,
        callbacks=thread_callbacks + ([FeatureCacheCallback(features, tower)] if features is not None else []),
        skip_counter=counter,
        video=video,
        probe_excluded=len(val_unusable),
    )
    try:
        outcome = trainer.train(resume_from_checkpoint=resume)
    except TooManySkippedSamples as exc:
        raise stop_on_skips(trainer, counter, exc) from None
    eval_loss = trainer.evaluate()["eval_loss"] if val_set is not None else None

    output_dir = Path(training_args.output_dir)
    model.config.use_cache = True
    save_final(trainer, video, counter, output_dir, lambda out: write_summary(
        out, model_args, training_args, train_samples, val_samples, video, outcome.training_loss, eval_loss,
        skipped=len(counter.skipped), eval_excluded=len(counter.excluded)))
    logger.info("skipped samples during training: %s%s", counter.summary(),
                f"; {len(counter.excluded)} validation sample(s) excluded from the validation loss" if counter.excluded else "")
    return TrainResult(output_dir, outcome.training_loss, eval_loss, len(counter.skipped), len(invalid) + len(val_invalid),
                       len(counter.excluded))
