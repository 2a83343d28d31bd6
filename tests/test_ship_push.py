"""push: the model card states the facts of a real tiny training run; --dry_run writes exactly the upload folder.
Never contacts the network: a missing token, offline mode and a refused connection are each one clear error."""

from __future__ import annotations

import json

import pytest

from fastvlm_video.cli import main
from fastvlm_video.errors import ConfigError
from fastvlm_video.ship.push import upload
from fastvlm_video.train.args import parse_train_args
from fastvlm_video.train.run import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_model_dir, media_folder):
    """A real (short) LoRA-free run: 5 video/image samples + 1 text, frozen tower, 2 frames at 64 px; then evaluate."""
    root = tmp_path_factory.mktemp("push")
    records = [
        {
            "id": f"r{i}",
            "video" if m.endswith(("mp4", "MOV")) else "image": m,
            "conversations": [{"from": "human", "value": "<image>\nWhere?"}, {"from": "gpt", "value": a}],
        }
        for i, (m, a) in enumerate(
            [
                ("left.mp4", "left"),
                ("up.MOV", "up"),
                ("left.mp4", "left"),
                ("still.png", "still"),
                ("up.MOV", "up"),
            ]
        )
    ] + [{"id": "t", "conversations": [{"from": "human", "value": "Say hi"}, {"from": "gpt", "value": "hi"}]}]
    (root / "train.json").write_text(json.dumps(records))
    (root / "val.json").write_text(json.dumps(records[:2]))
    args = [
        "--model_name_or_path", str(tiny_model_dir), "--data_path", str(root / "train.json"), "--validation_data_path", str(root / "val.json"),
        "--image_folder", str(media_folder), "--num_video_frames", "2", "--image_size", "64", "--output_dir", str(root / "model"),
        "--per_device_train_batch_size", "3", "--num_train_epochs", "1", "--learning_rate", "1e-3", "--eval_strategy", "no",
        "--save_strategy", "no", "--report_to", "none", "--use_cpu", "--disable_tqdm", "true",
    ]  # fmt: skip
    train(*parse_train_args(args))
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(root / "model"),
                "--data",
                str(root / "val.json"),
                "--media_folder",
                str(media_folder),
                "--out",
                str(root / "eval"),
                "--no_semantic",
                "--max_new_tokens",
                "4",
            ]
        )
        == 0
    )
    return root


def test_dry_run_writes_the_upload_folder_and_a_card_with_the_runs_facts(run_dir, tiny_model_dir):
    model, out = run_dir / "model", run_dir / "upload"
    assert main(["push", str(model), "--repo", "me/tiny-video", "--dry_run", "--out", str(out)]) == 0
    uploaded = sorted(p.name for p in out.iterdir())
    assert "README.md" in uploaded and "model.safetensors" in uploaded and "video_config.json" in uploaded
    assert "training_args.bin" not in uploaded and not any((out / n).is_dir() for n in uploaded)
    card = (out / "README.md").read_text()
    summary = json.loads((model / "training_summary.json").read_text())
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text())
    assert f"Base model: `{tiny_model_dir}`" in card
    assert "Training: full; LLM full, projector full, vision tower frozen" in card
    assert "| train | 6 | 4 | 1 | 1 | 4 |" in card and "| validation | 2 | 2 | 0 | 0 | 2 |" in card
    assert "Classes (training answers): hi (1), left (2), still (1), up (2)" in card
    assert (
        "| num_frames | 2 |" in card and "| image_size | 64 |" in card and "| tokens per frame | 1 |" in card
    )
    assert summary["data"]["train"]["classes"] == {"hi": 1, "left": 2, "still": 1, "up": 2}
    assert f"| accuracy | {metrics['accuracy']:.4g} |" in card
    assert (
        "fastvlm-video predict --model tiny-video" in card
        and "AutoModelForImageTextToText" in card
        and "--format mlx" in card
    )
    assert (
        main(["push", str(model), "--repo", "me/tiny-video", "--dry_run", "--out", str(out)]) == 1
    )  # never over a folder


def test_missing_token_is_one_clear_error(run_dir, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # no stored token either
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "token"))
    assert main(["push", str(run_dir / "model"), "--repo", "me/x"]) == 1
    assert "no Hugging Face token" in capsys.readouterr().err


def test_no_network_is_one_clear_error(run_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    (tmp_path / "f").mkdir()
    with pytest.raises(ConfigError, match="cannot upload me/x"):
        upload(
            tmp_path / "f", "me/x", private=True
        )  # the tests run with HF_HUB_OFFLINE=1: refused before any connection
