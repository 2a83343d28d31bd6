"""Start-up checks of `train`: flags and YAML, output folder, BatchNorm of a trained tower, resume choice.

Each case is a one-line typed error (the CLI prints `error: ...`) or an exact behaviour; nothing here trains.
"""

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch

from fastvlm_video.errors import ConfigError
from fastvlm_video.save_marker import SAVE_IN_PROGRESS, mark_incomplete
from fastvlm_video.train.args import parse_train_args
from fastvlm_video.train.checkpoints import check_output_dir, is_disk_full, resolve_resume
from fastvlm_video.train.freeze import set_trainable

REPO = Path(__file__).resolve().parents[1]
BASE = ["--model_name_or_path", "m", "--data_path", "d.json", "--output_dir", "out"]


def parse(*argv):
    return parse_train_args([*BASE, *argv])


def write_yaml(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("learning_rate: [1e-3\n", r"not valid YAML at line 2"),
        ("lerning_rate: 0.1\n", r"unknown key 'lerning_rate': did you mean 'learning_rate'\?"),
        ("learning_rat: 0.1\n", r"unknown key 'learning_rat': did you mean 'learning_rate'\?"),  # no abbreviations
        ("model_max_length: null\n", r"model_max_length: null is not accepted \(its default is 'auto'\)"),
        ("num_video_frames: {a: 1}\n", r"argument --num_video_frames.*invalid int value"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_bad_yaml_is_one_line(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match) as info:
        parse("--config", write_yaml(tmp_path, text))
    assert "\n" not in str(info.value)


def test_missing_config_file():
    with pytest.raises(ConfigError, match=r"--config nope\.yaml: no such file"):
        parse_train_args(["--config", "nope.yaml"])


def test_config_anywhere_and_command_line_wins(tmp_path):
    path = write_yaml(tmp_path, "learning_rate: 0.25\nmodel_name_or_path: m\ndata_path: d.json\noutput_dir: o\nimage_size: null\n"
                      "lr_scheduler_kwargs: {num_cycles: 2}\nnum_train_epochs: 2\n")  # fmt: skip
    _, data, training = parse_train_args(["--num_train_epochs", "5", "--config", path])
    assert training.learning_rate == 0.25 and training.num_train_epochs == 5  # the flag beats the YAML
    assert data.image_size is None  # YAML null = None (the default), not the string "None"
    assert training.lr_scheduler_kwargs == {"num_cycles": 2}  # a mapping arrives as a mapping


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--learning_rat", "1e-3"], r"unknown flag --learning_rat: did you mean --learning_rate\?"),
        (["--num_vidoe_frames", "4"], r"unknown flag --num_vidoe_frames: did you mean --num_video_frames\?"),
        (["--image_size", "abc"], r"--image_size.*invalid int value"),
        (["--vision_tower_batchnorm", "running"], None),
    ],
)
def test_bad_flags_are_one_line(argv, match):
    if match is None:  # checked by train() before the model loads
        from fastvlm_video.train.run import check_batchnorm_mode

        with pytest.raises(ConfigError, match="use one of frozen, batch"):
            check_batchnorm_mode(parse(*argv)[0])
        return
    with pytest.raises(ConfigError, match=match) as info:
        parse(*argv)
    assert "\n" not in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="bf16 on a GPU is valid")
def test_shipped_bf16_config_on_cpu_is_one_line():
    with pytest.raises(ConfigError, match=r"bf16.*pass --bf16 false") as info:
        parse_train_args(["--config", str(REPO / "configs" / "finetune_lora.yaml")])
    assert "\n" not in str(info.value)


def test_defaults_quiet_and_parallel():
    model, _, training = parse()
    assert training.dataloader_num_workers >= 1
    assert model.vision_tower_batchnorm == "frozen"
    if not torch.cuda.is_available():
        assert training.dataloader_pin_memory is False  # no "pin_memory ... no accelerator" warning
    import yaml

    for config in (REPO / "configs").glob("*.yaml"):  # the deprecated name warns on every run
        assert "gradient_checkpointing" not in (yaml.safe_load(config.read_text()) or {}), config
    assert "--gradient_checkpointing" not in (REPO / "scripts" / "finetune_video.sh").read_text()


def test_output_dir_checks(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_output_dir(str(a_file), overwrite=False, resuming=False)
    with pytest.raises(ConfigError, match="cannot be written"):
        check_output_dir(str(a_file / "sub"), overwrite=False, resuming=False)
    run = tmp_path / "run"
    check_output_dir(str(run), overwrite=False, resuming=False)  # created
    (run / "model.safetensors").write_text("x")
    with pytest.raises(ConfigError, match="already holds files.*--resume_from_checkpoint latest.*--overwrite_output_dir true"):
        check_output_dir(str(run), overwrite=False, resuming=False)
    check_output_dir(str(run), overwrite=True, resuming=False)
    check_output_dir(str(run), overwrite=False, resuming=True)
    assert sorted(p.name for p in run.iterdir()) == ["model.safetensors"]  # the probe is gone


def test_disk_full_is_recognised():
    import errno

    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 401920 vs 401812"))
    try:
        try:
            raise OSError(errno.ENOSPC, "full")
        except OSError as inner:
            raise RuntimeError("save failed") from inner
    except RuntimeError as outer:
        assert is_disk_full(outer)
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))


