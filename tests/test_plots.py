"""``fastvlm-video plot``: PNG training curves from the trainer_state.json of a real (tiny) training run."""

import json

import pytest
from PIL import Image

from fastvlm_video.cli import main
from fastvlm_video.infer.plots import find_trainer_state, read_training_log
from fastvlm_video.train.args import parse_train_args
from fastvlm_video.train.run import train

PNGS = ["loss.png", "eval_loss.png", "learning_rate.png", "grad_norm.png", "training.png"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_model_dir, media_folder):
    root = tmp_path_factory.mktemp("plot_run")
    turn = [{"from": "human", "value": "<image>\nWhere?"}]
    records = [{"id": str(i), "image": "still.png", "conversations": turn + [{"from": "gpt", "value": "still"}]} for i in range(4)]
    (root / "data.json").write_text(json.dumps(records))
    (root / "val.json").write_text(json.dumps(records[:1]))
    argv = [
        "--model_name_or_path", str(tiny_model_dir), "--data_path", str(root / "data.json"),
        "--validation_data_path", str(root / "val.json"), "--image_folder", str(media_folder),
        "--num_video_frames", "2", "--image_size", "64", "--output_dir", str(root / "out"),
        "--per_device_train_batch_size", "2", "--num_train_epochs", "2", "--learning_rate", "1e-3",
        "--logging_steps", "1", "--eval_strategy", "epoch", "--save_strategy", "no", "--report_to", "none",
        "--use_cpu", "--seed", "0", "--disable_tqdm", "true",
    ]  # fmt: skip
    train(*parse_train_args(argv))
    return root / "out"


def test_training_log_is_read_from_a_real_trainer_state(run_dir):
    log = read_training_log(run_dir)
    assert {"loss", "eval_loss", "learning_rate", "grad_norm"} <= set(log.series)
    assert list(log.series["loss"].steps) == [1, 2, 3, 4] and list(log.series["eval_loss"].steps) == [2, 4]
    assert log.epoch_of(4) == pytest.approx(2.0)


def test_plot_command_writes_readable_pngs(run_dir, tmp_path, capsys):
    assert main(["plot", str(run_dir), "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / name) for name in PNGS]
    for name in PNGS:
        with Image.open(tmp_path / name) as image:
            assert image.width >= 600 and len(image.convert("L").getcolors(1 << 16)) > 20


def test_plot_without_a_state_fails_clearly(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 1
    assert "no readable trainer_state.json" in capsys.readouterr().err


def test_newest_checkpoint_state_is_found(tmp_path):
    for step in (5, 40, 10):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert find_trainer_state(tmp_path) == tmp_path / "checkpoint-40" / "trainer_state.json"
