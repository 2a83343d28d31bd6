"""The command line itself: --version, closest-flag suggestions, an example in every --help, train --help
opening with what matters, export refusing to overwrite, plot on a half-written checkpoint, evaluate's
exit code when nothing could be scored, tiny-model, and no token-alignment warning from our own tiny model."""

from __future__ import annotations

import json
import logging

import pytest

from fastvlm_video import __version__
from fastvlm_video.cli import build_parser, load_commands, main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"fastvlm-video {__version__}"


def test_a_mistyped_flag_gets_the_closest_one(capsys):
    assert main(["predict", "--model", "m", "--promt", "What?"]) == 2
    err = capsys.readouterr().err
    assert "fastvlm-video predict: error: unrecognized argument --promt; did you mean --prompt?" in err
    assert main(["evaluate", "--model", "m", "--data", "d", "--out", "o", "--media_foldr", "x"]) == 2
    assert "did you mean --media_folder?" in capsys.readouterr().err


def test_abbreviated_flags_are_not_silently_accepted(capsys):
    assert main(["predict", "--model", "m", "--prom", "What?"]) == 2  # argparse would take it for --prompt
    assert "unrecognized argument --prom" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(load_commands()))
def test_every_command_help_has_an_example(name, capsys):
    if name == "train":
        assert main(["train", "--help"]) == 0
        text = capsys.readouterr().out
        head = text[: text.index("All flags follow")]
        assert head.startswith("usage: fastvlm-video train --model_name_or_path") and "examples:" in head
        assert len(head.splitlines()) < 30 and "--image_folder" in head
        return
    with pytest.raises(SystemExit):
        main([name, "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and f"fastvlm-video {name} " in text.split("examples:", 1)[1]


def test_top_level_help_lists_every_command():
    text = build_parser(load_commands()).format_help()
    assert all(name in text for name in load_commands()) and "--version" in text


def test_export_refuses_an_existing_folder_unless_overwrite(tiny_model_dir, tmp_path, capsys):
    dst = tmp_path / "exported"
    dst.mkdir()
    (dst / "notes.txt").write_text("mine")
    assert main(["export", str(tiny_model_dir), str(dst)]) == 1
    assert "exists and is not empty" in capsys.readouterr().err and (dst / "notes.txt").read_text() == "mine"
    assert main(["export", str(tiny_model_dir), str(dst), "--overwrite"]) == 0
    assert (dst / "model.safetensors").is_file()


def write_state(path, steps):
    path.mkdir(parents=True, exist_ok=True)
    history = [{"step": s, "epoch": s / 10, "loss": 1.0 / s, "learning_rate": 1e-3, "grad_norm": 1.0} for s in steps]
    (path / "trainer_state.json").write_text(json.dumps({"log_history": history}))


def test_plot_uses_the_last_complete_checkpoint_of_a_half_written_run(tmp_path, capsys, caplog):
    write_state(tmp_path / "checkpoint-10", range(1, 11))
    write_state(tmp_path / "checkpoint-20", range(1, 21))
    text = (tmp_path / "checkpoint-20" / "trainer_state.json").read_text()
    (tmp_path / "checkpoint-20" / "trainer_state.json").write_text(text[: len(text) // 2])  # killed mid-save
    (tmp_path / "checkpoint-30").mkdir()  # killed before trainer_state.json was written
    with caplog.at_level(logging.WARNING):
        assert main(["plot", str(tmp_path), "--out", str(tmp_path / "png")]) == 0
    assert "checkpoint-20/trainer_state.json is incomplete" in caplog.text
    assert (tmp_path / "png" / "loss.png").is_file()
    (tmp_path / "checkpoint-10" / "trainer_state.json").write_text("{")
    assert main(["plot", str(tmp_path)]) == 1
    assert "no readable trainer_state.json" in capsys.readouterr().err


def test_evaluate_exits_1_when_nothing_could_be_scored(tiny_model_dir, media_folder, tmp_path, capsys):
    turns = [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "x"}]
    (tmp_path / "t.json").write_text(json.dumps([{"id": "c", "image": "corrupt.mp4", "conversations": turns}]))
    argv = ["evaluate", "--model", str(tiny_model_dir), "--data", str(tmp_path / "t.json"), "--media_folder", str(media_folder),
            "--out", str(tmp_path / "ev"), "--num_frames", "2", "--max_new_tokens", "2", "--device", "cpu", "--no_semantic"]  # fmt: skip
    assert main(argv) == 1
    assert "error: no sample could be scored (1 with unreadable media" in capsys.readouterr().err


def test_tiny_model_command_writes_a_checkpoint_that_trains_without_alignment_warnings(tmp_path, capsys):
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from transformers.trainer_utils import align_special_tokens

    out = tmp_path / "tiny"
    assert main(["tiny-model", str(out), "--image_size", "128", "--num_video_frames", "2"]) == 0
    assert json.loads((out / "video_config.json").read_text())["image_size"] == 128
    model, processor = AutoModelForImageTextToText.from_pretrained(out), AutoProcessor.from_pretrained(out)
    assert processor.image_processor.size["height"] == 128
    warned = []
    handler = logging.Handler()
    handler.emit = warned.append
    logger = logging.getLogger("transformers.trainer_utils")
    logger.addHandler(handler)
    try:
        align_special_tokens(model, processor)  # what the Trainer does at start-up
    finally:
        logger.removeHandler(handler)
    assert not [r for r in warned if "PAD/BOS/EOS" in r.getMessage()]
    assert main(["tiny-model", str(out)]) == 1  # exists: refused
    assert "--overwrite" in capsys.readouterr().err