# --- which checkpoint a resume takes --------------------------------------------------------------


def fake_checkpoint(run: Path, step: int, broken: str | None = None) -> Path:
    """A checkpoint folder with real file formats (safetensors weights, JSON state), optionally broken."""
    from safetensors.torch import save_file

    folder = run / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    save_file({"w": torch.zeros(64)}, folder / "model.safetensors")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
    if broken == "no_state":
        (folder / "trainer_state.json").unlink()
    elif broken == "cut_state":
        (folder / "trainer_state.json").write_text('{"global_step": 1, "log_hi')
    elif broken == "cut_weights":
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[:-100])
    elif broken == "marker":
        mark_incomplete(folder)
    elif broken == "empty":
        shutil.rmtree(folder)
        folder.mkdir()
    return folder


@pytest.mark.parametrize("broken", ["no_state", "cut_state", "cut_weights", "marker", "empty"])
def test_resume_skips_a_half_written_checkpoint(tmp_path, caplog, broken):
    run = tmp_path / "run"
    fake_checkpoint(run, 10)
    fake_checkpoint(run, 20, broken=broken)
    with caplog.at_level(logging.WARNING):
        assert resolve_resume("latest", str(run)) == str(run / "checkpoint-10")
        assert resolve_resume(str(run / "checkpoint-20"), str(run)) == str(run / "checkpoint-10")
    assert "not resuming from" in caplog.text and "checkpoint-20" in caplog.text


def test_resume_choices(tmp_path):
    run = tmp_path / "run"
    assert resolve_resume(None, str(run)) is None
    with pytest.raises(ConfigError, match="no such folder"):
        resolve_resume("latest", str(run))
    fake_checkpoint(run, 5, broken="no_state")
    with pytest.raises(ConfigError, match="no earlier complete checkpoint"):
        resolve_resume(str(run / "checkpoint-5"), str(run))
    fake_checkpoint(run, 3)
    assert resolve_resume("True", str(run)) == str(run / "checkpoint-3")  # HF's "True" means the latest too
    assert resolve_resume(str(run), "elsewhere") == str(run / "checkpoint-3")  # a run folder


def test_incomplete_output_is_refused_by_predict_and_evaluate(tiny_model_dir, tmp_path):
    from fastvlm_video.model.load import load_model, video_config_of

    copy = shutil.copytree(tiny_model_dir, tmp_path / "model")
    mark_incomplete(copy)
    for load in (load_model, video_config_of):
        with pytest.raises(ConfigError, match=f"its save did not finish \\({SAVE_IN_PROGRESS}"):
            load(copy)


# --- BatchNorm of a trained vision tower ----------------------------------------------------------


def bn_layers(tower):
    return [m for m in tower.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def train_tower_one_step(model, mode):
    set_trainable(model, train_llm=False, train_projector=True, train_vision_tower=True, tower_batchnorm=mode)
    tower = model.model.vision_tower
    model.train()
    pixels = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    before = [b.running_mean.clone() for b in bn_layers(tower)]
    train_out = tower(pixel_values=pixels).last_hidden_state
    optimizer = torch.optim.SGD([p for p in tower.parameters() if p.requires_grad], lr=0.1)
    train_out.pow(2).mean().backward()
    optimizer.step()
    model.train()
    train_after = tower(pixel_values=pixels).last_hidden_state
    model.eval()
    eval_after = tower(pixel_values=pixels).last_hidden_state
    moved = [not torch.equal(a, b.running_mean) for a, b in zip(before, bn_layers(tower))]
    return train_after, eval_after, moved


def test_trained_tower_keeps_batchnorm_running_statistics(tokenizer, pinned_threads):
    from fastvlm_video.model.tiny import build_tiny_model

    model = build_tiny_model(tokenizer, seed=0)
    weights_before = [b.weight.clone() for b in bn_layers(model.model.vision_tower)]
    assert weights_before  # the tiny tower keeps FastViTHD's BatchNorm layers
    train_out, eval_out, moved = train_tower_one_step(model, "frozen")
    assert torch.equal(train_out, eval_out)  # what training sees is what inference sees
    assert not any(moved)  # running statistics untouched
    assert any(not torch.equal(a, b.weight) for a, b in zip(weights_before, bn_layers(model.model.vision_tower)))  # weights train


def test_batch_statistics_on_request(tokenizer):
    from fastvlm_video.model.tiny import build_tiny_model

    train_out, eval_out, moved = train_tower_one_step(build_tiny_model(tokenizer, seed=0), "batch")
    assert not torch.allclose(train_out, eval_out) and all(moved)
