"""Validation loss over exactly the usable validation samples: unusable ones are excluded (by the start-up
probe, or when decoding fails during an evaluation), never replaced by another sample, and counted in
the result, ``skipped_samples.json`` (eval section), ``training_summary.json`` and the logged metrics."""

import json

import pytest

from fastvlm_video.train.args import parse_train_args
from fastvlm_video.train.run import train


def records(media):
    return [
        {"id": f"v{i}", "video": m, "conversations": [{"from": "human", "value": "<video>\nWhere?"}, {"from": "gpt", "value": "left"}]}
        for i, m in enumerate(media)
    ]


def run(model_dir, media_folder, root, name, val_media, *extra):
    train_file, val_file = root / f"{name}_train.json", root / f"{name}_val.json"
    train_file.write_text(json.dumps(records(["left.mp4", "up.MOV"])))
    val_file.write_text(json.dumps(records(val_media)))
    argv = [
        "--model_name_or_path", str(model_dir), "--data_path", str(train_file), "--validation_data_path", str(val_file),
        "--image_folder", str(media_folder), "--num_video_frames", "2", "--image_size", "64", "--model_max_length", "40",
        "--output_dir", str(root / name), "--per_device_train_batch_size", "2", "--learning_rate", "1e-3",
        "--max_steps", "1", "--save_strategy", "no", "--eval_strategy", "no", "--report_to", "none",
        "--use_cpu", "--seed", "0", "--disable_tqdm", "true", *extra,
    ]  # fmt: skip
    return train(*parse_train_args(argv))


@pytest.fixture(scope="module")
def folder(broken_media_folder):
    return broken_media_folder


@pytest.fixture(scope="module")
def alone(tmp_path_factory, tiny_model_dir, folder):
    root = tmp_path_factory.mktemp("alone")
    return run(tiny_model_dir, folder, root, "alone", ["left.mp4"]), root


def eval_metrics(out):
    return [e for e in json.loads((out / "trainer_state.json").read_text())["log_history"] if "eval_loss" in e][-1]


def test_files_the_probe_rejects_are_excluded_from_the_validation_loss(tiny_model_dir, folder, alone, tmp_path):
    good, _ = alone
    result = run(tiny_model_dir, folder, tmp_path, "probe", ["corrupt.mp4", "notes.txt", "empty.mp4", "left.mp4"],
                 "--per_device_eval_batch_size", "4")  # fmt: skip
    # same weights, same one usable clip: the loss is the good clip's (tolerance: thread scheduling only)
    assert result.eval_loss == pytest.approx(good.eval_loss, rel=1e-6, abs=1e-7)
    assert result.eval_excluded == 3
    report = json.loads((tmp_path / "probe" / "skipped_samples.json").read_text())
    assert report["eval"]["excluded"] == 3 and report["eval"]["dataset_size"] == 4
    assert sorted(s["where"].rsplit("id ", 1)[1] for s in report["eval"]["samples"]) == ["'v0')", "'v1')", "'v2')"]
    assert "empty file (0 bytes)" in json.dumps(report["eval"])
    summary = json.loads((tmp_path / "probe" / "training_summary.json").read_text())
    assert summary["data"]["validation"]["samples"] == 1 and summary["data"]["validation"]["excluded"] == 3
    metrics = eval_metrics(tmp_path / "probe")
    assert metrics["eval_samples"] == 1 and metrics["eval_excluded"] == 3


@pytest.mark.parametrize("batch", [1, 2])
def test_samples_that_fail_to_decode_during_evaluation_are_excluded_not_replaced(tiny_model_dir, folder, alone, tmp_path, caplog, batch):
    good, _ = alone
    with caplog.at_level("WARNING"):
        result = run(tiny_model_dir, folder, tmp_path, "cut", ["cut0.mp4", "cut1.mp4", "cut2.mp4", "left.mp4"],
                     "--per_device_eval_batch_size", str(batch))  # fmt: skip
    # batch 2: one batch of only broken clips, one with the good clip beside a broken one
    assert result.eval_loss == pytest.approx(good.eval_loss, rel=1e-6, abs=1e-7)
    assert result.eval_excluded == 3
    metrics = eval_metrics(tmp_path / "cut")
    assert metrics["eval_samples"] == 1 and metrics["eval_excluded"] == 3
    report = json.loads((tmp_path / "cut" / "skipped_samples.json").read_text())
    assert report["eval"]["excluded"] == 3 and report["counts"] == {}  # training itself skipped nothing
    named = [r.message for r in caplog.records if "excluded from the validation loss" in r.message]
    assert len(named) == 3  # each named once, though the final evaluation is the second pass for none and first for all


def test_unusable_training_files_are_counted_before_the_model_loads(tiny_model_dir, folder, tmp_path, monkeypatch):
    from fastvlm_video.errors import TooManySkippedSamples
    from fastvlm_video.train import run as run_module

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(run_module, "load_for_training", no_model)
    data = tmp_path / "train.json"
    data.write_text(json.dumps(records(["left.mp4", "up.MOV"] * 10 + ["empty.mp4", "notes.txt"])))
    argv = ["--model_name_or_path", str(tiny_model_dir), "--data_path", str(data), "--image_folder", str(folder),
            "--output_dir", str(tmp_path / "out"), "--use_cpu", "--report_to", "none", "--image_size", "64"]  # fmt: skip
    with pytest.raises(TooManySkippedSamples, match=r"2 of 22 training samples have unusable media .*before the model loaded") as info:
        train(*parse_train_args(argv))
    assert "empty.mp4: empty file (0 bytes)" in str(info.value) and "notes.txt" in str(info.value)
