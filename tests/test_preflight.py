"""Cheap checks before a model loads (data/preflight.py): a missing data file, a missing media folder, a wrong
media root (examples + the folder that works), in train, check, evaluate and predict. Each command gets a
model path that does not exist: reaching the model would be a different error, so the check came first."""

from __future__ import annotations

import json
import logging

import pytest

from fastvlm_video.cli import main
from fastvlm_video.data.preflight import preflight
from fastvlm_video.errors import ConfigError, RecordError

NO_MODEL = "no/such/model"


@pytest.fixture()
def project(tmp_path, media_folder, monkeypatch):
    """data/train.json with paths relative to media/ (as prepare writes them), summary.json naming it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "media").symlink_to(media_folder)
    (tmp_path / "data").mkdir()
    turns = [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "x"}]
    rows = [{"id": name, "image": name, "conversations": turns} for name in ("left.mp4", "up.MOV", "still.png")]
    (tmp_path / "data/train.json").write_text(json.dumps(rows))
    (tmp_path / "data/summary.json").write_text(json.dumps({"media_folder": "media"}))
    return tmp_path


def test_wrong_root_names_examples_and_the_folder_that_works(project):
    with pytest.raises(ConfigError) as err:
        preflight(["data/train.json"], "data")
    message = str(err.value)
    assert "3 of 3 media files do not exist under --image_folder data, e.g. data/left.mp4, data/up.MOV, data/still.png" in message
    assert message.endswith("they exist under media: pass --image_folder media")


def test_missing_folder_and_missing_data_file_are_one_line_each(project):
    with pytest.raises(ConfigError, match=r"^--image_folder medai does not exist; they exist under media: pass --image_folder media$"):
        preflight(["data/train.json"], "medai")
    with pytest.raises(ConfigError) as err:
        preflight(["data/trian.json", "data/val.json"], "media")
    assert str(err.value).splitlines() == [
        "data file data/trian.json: not found; did you mean data/train.json?",
        "data file data/val.json: not found",
    ]


def test_a_few_missing_files_are_a_warning_not_an_error(project, caplog):
    rows = json.loads((project / "data/train.json").read_text())
    rows.append({**rows[0], "id": "gone", "image": "gone.mp4"})
    (project / "data/train.json").write_text(json.dumps(rows))
    with caplog.at_level(logging.WARNING):
        samples, _ = preflight(["data/train.json"], "media")
    assert len(samples) == 4 and "1 of 4 media files not found under media (e.g. media/gone.mp4)" in caplog.text


def test_invalid_records_and_an_empty_dataset_fail_before_the_model(project):
    (project / "data/bad.json").write_text(json.dumps([{"id": "b", "conversations": []}]))
    with pytest.raises(RecordError, match="1 invalid record"):
        preflight(["data/bad.json"], "media")
    with pytest.raises(ConfigError, match="no usable record"):
        preflight(["data/bad.json"], "media", skip_invalid=True)  # the advice of the error above, followed


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--model_name_or_path", NO_MODEL, "--data_path", "data/train.json", "--image_folder", "data", "--output_dir", "out"],
        ["check", "--data", "data/train.json", "--media_folder", "data", "--model", NO_MODEL],
        ["evaluate", "--model", NO_MODEL, "--data", "data/train.json", "--media_folder", "data", "--out", "ev"],
    ],
    ids=["train", "check", "evaluate"],
)
def test_every_command_checks_the_media_folder_before_the_model(project, argv, capsys):
    assert main(argv) == 1
    err = one_error_line(capsys)
    assert "do not exist under" in err and "pass --" in err and NO_MODEL not in err


def test_predict_and_evaluate_check_inputs_and_output_before_the_model(project, capsys):
    assert main(["predict", "--model", NO_MODEL, "--input", "media/nope.mp4"]) == 1
    assert one_error_line(capsys).strip() == "error: input media/nope.mp4: not found"
    assert main(["evaluate", "--model", NO_MODEL, "--data", "data/test.json", "--media_folder", "media", "--out", "ev"]) == 1
    assert "data file data/test.json: not found" in one_error_line(capsys)
    (project / "ev").mkdir()
    (project / "ev/predictions.jsonl").write_text("")
    assert main(["evaluate", "--model", NO_MODEL, "--data", "data/train.json", "--media_folder", "media", "--out", "ev"]) == 1
    assert "predictions.jsonl exists: pass --resume" in one_error_line(capsys)


def test_evaluate_has_the_flag_its_outside_folder_message_names(project, tmp_path, capsys):
    rows = json.loads((project / "data/train.json").read_text())
    (project / "data/outside.json").write_text(json.dumps([{**rows[0], "image": str(project / "media" / "left.mp4")}]))
    (project / "other").mkdir()
    argv = ["evaluate", "--model", NO_MODEL, "--data", "data/outside.json", "--media_folder", "other", "--out", "ev2"]
    assert main(argv) == 1
    assert "pass --allow_outside_media_folder" in one_error_line(capsys)
    assert main([*argv, "--allow_outside_media_folder"]) == 1  # now it gets as far as the model
    assert NO_MODEL in one_error_line(capsys)
