"""``train --method grpo`` end to end on the tiny model: logs, summary, checkpoints, skips, and resume after kill -9."""

import json
import logging

import pytest

from fastvlm_video.errors import ConfigError
from fastvlm_video.save_marker import SAVE_IN_PROGRESS
from fastvlm_video.train.args import parse_train_args
from fastvlm_video.train.run import train


def records(media, answers):
    return [
        {"id": f"r{i}", "video": m, "conversations": [{"from": "human", "value": "<video>\nWhere?"}, {"from": "gpt", "value": a}]}
        for i, (m, a) in enumerate(zip(media, answers))
    ]


def grpo_argv(model_dir, media_folder, data, out, *extra):
    return [
        "--model_name_or_path", str(model_dir), "--data_path", str(data), "--image_folder", str(media_folder),
        "--num_video_frames", "2", "--image_size", "64", "--output_dir", str(out), "--method", "grpo",
        "--num_generations", "3", "--max_completion_length", "4", "--per_device_train_batch_size", "2",
        "--learning_rate", "1e-3", "--max_steps", "4", "--save_steps", "2", "--save_strategy", "steps",
        "--logging_steps", "1", "--eval_strategy", "no", "--report_to", "none", "--use_cpu", "--seed", "0",
        "--disable_tqdm", "true", "--cpu_threads", "1", "--dataloader_num_workers", "0", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("grpo")
    path = root / "train.json"
    media = ["left.mp4", "up.MOV", "still.png", "left.mp4", "up.MOV", "still.png", "corrupt.mp4", "up.MOV"]
    path.write_text(json.dumps(records(media, ["left", "up", "still", "left", "up", "still", "left", "up"])))
    (root / "grpo_test_rewards.py").write_text("def length(record, completion, times):\n    return len(completion) / 10\n")
    return path


@pytest.fixture(scope="module")
def grpo_run(tmp_path_factory, tiny_model_dir, media_folder, data):
    """A random model never answers right: a custom reward (answer length) gives the groups their spread."""
    out = tmp_path_factory.mktemp("grpo_out") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(data.parent))
        rewards = "exact,format=0.5,grpo_test_rewards:length"
        result = train(*parse_train_args(grpo_argv(tiny_model_dir, media_folder, data, out, "--beta", "0.04", "--reward", rewards)))
    return result, out


def test_grpo_run_logs_saves_and_summarises(grpo_run):
    result, out = grpo_run
    state = json.loads((out / "trainer_state.json").read_text())
    logs = [row for row in state["log_history"] if "loss" in row]
    assert len(logs) == 4
    for key in ("reward", "reward_std", "rewards/exact/mean", "rewards/exact/std", "rewards/format/mean", "kl",
                "clip_ratio", "frac_reward_zero_std", "completions/mean_length", "completions/clipped_ratio"):  # fmt: skip
        assert key in logs[0], key
    assert all(row["clip_ratio"] == 0.0 for row in logs)  # one step per generation: on-policy
    assert logs[0]["kl"] == pytest.approx(0.0, abs=1e-6) and logs[-1]["kl"] > 0  # the policy moves off the reference
    summary = json.loads((out / "training_summary.json").read_text())
    objective = summary["objective"]
    assert objective["method"] == "grpo" and objective["num_generations"] == 3 and objective["beta"] == 0.04
    assert objective["rewards"] == "exact,format=0.5,grpo_test_rewards:length" and "reward" in objective["metrics"]
    assert "rewards/grpo_test_rewards:length/mean" in logs[0]
    from fastvlm_video.ship.card import model_card

    card = model_card(out, "me/grpo-tiny")
    assert "Objective: GRPO, 3 sampled answers per prompt, beta 0.04, epsilon 0.2, rewards exact,format=0.5" in card
    report = json.loads((out / "skipped_samples.json").read_text())
    assert report["counts"] == {"media": 1}  # the corrupt clip: skipped, another prompt drawn
    assert not (out / SAVE_IN_PROGRESS).exists() and not (out / "checkpoint-2" / SAVE_IN_PROGRESS).exists()
    assert (out / "checkpoint-4" / "video_config.json").is_file()


