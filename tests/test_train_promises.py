"""What README and docs promise about `train`, each checked: configs/example.yaml runs as README shows it,
--attn_implementation reaches the LLM, short runs log, weights are readable like other files, Ctrl-C and
a cut-short checkpoint save, and when a run stopped by broken samples saves a resumable checkpoint."""

from __future__ import annotations

import json
import logging
import shlex
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from fastvlm_video.cli import main
from fastvlm_video.errors import ConfigError, TooManySkippedSamples
from fastvlm_video.save_marker import SAVE_IN_PROGRESS
from fastvlm_video.train.args import parse_train_args
from fastvlm_video.train.checkpoints import resolve_resume
from fastvlm_video.train.run import stop_on_skips, train

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "configs" / "example.yaml"


def records(media):
    return [
        {"id": f"r{i}", "video": m, "conversations": [{"from": "human", "value": "<video>\nWhere?"}, {"from": "gpt", "value": "left"}]}
        for i, m in enumerate(media)
    ]


def tiny_flags(model_dir, media_folder, data, out, val=None):
    """The example's paths replaced by the test's tiny model and clips; a 4-step run, checkpoints every 2."""
    return [
        "--model_name_or_path", str(model_dir), "--data_path", str(data), "--validation_data_path", str(val or data),
        "--image_folder", str(media_folder), "--output_dir", str(out), "--num_video_frames", "2", "--image_size", "64",
        "--model_max_length", "40", "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1",
        "--max_steps", "4", "--save_steps", "2", "--eval_steps", "2", "--report_to", "none", "--use_cpu",
        "--seed", "0", "--disable_tqdm", "true", "--dataloader_num_workers", "0",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def example_run(tmp_path_factory, tiny_model_dir, media_folder):
    root = tmp_path_factory.mktemp("example")
    data = root / "train.json"
    data.write_text(json.dumps(records(["left.mp4", "up.MOV"] * 4)))
    argv = ["--config", str(EXAMPLE), *tiny_flags(tiny_model_dir, media_folder, data, root / "out")]
    return train(*parse_train_args(argv)), root / "out"


def test_readme_command_with_the_example_config_parses():
    line = next(line for line in (REPO / "README.md").read_text().splitlines() if "configs/example.yaml" in line)
    argv = shlex.split(line.split("#")[0])
    assert argv[:2] == ["fastvlm-video", "train"]
    model, data, training = parse_train_args([str(REPO / a) if a == "configs/example.yaml" else a for a in argv[2:]])
    assert training.learning_rate == 1e-5  # the flag beats the YAML's 2e-5
    assert (model.attn_implementation, data.num_video_frames, training.eval_steps) == ("sdpa", 8, 50)


def test_the_example_config_trains_and_a_short_run_logs(example_run):
    result, out = example_run
    assert result.eval_loss is not None and (out / "checkpoint-4" / "trainer_state.json").is_file()
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    # HF logs every 500 steps by default: a 4-step run would log no loss at all (empty `plot` curves).
    assert [e["step"] for e in state["log_history"] if "loss" in e] == [1, 2, 3, 4]


def test_weights_are_readable_like_the_other_files(example_run):
    _, out = example_run
    for folder in (out, out / "checkpoint-2"):
        config_mode = stat.S_IMODE((folder / "config.json").stat().st_mode)
        assert config_mode & 0o044  # the json files are group/other readable under the usual umask
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir() if p.is_file()}
        assert modes["model.safetensors"] == config_mode, modes


def test_an_explicit_logging_steps_within_the_run_is_kept(tiny_model_dir, media_folder, tmp_path):
    from fastvlm_video.train.run import cap_logging_steps

    *_, args = parse_train_args(["--model_name_or_path", "m", "--data_path", "d", "--output_dir", str(tmp_path), "--logging_steps", "3"])
    cap_logging_steps(args, total_steps=100)
    assert args.logging_steps == 3
    *_, args = parse_train_args(["--model_name_or_path", "m", "--data_path", "d", "--output_dir", str(tmp_path), "--logging_steps", "300"])
    cap_logging_steps(args, total_steps=100)
    assert args.logging_steps == 5  # longer than the run: capped


def test_attn_implementation_reaches_the_llm(tiny_model_dir, tmp_path):
    from fastvlm_video.train.run import load_for_training

    base = ["--model_name_or_path", str(tiny_model_dir), "--data_path", "d", "--output_dir", str(tmp_path), "--use_cpu"]
    model_args, _, training_args = parse_train_args(base)
    assert model_args.attn_implementation == "sdpa"
    model_args, _, training_args = parse_train_args([*base, "--attn_implementation", "eager"])
    model = load_for_training(model_args, training_args)
    assert model.model.language_model.config._attn_implementation == "eager"
    assert all(layer.self_attn.config._attn_implementation == "eager" for layer in model.model.language_model.layers)
    with pytest.raises(ConfigError, match=r"--attn_implementation 'flash': use one of sdpa, eager, flash_attention_2"):
        parse_train_args([*base, "--attn_implementation", "flash"])


