"""A tiny end-to-end fine-tune: loss falls, eval runs, checkpoint loads in plain transformers."""

import json

import pytest
import torch

from fastvlm_video.constants import VIDEO_CONFIG_NAME
from fastvlm_video.errors import ConfigError, TooManySkippedSamples
from fastvlm_video.train.args import parse_train_args
from fastvlm_video.train.run import train


def records(n, media):
    out = []
    for i in range(n):
        answer = ["left", "up", "a still image"][i % 3]
        out.append({"id": f"r{i}", "image": media[i % 3], "conversations": [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": answer}]})
    out.append({"id": "text", "conversations": [{"from": "human", "value": "Say hi"}, {"from": "gpt", "value": "hi"}]})
    return out


def run_args(model_dir, data, val, media_folder, out, *extra):
    return parse_train_args(
        [
            "--model_name_or_path", str(model_dir), "--data_path", str(data), "--validation_data_path", str(val),
            "--image_folder", str(media_folder), "--num_video_frames", "2", "--image_size", "64",
            "--output_dir", str(out), "--per_device_train_batch_size", "4", "--learning_rate", "5e-3",
            "--num_train_epochs", "8", "--logging_steps", "1", "--eval_strategy", "epoch", "--save_strategy", "epoch",
            "--save_total_limit", "1", "--report_to", "none", "--use_cpu", "--seed", "0", "--disable_tqdm", "true",
            "--unfreeze_mm_vision_tower", *extra,
        ]
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir, media_folder):
    root = tmp_path_factory.mktemp("train")
    data, val = root / "train.json", root / "val.json"
    data.write_text(json.dumps(records(11, ["left.mp4", "up.MOV", "still.png"])))
    val.write_text(json.dumps(records(2, ["left.mp4", "up.MOV", "still.png"])))
    result = train(*run_args(tiny_model_dir, data, val, media_folder, root / "out"))
    return result, root


def test_loss_falls_and_eval_runs(trained):
    result, root = trained
    state = json.loads((root / "out" / "trainer_state.json").read_text())
    losses = [e["loss"] for e in state["log_history"] if "loss" in e]
    evals = [e["eval_loss"] for e in state["log_history"] if "eval_loss" in e]
    assert len(evals) >= 8  # evaluated every epoch on the validation set
    assert sum(losses[-3:]) / 3 < 0.6 * sum(losses[:3]) / 3
    assert evals[-1] < evals[0]


def test_checkpoint_has_video_settings_and_processor(trained):
    _, root = trained
    out = root / "out"
    saved = json.loads((out / VIDEO_CONFIG_NAME).read_text())
    assert saved["num_frames"] == 2 and saved["image_size"] == 64
    checkpoints = sorted(out.glob("checkpoint-*"))
    assert checkpoints and (checkpoints[-1] / VIDEO_CONFIG_NAME).is_file()
    assert json.loads((out / "skipped_samples.json").read_text())["skipped"] == 0


def test_saved_model_loads_in_plain_transformers_with_identical_logits(trained, tiny_model_dir, pinned_threads):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from fastvlm_video.infer.predictor import Predictor

    _, root = trained
    out = root / "out"
    plain = AutoModelForImageTextToText.from_pretrained(out).eval()
    processor = AutoProcessor.from_pretrained(out)
    assert type(plain).__name__ == "FastVlmForConditionalGeneration"
    ours = Predictor.from_pretrained(out, device="cpu")
    batch = ours._inputs([ours.prompt_for(None, "Say hi")])
    pixel = torch.rand(2, 3, 64, 64)
    ids = batch["input_ids"]
    img = torch.full((1, 2), plain.config.image_token_id)
    ids = torch.cat([ids[:, :5], img, ids[:, 5:]], dim=1)
    with torch.no_grad():
        a = plain(input_ids=ids, pixel_values=pixel).logits
        b = ours.model(input_ids=ids, pixel_values=pixel).logits
    assert torch.equal(a, b)
    assert processor.tokenizer.convert_tokens_to_ids("<image>") == plain.config.image_token_id
    assert processor.image_processor.size["height"] == 64 and processor.image_processor.do_pad


def test_eval_strategy_without_validation_data_fails_fast(tiny_model_dir, media_folder, tmp_path):
    data = tmp_path / "t.json"
    data.write_text(json.dumps(records(3, ["left.mp4", "up.MOV", "still.png"])))
    args = run_args(tiny_model_dir, data, data, media_folder, tmp_path / "o")
    args[1].validation_data_path = []
    with pytest.raises(ConfigError, match="needs --validation_data_path"):
        train(*args)


def test_run_stops_when_too_many_samples_are_broken(tiny_model_dir, media_folder, tmp_path):
    data = tmp_path / "t.json"
    data.write_text(json.dumps(records(30, ["corrupt.mp4", "up.MOV", "still.png"])))
    args = run_args(tiny_model_dir, data, data, media_folder, tmp_path / "o", "--max_steps", "20", "--eval_strategy", "no")
    with pytest.raises(TooManySkippedSamples, match="more than 5%"):
        train(*args)


def test_trained_tower_keeps_batchnorm_running_statistics_end_to_end(trained, tiny_model_dir):
    """--unfreeze_mm_vision_tower trains the tower's BatchNorm weights but leaves its running statistics
    as they were (the default --vision_tower_batchnorm frozen), so inference sees what training saw."""
    from safetensors.torch import load_file

    _, root = trained
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(root / "out" / "model.safetensors")
    stats = [k for k in before if "vision_tower" in k and k.endswith(("running_mean", "running_var"))]
    weights = [k.replace("running_mean", "weight") for k in stats if k.endswith("running_mean")]
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)
    assert any(not torch.equal(before[k], after[k]) for k in weights)
