"""``fastvlm-video demo --post METHOD``: post-training (DPO, GRPO) on the demo's motion task, before vs after.

One flow for every method: the demo's data and its image stage (``out/image_model``), then a
deliberately weak starting model, ``out/sft`` (a few SFT steps on the motion clips: it answers, but
often wrongly), then each method from that start into ``out/<method>`` (standard checkpoints that
``predict`` / ``evaluate`` load), each evaluated on the held-out validation and test clips;
``out/metrics.json`` holds the accuracies before and after.

A method is a stage function ``stage(ctx: PostContext) -> Path`` (the checkpoint it wrote), named in
``POST_STAGES`` by ``module:function`` and imported only when asked for.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..infer.evaluate import evaluate_checkpoint
from ..train.args import parse_train_args
from ..train.run import train
from .run import CHANCE, VIDEO_BATCH, _train_argv, prepare_demo_data, train_image_stage

logger = logging.getLogger(__name__)

POST_STAGES = {
    "dpo": "fastvlm_video.demo.dpo_stage:run_dpo_stage",
    "grpo": "fastvlm_video.demo.grpo_stage:run_grpo_stage",
}
# The weak start: SFT steps at batch 8 on the motion clips, the tower frozen. The full demo's 1,250 steps
# reach 1.0; this many leave the model answering, but far from right (measured: benchmarks/post_training_demo.py).
SFT_STEPS = 150
SFT_LR = 2e-3


@dataclass
class PostContext:
    """What a post-training stage needs: folders, the weak start, the run's settings, and its own options."""

    out: Path
    data: Path  # the demo's data folder (media paths in its JSON files are relative to it)
    start: Path  # the weak SFT checkpoint every method starts from
    num_video_frames: int = 8
    seed: int = 0
    cpu_threads: int = 0
    options: dict = field(default_factory=dict)  # per-method settings (e.g. beta, steps), from the caller

    def train_argv(self, model: Path, split: str, output_dir: Path, batch_size: int = VIDEO_BATCH) -> list[str]:
        """The demo's ``train`` flags for one video stage (split ``split``.json, validation ``val.json``)."""
        argv = _train_argv(model, self.data, split, output_dir, 1, batch_size, self.num_video_frames, self.seed)
        argv[argv.index("--validation_data_path") + 1] = str(self.data / "val.json")
        return argv + ["--cpu_threads", str(self.cpu_threads)]


def available_methods() -> list[str]:
    """The methods of ``POST_STAGES`` whose stage module is present (``--post all`` runs these)."""
    return [m for m, target in POST_STAGES.items() if importlib.util.find_spec(target.split(":")[0]) is not None]


def stage_function(method: str):
    """The stage function of ``method``; one clear line when it is unknown or not built in this version."""
    if method not in POST_STAGES:
        raise ConfigError(f"--post {method!r}: use one of {', '.join([*POST_STAGES, 'all'])}")
    module, name = POST_STAGES[method].split(":")
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise ConfigError(f"--post {method}: not available in this version ({module} is missing)") from None


def sft_steps(ctx: PostContext, model: Path, output_dir: Path, steps: int, lr: float, batch_size: int = VIDEO_BATCH) -> Path:
    """``output_dir``: ``model`` after ``steps`` SFT steps on the motion clips (the tower frozen, cosine schedule)."""
    argv = ctx.train_argv(model, "train", output_dir, batch_size=batch_size)
    argv += ["--max_steps", str(steps), "--learning_rate", str(lr), "--eval_strategy", "no"]
    train(*parse_train_args(argv))
    return output_dir


def train_weak_start(ctx: PostContext, steps: int = SFT_STEPS, lr: float = SFT_LR) -> Path:
    """``out/sft``: the image-stage model after ``steps`` SFT steps on the motion clips."""
    return sft_steps(ctx, ctx.out / "image_model", ctx.start, steps, lr)


def accuracy(model: Path, data: Path, split: str, out: Path) -> float:
    """Greedy accuracy of ``model`` on ``split``.json (written under ``out``)."""
    result = evaluate_checkpoint(
        model, data / f"{split}.json", data, out, device="cpu", semantic=False, batch_size=16, max_new_tokens=4, overwrite=True
    )
    return result["accuracy"]


def run_post_demo(
    out: str | Path,
    methods: list[str],
    num_video_frames: int = 8,
    seed: int = 0,
    cpu_threads: int = 0,
    splits: dict[str, int] | None = None,
    sft_steps: int = SFT_STEPS,
    image_epochs: int | None = None,
    options: dict[str, dict] | None = None,
) -> dict:
    """Run the post-training demo for ``methods`` under ``out``; returns (and writes) ``out/metrics.json``.

    ``options[method]`` goes to that method's stage (``PostContext.options``). The image stage is reused
    when ``out/image_model`` already holds a complete checkpoint (reruns with other settings start there).
    """
    out = Path(out)
    stages = {m: stage_function(m) for m in methods}  # an unknown method fails before any work
    data = prepare_demo_data(out, splits, seed)
    started = time.perf_counter()
    if not (out / "image_model" / "training_summary.json").is_file():
        train_image_stage(out, data, **({"epochs": image_epochs} if image_epochs else {}), seed=seed, cpu_threads=cpu_threads)
    ctx = PostContext(out, data, out / "sft", num_video_frames, seed, cpu_threads)
    train_weak_start(ctx, sft_steps)
    seconds = {"image_and_sft": round(time.perf_counter() - started, 1)}
    results = {"sft": {split: accuracy(ctx.start, data, split, out / "eval" / f"sft_{split}") for split in ("val", "test")}}
    for method, stage in stages.items():
        began = time.perf_counter()
        ctx.options = (options or {}).get(method, {})
        checkpoint = stage(ctx)
        seconds[method] = round(time.perf_counter() - began, 1)
        results[method] = {split: accuracy(checkpoint, data, split, out / "eval" / f"{method}_{split}") for split in ("val", "test")}
    metrics = {
        "test_accuracy": {name: r["test"] for name, r in results.items()},
        "val_accuracy": {name: r["val"] for name, r in results.items()},
        "chance": CHANCE,
        "num_video_frames": num_video_frames,
        "seed": seed,
        "sft_steps": sft_steps,
        "options": options or {},
        "seconds": seconds,
        "cpu_threads": cpu_threads or "free cores",
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
