"""Can TRL's ``GRPOTrainer`` train FastVLM on our frames-as-images path? A short probe (issue 21's library choice).

Runs TRL's trainer on the tiny FastVLM (the demo's 64 px model, random weights) with our processor, on
prompts whose frames come from our decoder (``load_sample_media``) handed to TRL as a list of images per
sample: 1 frame, then 4 frames per sample. Reports whether each runs, seconds per step, and whether the
image tokens in each prompt match its frames. TRL is not a dependency: install it beside the venv, e.g.

    pip install --target /work/venvs/trl-try --no-deps trl==1.16.0 datasets==5.2.0 dill multiprocess xxhash pyarrow pandas
    PYTHONPATH=src:/work/venvs/trl-try .venv/bin/python benchmarks/trl_grpo_probe.py --out /tmp/trl_probe
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import datasets
    import trl
    from trl import GRPOConfig, GRPOTrainer

    from fastvlm_video.data.dataset import load_sample_media
    from fastvlm_video.data.records import MediaRef, Message
    from fastvlm_video.demo.synthetic import DIRECTIONS, write_video
    from fastvlm_video.demo.task import QUESTION, demo_tokenizer, motion_clip
    from fastvlm_video.model.processor import make_processor
    from fastvlm_video.model.tiny import build_tiny_model
    from fastvlm_video.video_config import VideoConfig

    torch.manual_seed(0)
    tokenizer = demo_tokenizer()
    processor = make_processor(tokenizer, 64)
    rng = np.random.default_rng(0)
    clips = []
    for i in range(8):
        direction = DIRECTIONS[i % 4]
        clips.append((write_video(out / f"clip{i}_{direction}.mp4", motion_clip(direction, rng), fps=8, gop=8), direction))

    def reward_exact(completions, answer, **kwargs):
        return [float(c[0]["content"].strip() == a) for c, a in zip(completions, answer)]

    import datasets

    def dataset_of(rows):
        """An iterable dataset: ``Dataset.from_list`` fails here hashing the PIL rows (dill/pyarrow pickling error)."""
        datasets.disable_caching()
        return datasets.IterableDataset.from_generator(lambda: iter(rows))

    results = {"trl": trl.__version__, "runs": []}
    for frames in (1, 4):
        video = VideoConfig(num_frames=frames, image_size=64)
        rows = []
        for path, direction in clips:
            loaded, _ = load_sample_media([Message("user", QUESTION)], [MediaRef(str(path), "video")], video)
            images = [Image.fromarray(f.permute(1, 2, 0).numpy()) for f in loaded[0].frames]
            content = [{"type": "image"} for _ in images] + [{"type": "text", "text": QUESTION}]
            rows.append({"prompt": [{"role": "user", "content": content}], "images": images, "answer": direction})
        config = GRPOConfig(
            output_dir=str(out / f"run{frames}"), per_device_train_batch_size=4, num_generations=4, max_completion_length=2,
            max_steps=args.steps, learning_rate=1e-3, logging_steps=1, report_to="none", use_cpu=True, save_strategy="no",
            bf16=False, seed=0,
        )  # fmt: skip
        run = {"frames_per_sample": frames, "trainer": f"trl {trl.__version__} GRPOTrainer"}
        model = build_tiny_model(tokenizer, seed=0, text_hidden_size=128)
        try:
            trainer = GRPOTrainer(model=model, reward_funcs=reward_exact, args=config, train_dataset=dataset_of(rows),
                                  processing_class=processor)  # fmt: skip
            seen = count_tower_frames(model)
            started = time.perf_counter()
            trainer.train()
            run["ok"] = True
            run["seconds_per_step"] = round((time.perf_counter() - started) / args.steps, 2)
            run["tower_frames_per_step"] = seen["frames"] / args.steps
            run["distinct_frames_per_step"] = 4 // 4 * frames  # TRL's batch of 4 counts answers: 1 prompt x G=4
            run["logged"] = sorted(k for k in trainer.state.log_history[0])
        except Exception as exc:  # the probe's finding
            run["ok"] = False
            run["error"] = f"{type(exc).__name__}: {exc}"[:600]
            run["where"] = traceback.format_exc().strip().splitlines()[-3:]
        results["runs"].append(run)
        print(json.dumps(run, indent=1), flush=True)
        results["runs"].append(ours(out, clips, tokenizer, processor, frames, args.steps))
        print(json.dumps(results["runs"][-1], indent=1), flush=True)
    (out / "trl_grpo_probe.json").write_text(json.dumps(results, indent=1) + "\n")


def count_tower_frames(model) -> dict:
    """Count the frames that go through ``model``'s vision tower (a forward hook)."""
    seen = {"frames": 0}
    model.model.vision_tower.register_forward_hook(lambda module, inputs, output: seen.__setitem__("frames", seen["frames"] + inputs[0].shape[0]))
    return seen


def ours(out: Path, clips, tokenizer, processor, frames: int, steps: int) -> dict:
    """The same prompts, batch, G and answer length through ``train --method grpo``."""
    from fastvlm_video.demo.task import QUESTION
    from fastvlm_video.model.tiny import build_tiny_model
    from fastvlm_video.train import run as train_run
    from fastvlm_video.train.args import parse_train_args

    model_dir = out / "tiny"
    build_tiny_model(tokenizer, seed=0, text_hidden_size=128).save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    records = [{"id": str(i), "video": str(path), "conversations": [{"from": "human", "value": f"<video>\n{QUESTION}"},
                {"from": "gpt", "value": direction}]} for i, (path, direction) in enumerate(clips)]  # fmt: skip
    (out / "ours.json").write_text(json.dumps(records))
    argv = ["--model_name_or_path", str(model_dir), "--data_path", str(out / "ours.json"), "--image_folder", "/",
            "--allow_outside_media_folder", "true", "--num_video_frames", str(frames), "--output_dir", str(out / f"ours{frames}"),
            "--overwrite_output_dir", "true", "--method", "grpo", "--num_generations", "4", "--max_completion_length", "2",
            "--per_device_train_batch_size", "4", "--max_steps", str(steps), "--learning_rate", "1e-3", "--beta", "0",
            "--logging_steps", "1", "--save_strategy", "no", "--report_to", "none", "--use_cpu", "true",
            "--dataloader_num_workers", "0", "--seed", "0"]  # fmt: skip
    original = train_run.load_for_training
    seen = {}

    def load_counting(*a, **k):
        model = original(*a, **k)
        seen["counter"] = count_tower_frames(model)
        return model

    train_run.load_for_training = load_counting
    started = time.perf_counter()
    try:
        train_run.train(*parse_train_args(argv))
    finally:
        train_run.load_for_training = original
    return {"frames_per_sample": frames, "trainer": "fastvlm-video train --method grpo", "ok": True,
            "seconds_per_step_with_load_and_save": round((time.perf_counter() - started) / steps, 2),
            "tower_frames_per_step": seen["counter"]["frames"] / steps, "distinct_frames_per_step": 4 * frames}  # 4 prompts x G=4  # fmt: skip


if __name__ == "__main__":
    main()