def test_ctrl_c_and_a_cut_short_save(tiny_model_dir, media_folder, tmp_path, monkeypatch, capsys, caplog):
    """Ctrl-C while checkpoint-4 is being saved (its weights and trainer_state.json already written): the
    folder keeps SAVE_IN_PROGRESS, is never resumed from and is named; the CLI prints one line, exit 130."""
    import transformers.trainer

    data = tmp_path / "train.json"
    data.write_text(json.dumps(records(["left.mp4", "up.MOV"] * 4)))
    calls = []
    original = transformers.trainer.rotate_checkpoints

    def ctrl_c_on_the_second_save(*args, **kwargs):  # runs after trainer_state.json is written
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers.trainer, "rotate_checkpoints", ctrl_c_on_the_second_save)
    out = tmp_path / "out"
    rc = main(["train", *tiny_flags(tiny_model_dir, media_folder, data, out), "--eval_strategy", "no", "--max_steps", "6"])
    err = capsys.readouterr().err.strip()
    assert rc == 130 and "Traceback" not in err, err
    assert err.splitlines()[-1] == (
        f"error: training interrupted at step 4; the last complete checkpoint is {out / 'checkpoint-2'} "
        "(checkpoint-4: its save did not finish: not resumable): resume with the same command plus --resume_from_checkpoint latest"
    )
    cut = out / "checkpoint-4"
    assert (cut / SAVE_IN_PROGRESS).is_file() and (cut / "trainer_state.json").is_file() and (cut / "model.safetensors").is_file()
    with caplog.at_level(logging.WARNING):
        assert resolve_resume("latest", str(out)) == str(out / "checkpoint-2")
    assert f"not resuming from {cut}: its save did not finish" in caplog.text


def test_a_stop_after_a_step_saves_a_resumable_checkpoint(tiny_model_dir, broken_media_folder, tmp_path):
    data = tmp_path / "train.json"
    media = ["left.mp4", "up.MOV"] * 5
    media.insert(3, "cut0.mp4")  # passes the start-up probe; with seed 0 first drawn in the second batch
    data.write_text(json.dumps(records(media)))
    out = tmp_path / "out"
    flags = tiny_flags(tiny_model_dir, broken_media_folder, data, out)
    with pytest.raises(TooManySkippedSamples) as info:
        train(*parse_train_args([*flags, "--eval_strategy", "no", "--save_strategy", "no", "--max_steps", "20", "--max_skip_fraction", "0"]))
    message = str(info.value)
    assert " State saved in " in message, message
    checkpoint = message.split("State saved in ")[1].split(" ")[0]
    assert Path(checkpoint).parent == out and resolve_resume("latest", str(out)) == checkpoint


def test_a_stop_at_step_zero_says_nothing_was_saved(tiny_model_dir, broken_media_folder, tmp_path):
    data = tmp_path / "train.json"
    data.write_text(json.dumps(records(["cut0.mp4", "cut1.mp4"] * 2)))  # header-only clips: they fail when decoded
    flags = tiny_flags(tiny_model_dir, broken_media_folder, data, tmp_path / "out")
    with pytest.raises(TooManySkippedSamples) as info:
        train(*parse_train_args([*flags, "--eval_strategy", "no", "--max_skip_fraction", "0"]))
    assert "No checkpoint saved at the stop (it stopped before the first step finished); there is no complete checkpoint." in str(info.value)
    assert not list((tmp_path / "out").glob("checkpoint-*"))


def test_a_stop_with_several_processes_names_the_last_checkpoint(tmp_path):
    saves = []
    trainer = SimpleNamespace(
        args=SimpleNamespace(output_dir=str(tmp_path), world_size=2), state=SimpleNamespace(global_step=7),
        _save_checkpoint=lambda *a, **k: saves.append(a), is_world_process_zero=lambda: False,
    )  # fmt: skip
    error = stop_on_skips(trainer, counter=None, exc=TooManySkippedSamples("3 of 20 samples are unusable"))
    assert not saves  # a save is collective: one stopping rank would wait for the others forever
    assert "No checkpoint saved at the stop (2 processes stop at different steps and a save needs them all); there is no complete checkpoint." in str(error)
