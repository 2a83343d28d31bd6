"""``train --method dpo`` end to end on image, video, mixed and text pairs: skip rules, reports, summary, card,
checkpoints; refusals before the model loads; and a run killed with SIGKILL resumes to the same weights."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fastvlm_video.errors import ConfigError
from fastvlm_video.model.load import load_model
from fastvlm_video.save_marker import SAVE_IN_PROGRESS
from fastvlm_video.ship.card import model_card
from fastvlm_video.train.args import parse_train_args
from fastvlm_video.train.run import train

PAIRS = [
    {"id": "v1", "video": "left.mp4", "conversations": [{"from": "human", "value": "<video>\nWhere?"}], "chosen": "left", "rejected": "up"},
    {"id": "v2", "video": "up.MOV", "prompt": "Where?", "chosen": "up", "rejected": "left"},
    {"id": "i1", "images": ["still.png"], "prompt": [{"role": "user", "content": "<image>\nWhat?"}],
     "chosen": [{"role": "assistant", "content": "a still image"}], "rejected": [{"role": "assistant", "content": "left"}]},
    {"id": "m1", "images": ["still.png"], "videos": ["left.mp4"], "messages": [{"role": "user", "content": "<video>\n<image>\nSame?"}],
     "chosen": "no", "rejected": "up"},
    {"id": "t1", "prompt": "Say hi", "chosen": "hi", "rejected": "up"},
    {"id": "b1", "video": "corrupt.mp4", "prompt": "Where?", "chosen": "up", "rejected": "left"},
]  # fmt: skip


def argv(model_dir, media_folder, data, out, *extra):
    return [
        "--method", "dpo", "--model_name_or_path", str(model_dir), "--data_path", str(data), "--image_folder", str(media_folder),
        "--num_video_frames", "2", "--image_size", "64", "--output_dir", str(out), "--per_device_train_batch_size", "2",
        "--learning_rate", "1e-3", "--max_steps", "6", "--save_steps", "2", "--save_strategy", "steps", "--logging_steps", "1",
        "--report_to", "none", "--use_cpu", "true", "--seed", "0", "--disable_tqdm", "true", "--max_skip_fraction", "0.5",
        "--cpu_threads", "1", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def dpo_run(tmp_path_factory, tiny_model_dir, media_folder):
    root = tmp_path_factory.mktemp("dpo")
    data = root / "pairs.json"
    data.write_text(json.dumps(PAIRS))
    extra = ["--validation_data_path", str(data), "--eval_strategy", "steps", "--eval_steps", "3"]
    result = train(*parse_train_args(argv(tiny_model_dir, media_folder, data, root / "out", *extra)))
    return result, root / "out"


def test_a_broken_medium_skips_its_pair_and_is_reported(dpo_run):
    result, out = dpo_run
    assert result.skipped == 1
    report = json.loads((out / "skipped_samples.json").read_text())
    assert [s["where"].split("(id ")[1] for s in report["samples"]] == ["'b1')"] and report["counts"] == {"media": 1}


def test_rewards_are_logged_each_step_and_in_eval(dpo_run):
    _, out = dpo_run
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    steps = [h for h in history if "loss" in h]
    evals = [h for h in history if "eval_loss" in h]
    names = ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins")
    assert len(steps) == 6 and all(all(n in h for n in names) for h in steps)
    assert evals and all(all(f"eval_{n}" in h for n in names) for h in evals)


def test_checkpoints_summary_and_card_say_dpo(dpo_run):
    _, out = dpo_run
    for folder in [out, *sorted(out.glob("checkpoint-*"))]:
        assert not (folder / SAVE_IN_PROGRESS).exists() and (folder / "video_config.json").is_file()
    objective = json.loads((out / "training_summary.json").read_text())["objective"]
    assert objective["method"] == "dpo" and objective["loss_type"] == "sigmoid" and objective["beta"] == 0.1
    assert objective["reference"] == "copy" and "rewards/accuracies" in objective["eval"]
    assert "- Objective: DPO, loss sigmoid, beta 0.1, reference a frozen copy of the start" in model_card(out, "me/tiny-dpo")
    assert load_model(out).config.model_type == "fast_vlm"  # a standard checkpoint: predict, evaluate, export load it


def test_sft_records_are_refused_before_the_model_loads(tiny_model_dir, media_folder, tmp_path):
    data = tmp_path / "sft.json"
    data.write_text(json.dumps([{"video": "left.mp4", "conversations": [{"from": "human", "value": "<video>\nQ"}, {"from": "gpt", "value": "left"}]}]))
    with pytest.raises(ConfigError, match="no 'chosen'/'rejected' answers .* record 0"):
        train(*parse_train_args(argv("no-such-model", media_folder, data, tmp_path / "out")))


KILLABLE = """
import os, signal, sys
from fastvlm_video.train import dpo
from fastvlm_video.train.args import parse_train_args
from fastvlm_video.train.run import train
kill_at = int(os.environ.get("KILL_AT_STEP", "0"))
step = dpo.DPOTrainer.training_step
def training_step(self, *args, **kwargs):
    if kill_at and self.state.global_step == kill_at:  # step kill_at + 1 is under way: SIGKILL, nothing cleaned up
        os.kill(os.getpid(), signal.SIGKILL)
    return step(self, *args, **kwargs)
dpo.DPOTrainer.training_step = training_step
train(*parse_train_args(sys.argv[1:]))
"""


def run_train(args, kill_at=0):
    env = {**os.environ, "KILL_AT_STEP": str(kill_at), "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-c", KILLABLE, *args], env=env, capture_output=True, text=True, timeout=600)


def test_a_run_killed_mid_way_resumes_to_the_same_weights(tiny_model_dir, media_folder, tmp_path):
    data = tmp_path / "pairs.json"
    data.write_text(json.dumps([{**p, "id": f"{p['id']}-{copy}"} for copy in range(2) for p in PAIRS[:5]]))
    reference = ("--reference", "precompute")  # the resumed run reads the reference log-probs stored by the first
    whole = run_train(argv(tiny_model_dir, media_folder, data, tmp_path / "whole", *reference))
    assert whole.returncode == 0, whole.stderr[-2000:]
    killed = run_train(argv(tiny_model_dir, media_folder, data, tmp_path / "cut", *reference), kill_at=5)
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "cut" / "model.safetensors").exists() and (tmp_path / "cut" / "checkpoint-4").is_dir()
    stored = (tmp_path / "cut" / "reference_logps.json").stat().st_mtime_ns
    resumed = run_train(argv(tiny_model_dir, media_folder, data, tmp_path / "cut", *reference, "--resume_from_checkpoint", "latest"))
    assert (tmp_path / "cut" / "reference_logps.json").stat().st_mtime_ns == stored  # read back, not recomputed
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = (load_file(Path(tmp_path / d / "model.safetensors")) for d in ("whole", "cut"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # one thread pinned: bitwise
    logs = [json.loads((tmp_path / d / "trainer_state.json").read_text())["log_history"] for d in ("whole", "cut")]
    assert [h["loss"] for h in logs[0] if "loss" in h][-2:] == [h["loss"] for h in logs[1] if "loss" in h][-2:]
