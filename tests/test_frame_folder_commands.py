"""A folder of frames is a video in every command: train, cache, check, budget, predict, evaluate and serve."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest
import torch
from PIL import Image

from fastvlm_video.cli import main


@pytest.fixture(scope="module")
def folder_data(tmp_path_factory):
    """Two frame folders (one at 4 fps by its fps.txt) and records pointing at them with both keys."""
    root = tmp_path_factory.mktemp("folders")
    for name, step in (("left", 1), ("right", -1)):
        clip = root / "media" / name
        clip.mkdir(parents=True)
        for i in range(8):
            frame = np.zeros((48, 64, 3), np.uint8)
            x = 28 + step * 3 * i
            frame[20:28, x : x + 8] = 255
            Image.fromarray(frame).save(clip / f"img_{i + 1}.jpg", quality=95)
    (root / "media" / "left" / "fps.txt").write_text("4")
    records = [
        {"id": "a", "video": "left", "conversations": [{"from": "human", "value": "<video>\nWhere?"}, {"from": "gpt", "value": "left"}]},
        {"id": "b", "image": "right", "conversations": [{"from": "human", "value": "<image>\nWhere?"}, {"from": "gpt", "value": "right"}]},
    ]
    (root / "train.json").write_text(json.dumps(records))
    return root


def test_check_cache_and_budget_read_frame_folders(folder_data, tiny_model_dir, tmp_path, capsys):
    data, media = str(folder_data / "train.json"), str(folder_data / "media")
    flags = ["--data", data, "--media_folder", media, "--num_video_frames", "3", "--image_size", "64"]
    assert main(["check", *flags, "--workers", "1", "--no_progress", "--report", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["media"]["videos"] == 2 and report["media"]["codec"] == {"frames": 2}
    assert report["media"]["duration_s"]["min"] == 2.0 and report["media"]["duration_s"]["max"] == 8.0  # 8 frames at 4 and 1 fps
    assert main(["cache", *flags, "--out", str(tmp_path / "cache")]) == 0
    from fastvlm_video.data.frame_cache import FrameCache
    from fastvlm_video.data.records import load_samples
    from fastvlm_video.video_config import VideoConfig

    video = VideoConfig(num_frames=3, image_size=64)
    samples, _ = load_samples(data, media)
    assert FrameCache(tmp_path / "cache", video).coverage(samples)["hit"] == 2
    capsys.readouterr()
    assert main(["budget", *flags, "--model", str(tiny_model_dir), "--frame_sampling", "fps", "--video_fps", "2"]) == 0
    # fps sampling from the listings' times: 4 frames of left (2 s at its fps.txt's 4 fps), 8 of right (8 s at 1 fps)
    assert re.search(r"image\s+\d+\s+\d+\s+8\n", capsys.readouterr().out)


def test_training_reads_frame_folders(folder_data, tiny_model_dir, tmp_path, caplog):
    from fastvlm_video.train.args import parse_train_args
    from fastvlm_video.train.run import train

    argv = [
        "--model_name_or_path", str(tiny_model_dir), "--data_path", str(folder_data / "train.json"),
        "--image_folder", str(folder_data / "media"), "--num_video_frames", "2", "--image_size", "64", "--frames_fps", "2",
        "--output_dir", str(tmp_path / "out"), "--per_device_train_batch_size", "2", "--max_steps", "1",
        "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none", "--use_cpu", "--disable_tqdm", "true",
        "--dataloader_num_workers", "0",
    ]  # fmt: skip
    with caplog.at_level(logging.INFO):
        result = train(*parse_train_args(argv))
    assert result.skipped == 0 and torch.isfinite(torch.tensor(result.train_loss))
    saved = json.loads((tmp_path / "out" / "video_config.json").read_text())
    assert saved["frames_fps"] == 2


def test_predict_evaluate_and_serve_take_a_frame_folder(folder_data, tiny_model_dir, tmp_path, capsys):
    from fastvlm_video.infer.predictor import Predictor

    clip = folder_data / "media" / "left"
    assert main(["predict", "--model", str(tiny_model_dir), "--input", str(clip), "--prompt", "Where?",
                 "--num_frames", "3", "--max_new_tokens", "2", "--device", "cpu"]) == 0  # fmt: skip
    capsys.readouterr()
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(tiny_model_dir), "--data", str(folder_data / "train.json"),
                 "--media_folder", str(folder_data / "media"), "--out", str(out), "--num_frames", "3",
                 "--max_new_tokens", "2", "--no_semantic", "--device", "cpu"]) == 0  # fmt: skip
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and not any(r.get("error") for r in rows)
    predictor = Predictor.from_pretrained(tiny_model_dir, device="cpu", num_frames=3)
    prompt = predictor.prompt_for(clip, "Where?")
    assert prompt.pixel_values.shape[0] == 3 and prompt.timestamps == [[0.0, 0.75, 1.75]]  # fps.txt: 4 frames per second
    pytest.importorskip("fastapi")
    from fastvlm_video.serve.app import frame_previews
    from fastvlm_video.serve.media import MediaStore

    store = MediaStore(folder_data / "media", tmp_path / "uploads", 1_000_000)
    listed = store.listing()["videos"]
    assert listed[:2] == ["left/", "right/"] and "left/img_1.jpg" in listed  # folders among the videos, first
    assert store.listing("rig")["videos"][0] == "right/"
    assert store.resolve("left/") == clip.resolve()
    resolved = store.resolve("left")
    assert resolved == clip.resolve()
    info = frame_previews(predictor, resolved)
    assert info["kind"] == "video" and info["num_frames"] == 3 and [f["t"] for f in info["frames"]] == [0.0, 0.75, 1.75]


def test_the_start_up_probe_accepts_frame_folders(folder_data, tmp_path):
    """The header probe reads a folder's listing, sidecar and first frame; a folder holding no image fails it."""
    from fastvlm_video.data.media_probe import probe_file

    assert probe_file(str(folder_data / "media" / "left"), "video") is None
    (tmp_path / "empty").mkdir()
    assert "holds no image" in probe_file(str(tmp_path / "empty"), "video")
