"""``fastvlm-video demo``: synthetic images and videos -> tiny FastVLM trained on CPU -> test accuracy.

Two stages, as FastVLM itself was built: the random model first learns to see on still images
(where is the red square?), then is fine-tuned on videos (which way does it move?) and evaluated.

Nothing is downloaded: the clips are written with PyAV (H.264), the model and tokenizer are built
at random on the fly, and the run goes through the same ``train`` and ``Predictor`` code as a real
fine-tune.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from ..file_modes import share_like_other_files
from ..infer.evaluate import evaluate_checkpoint
from ..model.processor import make_processor
from ..model.tiny import build_tiny_model
from ..train.args import parse_train_args
from ..train.run import train
from .task import demo_tokenizer, make_motion_dataset, make_position_dataset

logger = logging.getLogger(__name__)

DEMO_IMAGE_SIZE = 64  # one token per frame with FastViTHD's stride 64: fast enough for 2 CPU cores
DEMO_TEXT_HIDDEN = 128
CHANCE = 0.25
IMAGE_EPOCHS, IMAGE_BATCH = 4, 32  # stage 1: 4,000 still images, 500 steps (batch 8 learns one axis first)
# Stage 2: 2,000 clips, 750 steps, the tower frozen (it learned position in stage 1; the LLM learns the
# frames' order). Chosen on the validation clips only (benchmarks/demo_recipe.py, stored output in
# benchmarks/results/demo_recipe.md): 3 epochs scored 1.0 on the 80 validation clips, 5 epochs 0.725.
VIDEO_EPOCHS, VIDEO_BATCH = 3, 8
DEMO_SPLITS = {"images": 4000, "images_val": 40, "train": 2000, "val": 80, "test": 80}


def run_demo(
    out: str | Path,
    num_video_frames: int = 8,
    epochs: int = VIDEO_EPOCHS,
    seed: int = 0,
    splits: dict[str, int] | None = None,
    image_epochs: int = IMAGE_EPOCHS,
    frame_cache: str | None = None,
    feature_cache: bool = True,
    cpu_threads: int = 0,
) -> dict:
    """Run the whole demo under ``out``; returns (and writes) ``out/metrics.json``.

    Stage 1 trains the random model on still images (``out/image_model``: where is the square?),
    stage 2 fine-tunes that on videos (``out/model``: which way does it move?) and is evaluated.
    ``splits`` sets the number of samples per split (default: ``DEMO_SPLITS``); the data is reused
    when ``out/data`` already holds it. ``frame_cache`` (a codec: raw, png, jpeg) first caches the
    videos' frames in ``out/frame_cache`` and trains and evaluates stage 2 from it. ``feature_cache``
    stores the frozen tower's outputs in ``out/feature_cache`` during stage 2's first epoch and reads
    them on the later ones (no decoding, no tower). ``cpu_threads``:
    0 follows the free cores (``train``'s default), N pins N torch threads.
    """
    out = Path(out)
    data = prepare_demo_data(out, splits, seed)
    started = time.perf_counter()
    threads = ["--cpu_threads", str(cpu_threads)]
    train_image_stage(out, data, image_epochs, seed, cpu_threads)
    image_seconds = time.perf_counter() - started
    video_stage = _train_argv(
        out / "image_model", data, "train", out / "model", epochs, VIDEO_BATCH, num_video_frames, seed
    ) + threads  # the tower frozen (the default): it already knows where the square is
    if frame_cache:
        video_stage += ["--frame_cache", str(cache_video_splits(video_stage, out / "frame_cache", frame_cache))]
    if feature_cache:
        video_stage += ["--feature_cache", str(out / "feature_cache")]
    result = train(*parse_train_args(video_stage))
    train_seconds = time.perf_counter() - started

    evaluation = evaluate_checkpoint(
        out / "model", data / "test.json", data, out / "eval",
        device="cpu", semantic=False, batch_size=16, max_new_tokens=4, overwrite=True,
        frame_cache=out / "frame_cache" if frame_cache else None,
    )  # fmt: skip
    metrics = {
        "test_accuracy": evaluation["accuracy"],
        "chance": CHANCE,
        "num_video_frames": num_video_frames,
        "num_test": evaluation["num_scored"],
        "train_seconds": round(train_seconds, 1),
        "image_stage_seconds": round(image_seconds, 1),
        "train_loss": round(result.train_loss, 4),
        "eval_loss": None if result.eval_loss is None else round(result.eval_loss, 4),
        "skipped_samples": result.skipped,
        "frame_cache": frame_cache,
        "feature_cache": feature_cache,
        "cpu_threads": cpu_threads or "free cores",
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def prepare_demo_data(out: Path, splits: dict[str, int] | None = None, seed: int = 0) -> Path:
    """``out/data``: still images and motion clips for every split (reused when already there)."""
    splits = {**DEMO_SPLITS, **(splits or {})}
    data = out / "data"
    if not all((data / f"{split}.json").is_file() for split in splits):
        make_position_dataset(data, {k: splits[k] for k in ("images", "images_val")}, seed=seed)
        make_motion_dataset(data, {k: splits[k] for k in ("train", "val", "test")}, seed=seed)
    return data


def train_image_stage(out: Path, data: Path, epochs: int = IMAGE_EPOCHS, seed: int = 0, cpu_threads: int = 0) -> Path:
    """Stage 1: a random tiny model (``out/init``) learns where the square is on still images -> ``out/image_model``."""
    init = out / "init"
    tokenizer = demo_tokenizer()
    build_tiny_model(tokenizer, seed=seed, text_hidden_size=DEMO_TEXT_HIDDEN).save_pretrained(init)
    make_processor(tokenizer, DEMO_IMAGE_SIZE).save_pretrained(init)
    share_like_other_files(init)
    image_stage = _train_argv(init, data, "images", out / "image_model", epochs, IMAGE_BATCH, 1, seed)
    image_stage += ["--cpu_threads", str(cpu_threads)]
    image_stage += ["--unfreeze_mm_vision_tower", "true", "--vision_tower_batchnorm", "batch"]  # a random tower learns to see
    train(*parse_train_args(image_stage))
    return out / "image_model"


def cache_video_splits(video_stage: list[str], out: Path, codec: str) -> Path:
    """Cache the frames of the video splits at the video stage's settings (as ``train`` resolves them)."""
    from ..data.cache_build import build_cache
    from ..data.records import load_samples
    from ..model.load import video_config_of

    model_args, data_args, _ = parse_train_args(video_stage)
    video = video_config_of(model_args.model_name_or_path, **data_args.video_overrides())
    folder = Path(data_args.image_folder)
    samples = [s for split in ("train", "val", "test") for s in load_samples(folder / f"{split}.json", folder)[0]]
    report = build_cache(samples, video, out, codec=codec, workers=2)
    logger.info("frame cache %s: %d media (%d decoded now), %.1f MB", out, report.media, report.built, report.bytes_written / 1e6)
    return out


def _train_argv(
    model: Path, data: Path, split: str, output_dir: Path, epochs: int, batch_size: int, num_frames: int, seed: int
) -> list[str]:
    """``fastvlm-video train`` flags for one demo stage: split ``S`` trains, ``S_val`` (or ``val``) evaluates."""
    validation = data / ("val.json" if split == "train" else f"{split}_val.json")
    return [
        "--model_name_or_path", str(model),
        "--data_path", str(data / f"{split}.json"),
        "--validation_data_path", str(validation),
        "--image_folder", str(data),
        "--num_video_frames", str(num_frames),
        "--output_dir", str(output_dir),
        "--overwrite_output_dir", "true",  # a demo re-run starts over
        "--num_train_epochs", str(epochs),
        "--per_device_train_batch_size", str(batch_size),
        "--learning_rate", "2e-3",
        "--weight_decay", "0.0",
        "--max_grad_norm", "0",  # clipping at 1.0 measurably delays learning the motion's sign
        "--lr_scheduler_type", "cosine",
        "--warmup_ratio", "0.05",
        "--eval_strategy", "epoch",
        "--save_strategy", "no",
        "--logging_steps", "10",
        "--report_to", "tensorboard",
        "--use_cpu", "true",
        "--dataloader_num_workers", "1",
        "--seed", str(seed),
        "--disable_tqdm", "false",
    ]  # fmt: skip


def format_metrics(metrics: dict) -> str:
    width = max(map(len, metrics))
    return "\n".join(f"{k:<{width}}  {v}" for k, v in metrics.items())