def test_grpo_checkpoint_predicts(grpo_run, media_folder):
    from fastvlm_video.infer.predictor import Predictor

    _, out = grpo_run
    predictor = Predictor.from_pretrained(out, device="cpu")
    assert isinstance(predictor.ask(media_folder / "left.mp4", "Where?", max_new_tokens=3), str)


@pytest.mark.parametrize("flags, message", [
    (["--num_generations", "1"], "at least 2"),
    (["--temperature", "0"], "positive temperature"),
    (["--reward", "accuracy"], "not a built-in"),
    (["--reference", "precompute"], "frozen copy"),
])  # fmt: skip
def test_bad_grpo_settings_fail_before_the_model_loads(flags, message, tiny_model_dir, media_folder, data, tmp_path):
    with pytest.raises(ConfigError, match=message):
        train(*parse_train_args(grpo_argv(tiny_model_dir, media_folder, data, tmp_path / "x", *flags)))


def test_grpo_killed_mid_run_resumes_to_the_same_result(tiny_model_dir, media_folder, data, tmp_path):
    """kill -9 after the first checkpoint; the resumed run's later logs and final weights equal an uninterrupted run's
    (generation is seeded by step, so the resumed steps sample the same answers)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from safetensors.torch import load_file

    def argv(out, *extra):
        return grpo_argv(tiny_model_dir, media_folder, data, out, "--max_steps", "8", "--reward", "grpo_test_rewards:length",
                         "--beta", "0.04", *extra)  # fmt: skip

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(data.parent), *sys.path])}
    cli = [sys.executable, "-c", "import sys; from fastvlm_video.cli import main; sys.exit(main(sys.argv[1:]))", "train"]
    full = tmp_path / "full"
    with pytest.MonkeyPatch.context() as patch:  # in this process: only the killed run pays a fresh interpreter's start
        patch.syspath_prepend(str(data.parent))
        train(*parse_train_args(argv(full)))

    cut = tmp_path / "cut"
    proc = subprocess.Popen([*cli, *argv(cut)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    first = cut / "checkpoint-2"
    while not ((first / "trainer_state.json").is_file() and not (first / SAVE_IN_PROGRESS).exists()):
        assert proc.poll() is None, "the run ended before its first checkpoint"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (cut / "training_summary.json").exists()  # killed mid-way
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(data.parent))
        train(*parse_train_args(argv(cut, "--resume_from_checkpoint", "latest")))

    def logs(out):
        rows = json.loads((out / "trainer_state.json").read_text())["log_history"]
        return {row["step"]: (row["loss"], row["reward"], row["kl"]) for row in rows if "loss" in row}

    assert logs(cut) == logs(full) and len(logs(full)) == 8
    a, b = load_file(full / "model.safetensors"), load_file(cut / "model.safetensors")
    assert all((a[k] == b[k]).all() for k in a)


def test_grpo_with_the_feature_cache_samples_and_learns_the_same(tiny_model_dir, media_folder, tmp_path, caplog):
    """Epoch 1 stores the frozen tower's outputs, epoch 2 reads them: generation and loss see the same features."""
    data = tmp_path / "train.json"
    data.write_text(json.dumps(records(["left.mp4", "up.MOV", "still.png", "left.mp4"], ["left", "up", "still", "left"])))
    (tmp_path / "grpo_cache_rewards.py").write_text("def length(record, completion, times):\n    return len(completion) / 10\n")

    def run(out, *extra):
        with pytest.MonkeyPatch.context() as patch:
            patch.syspath_prepend(str(tmp_path))
            train(*parse_train_args(grpo_argv(tiny_model_dir, media_folder, data, out, "--max_steps", "-1", "--num_train_epochs", "2",
                                              "--save_strategy", "no", "--reward", "grpo_cache_rewards:length", "--beta", "0", *extra)))  # fmt: skip
        rows = json.loads((out / "trainer_state.json").read_text())["log_history"]
        return [(row["loss"], row["reward"], row["completions/mean_length"]) for row in rows if "loss" in row]

    plain = run(tmp_path / "plain")
    with caplog.at_level(logging.INFO, logger="fastvlm_video.data.feature_cache"):
        cached = run(tmp_path / "cached", "--feature_cache", str(tmp_path / "features"))
    assert cached == plain and len(plain) == 4
    assert "epoch 2: feature cache: 4 media read from the cache, 0 decoded" in caplog.text
