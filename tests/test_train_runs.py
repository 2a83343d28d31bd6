"""Short real training runs (media: ``broken_media_folder``, whose ``cut*.mp4`` fail only when decoded): skip and truncation reports, resume past a half-written checkpoint with the
counts carried, a full disk while saving, a run stopped by broken samples, and start-up data errors."""

import errno
import json
import logging

import pytest
from transformers import Trainer

from fastvlm_video.constants import VIDEO_CONFIG_NAME
from fastvlm_video.errors import ConfigError, DiskFullError, TooManySkippedSamples
from fastvlm_video.save_marker import SAVE_IN_PROGRESS
from fastvlm_video.train.args import parse_train_args
from fastvlm_video.train.run import train

LONG = " ".join(["up"] * 60)


def records(media, answers=None):
    answers = answers or ["left"] * len(media)
    return [
        {"id": f"r{i}", "video": m, "conversations": [{"from": "human", "value": "<video>\nWhere?"}, {"from": "gpt", "value": a}]}
        for i, (m, a) in enumerate(zip(media, answers))
    ]


def run(model_dir, broken_media_folder, data, out, *extra):
    argv = [
        "--model_name_or_path", str(model_dir), "--data_path", str(data), "--image_folder", str(broken_media_folder),
        "--num_video_frames", "2", "--image_size", "64", "--model_max_length", "40", "--output_dir", str(out),
        "--per_device_train_batch_size", "2", "--learning_rate", "1e-3", "--max_steps", "6", "--save_steps", "2",
        "--save_strategy", "steps", "--logging_steps", "1", "--eval_strategy", "no", "--report_to", "none",
        "--use_cpu", "--seed", "0", "--disable_tqdm", "true", *extra,
    ]  # fmt: skip
    return train(*parse_train_args(argv))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, tiny_model_dir, broken_media_folder):
    """12 clips: one broken (found when decoded: it passes the start-up probe), one whose answer is cut
    to model_max_length; one epoch of 6 steps, a checkpoint every 2."""
    root = tmp_path_factory.mktemp("runs")
    media = ["left.mp4", "up.MOV"] * 5 + ["cut0.mp4", "left.mp4"]
    answers = ["left", "up"] * 5 + ["left", LONG]
    data = root / "train.json"
    data.write_text(json.dumps(records(media, answers)))
    result = run(tiny_model_dir, broken_media_folder, data, root / "out")
    return result, root, data


def test_skips_and_truncations_are_reported(first_run):
    result, root, _ = first_run
    report = json.loads((root / "out" / "skipped_samples.json").read_text())
    assert report["used"] == 12 and report["dataset_size"] == 12
    assert report["counts"] == {"media": 1, "truncated": 1}  # one broken clip of 12 does not stop the run
    assert report["samples"][0]["where"].endswith("record 10 (id 'r10')") and "cut0.mp4" in report["samples"][0]["reason"]
    assert report["truncated"][0]["where"].endswith("record 11 (id 'r11')")
    assert not (root / "out" / SAVE_IN_PROGRESS).exists()
    checkpoint = root / "out" / "checkpoint-4"
    assert (checkpoint / VIDEO_CONFIG_NAME).is_file() and (checkpoint / "skipped_samples.json").is_file()
    assert not (checkpoint / SAVE_IN_PROGRESS).exists()


def test_a_second_run_into_the_same_folder_is_refused(first_run, tiny_model_dir, broken_media_folder):
    _, root, data = first_run
    with pytest.raises(ConfigError, match="already holds files"):
        run(tiny_model_dir, broken_media_folder, data, root / "out")


def test_resume_falls_back_past_a_half_written_checkpoint_and_carries_counts(first_run, tiny_model_dir, broken_media_folder, caplog):
    _, root, data = first_run
    (root / "out" / "checkpoint-6" / "trainer_state.json").unlink()  # as a kill during the save leaves it
    carried = json.loads((root / "out" / "checkpoint-4" / "skipped_samples.json").read_text())
    with caplog.at_level(logging.WARNING):
        run(tiny_model_dir, broken_media_folder, data, root / "out", "--resume_from_checkpoint", "latest", "--max_steps", "8")
    assert "not resuming from" in caplog.text and "checkpoint-6" in caplog.text
    report = json.loads((root / "out" / "skipped_samples.json").read_text())
    assert carried["used"] == 8 and report["used"] == 16  # 4 steps before the checkpoint + 4 after, batch 2
    assert len(report["truncated"]) >= len(carried["truncated"])


