"""push: the model card states the facts of a real tiny training run; --dry_run writes exactly the upload folder.
Never contacts the network: a missing token, offline mode and a refused connection are each one clear error."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

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
        "--per_device_train_batch_size", "3", "--num_train_epochs", "1", "--max_steps", "4", "--learning_rate", "1e-3", "--eval_strategy", "no",
        "--save_strategy", "no", "--report_to", "none", "--use_cpu", "--disable_tqdm", "true",
    ]  # fmt: skip
    train(*parse_train_args(args))
    (root / "test.json").write_text(json.dumps([{**r, "class": r["conversations"][1]["value"]} for r in records[:2]]))
    evaluate = ["evaluate", "--model", str(root / "model"), "--media_folder", str(media_folder), "--no_semantic"]
    assert main([*evaluate, "--data", str(root / "test.json"), "--out", str(root / "eval_test"), "--score", "choices"]) == 0
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
    assert f"Base model: `{tiny_model_dir.name} (a local checkpoint)`" in card
    # what ran: --max_steps 4 of 3 samples is 2 epochs of the 6, whatever --num_train_epochs asked for
    assert (summary["steps"], summary["epochs"], summary["samples_seen"]) == (4, 2.0, 12)
    assert summary["requested"] == {"num_train_epochs": 1.0, "max_steps": 4}
    assert "- 4 optimizer steps (2 epochs, 12 samples seen, 3 per step)" in card
    assert "Training: full; LLM full, projector full, vision tower frozen" in card
    assert "| train | 6 | 4 | 1 | 1 | 4 |" in card and "| validation | 2 | 2 | 0 | 0 | 2 |" in card
    assert "Classes (training answers): hi (1), left (2), still (1), up (2)" in card
    assert (
        "| num_frames | 2 |" in card and "| image_size | 64 |" in card and "| tokens per frame | 1 |" in card
    )
    assert summary["data"]["train"]["classes"] == {"hi": 1, "left": 2, "still": 1, "up": 2}
    # the test split first, in full, with its data and scoring; the validation evaluation listed after it
    test_metrics = json.loads((run_dir / "eval_test" / "metrics.json").read_text())
    assert ("`fastvlm-video evaluate` on `" + run_dir.name + "/test.json` (split: test, 2 samples; scoring: "
            "log-likelihood of the choices (`--score choices`)):") in card
    assert f"| accuracy | {test_metrics['accuracy']:.4g} |" in card
    assert f"| {run_dir.name}/val.json | validation | 2 | `--score generate` | {metrics['accuracy']:.4g} |" in card
    assert "No evaluation on a test split" not in card and "pypi.org" not in card and "pip install fastvlm-video" not in card
    assert (
        "fastvlm-video predict --model tiny-video" in card
        and "AutoModelForImageTextToText" in card
        and "--format mlx" in card
    )
    assert (
        main(["push", str(model), "--repo", "me/tiny-video", "--dry_run", "--out", str(out)]) == 1
    )  # never over a folder


def test_nothing_uploaded_names_a_local_path(run_dir, tiny_model_dir, media_folder):
    model, out = run_dir / "model", run_dir / "upload_paths"
    assert main(["push", str(model), "--repo", "me/tiny-video", "--dry_run", "--out", str(out)]) == 0
    local = [str(p) for p in (run_dir, tiny_model_dir, media_folder, run_dir.parent)]
    for path in out.iterdir():
        text = path.read_bytes().decode("utf-8", errors="replace")
        assert not any(root in text for root in local), path.name
    report = json.loads((out / "skipped_samples.json").read_text())
    assert report["used"] == 12 and "samples" not in report
    assert "samples" in json.loads((model / "skipped_samples.json").read_text())  # the local copy keeps the entries
    assert json.loads((out / "training_summary.json").read_text())["base_model"] == f"{tiny_model_dir.name} (a local checkpoint)"
    assert json.loads((model / "training_summary.json").read_text())["base_model"] == str(tiny_model_dir)


def test_a_lora_adapter_on_a_local_base_needs_a_hub_id(run_dir, tiny_model_dir, tmp_path, capsys):
    adapter = tmp_path / "lora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "base_model_name_or_path": str(tiny_model_dir)}))
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    shutil.copy(run_dir / "model" / "video_config.json", adapter)
    assert main(["push", str(adapter), "--repo", "me/lora", "--dry_run", "--out", str(tmp_path / "up")]) == 1
    err = capsys.readouterr().err
    assert f"is a LoRA adapter on a local base model ({tiny_model_dir})" in err and "--base_model OWNER/NAME" in err
    assert "--merge_lora" in err and not (tmp_path / "up").exists()
    assert main(["push", str(adapter), "--repo", "me/lora", "--dry_run", "--out", str(tmp_path / "up"), "--base_model", "me/base"]) == 0
    assert json.loads((tmp_path / "up" / "adapter_config.json").read_text())["base_model_name_or_path"] == "me/base"
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_model_dir)
    assert "base_model: me/base" in (tmp_path / "up" / "README.md").read_text()


def test_the_cards_transformers_code_runs_as_written_and_answers_like_predict(run_dir, media_folder, tmp_path, capsys):
    """The card's python block, in a fresh interpreter that cannot import fastvlm_video, with only the model
    id replaced by the local folder (as `hf download` would leave it): the same answer as `predict`."""
    model, out = run_dir / "model", tmp_path / "up"
    assert main(["push", str(model), "--repo", "me/tiny-video", "--dry_run", "--out", str(out)]) == 0
    card = (out / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", card, re.S)
    assert len(blocks) == 1 and '"tiny-video"' in blocks[0]
    code = blocks[0].replace('"tiny-video"', repr(str(model)))
    shutil.copy(media_folder / "left.mp4", tmp_path / "clip.mp4")  # the card's example file name
    plain = subprocess.run([sys.executable, "-c", "import sys; sys.modules['fastvlm_video'] = None\n" + code],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    capsys.readouterr()
    assert main(["predict", "--model", str(model), "--input", str(tmp_path / "clip.mp4"), "--prompt", "What happens?"]) == 0
    assert plain == capsys.readouterr().out and plain.strip()


def test_the_card_code_is_the_tested_docs_snippet():
    """docs/models.md shows the same code (tests/test_processor.py checks its inputs and logits against predict)."""
    from pathlib import Path

    from fastvlm_video.ship.card import PLAIN_TRANSFORMERS

    docs = (Path(__file__).resolve().parents[1] / "docs" / "models.md").read_text()
    assert re.search(r"<!-- plain-transformers-video -->\s*```python\n(.*?)```", docs, re.S).group(1) == PLAIN_TRANSFORMERS


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