def test_full_disk_during_a_checkpoint_keeps_the_last_good_one(tiny_model_dir, broken_media_folder, tmp_path, monkeypatch):
    data = tmp_path / "train.json"
    data.write_text(json.dumps(records(["left.mp4", "up.MOV"] * 4)))
    original = Trainer._save_optimizer_and_scheduler

    def fill_disk_at_step_4(self, output_dir):
        if output_dir.endswith("checkpoint-4"):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 401920 vs 401812")
        return original(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", fill_disk_at_step_4)
    with pytest.raises(DiskFullError, match=r"the disk is full: saving .*checkpoint-4 failed.*last complete checkpoint is .*checkpoint-2"):
        run(tiny_model_dir, broken_media_folder, data, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").glob("checkpoint-*")) == ["checkpoint-2"]


def test_interrupted_final_save_is_refused_by_predict(tiny_model_dir, broken_media_folder, tmp_path, monkeypatch):
    from fastvlm_video.model.load import load_model

    data = tmp_path / "train.json"
    data.write_text(json.dumps(records(["left.mp4", "up.MOV"])))
    out = tmp_path / "out"

    def disk_full(self, output_dir=None, _internal_call=False):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Trainer, "save_model", disk_full)
    with pytest.raises(DiskFullError, match="the disk is full"):
        run(tiny_model_dir, broken_media_folder, data, out, "--max_steps", "1", "--save_strategy", "no")
    assert json.loads((out / VIDEO_CONFIG_NAME).read_text())["num_frames"] == 2  # written first
    with pytest.raises(ConfigError, match="its save did not finish"):
        load_model(out)


def test_run_stopped_by_broken_samples_saves_its_state_and_report(tiny_model_dir, broken_media_folder, tmp_path):
    data = tmp_path / "train.json"
    data.write_text(json.dumps(records(["left.mp4", "up.MOV"] * 8 + ["cut0.mp4", "cut1.mp4", "cut2.mp4", "cut0.mp4"])))
    with pytest.raises(TooManySkippedSamples, match="of 20 samples are unusable") as info:
        run(tiny_model_dir, broken_media_folder, data, tmp_path / "out", "--max_steps", "40", "--save_strategy", "no")
    message = str(info.value)
    assert "\n" not in message and "skipped_samples.json" in message
    report = json.loads((tmp_path / "out" / "skipped_samples.json").read_text())
    assert len(report["samples"]) == 2  # floor(5% of 20) = 1 tolerated: the second distinct one stops
    if "State saved in" in message:
        checkpoint = message.split("State saved in ")[1].split(" ")[0]
        assert (tmp_path / "out" / checkpoint.rsplit("/", 1)[1] / "trainer_state.json").is_file()


def test_all_broken_in_a_worker_is_one_line(tiny_model_dir, broken_media_folder, tmp_path):
    data = tmp_path / "train.json"
    data.write_text(json.dumps(records(["cut0.mp4", "cut1.mp4"])))
    with pytest.raises(TooManySkippedSamples) as info:
        run(tiny_model_dir, broken_media_folder, data, tmp_path / "out", "--dataloader_num_workers", "1", "--max_skip_fraction", "1")
    assert str(info.value).startswith("20 samples in a row could not be used") and "Traceback" not in str(info.value)


def test_start_up_data_errors(tiny_model_dir, broken_media_folder, tmp_path):
    from fastvlm_video.model.tiny import build_tiny_model, build_tiny_tokenizer

    data = tmp_path / "bad.json"
    data.write_text(json.dumps([{"id": "x", "conversations": [{"from": "human", "value": "hi"}]}]))
    with pytest.raises(ConfigError, match=r"bad\.json: no usable record"):  # the pre-flight check, before the model loads
        run(tiny_model_dir, broken_media_folder, data, tmp_path / "o1", "--skip_invalid_records", "true")
    no_image = tmp_path / "no_image_model"
    tokenizer = build_tiny_tokenizer(image_token=False)
    build_tiny_model(build_tiny_tokenizer(), seed=0).save_pretrained(no_image)
    tokenizer.save_pretrained(no_image)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(records(["left.mp4"])))
    with pytest.raises(ConfigError, match="the tokenizer .* lacks <image>"):
        run(no_image, broken_media_folder, good, tmp_path / "o2")
