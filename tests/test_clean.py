"""clean: a dark, a blurred, a static and a tiny clip are rejected with their reasons; a good one, a small
subject moving in a large still frame and an animated GIF are kept."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from fastvlm_video.cli import main
from fastvlm_video.data.clean import Quality, Thresholds, judge, laplacian_variance, motion_share
from fastvlm_video.demo.synthetic import write_video


def texture(size: int, block: int = 4, seed: int = 0) -> np.ndarray:
    """Random grey blocks: sharp detail everywhere."""
    cells = np.random.default_rng(seed).integers(40, 216, size=(size // block + 1,) * 2, dtype=np.uint8)
    return np.kron(cells, np.ones((block, block), np.uint8))[:size, :size]


def moving(tex: np.ndarray, step: int = 4, gain: float = 1.0, frames: int = 8) -> np.ndarray:
    stack = np.stack([np.roll(tex, t * step, axis=1) for t in range(frames)]).astype(np.float32) * gain
    return np.repeat(stack[..., None], 3, axis=-1).clip(0, 255).astype(np.uint8)


def box_blur(frames: np.ndarray, k: int = 7, passes: int = 3) -> np.ndarray:
    f = frames.astype(np.float32)
    for _ in range(passes):
        for axis in (1, 2):
            f = sum(np.roll(f, s, axis=axis) for s in range(-(k // 2), k // 2 + 1)) / k
    return f.astype(np.uint8)


def small_mover(size: int = 192, square: int = 10, step: int = 5, frames: int = 8) -> np.ndarray:
    """A small bright square crossing a large still textured frame: 0.3% of the pixels move."""
    still = np.repeat(texture(size)[..., None], 3, axis=-1)
    stack = np.stack([still] * frames)
    for t in range(frames):
        y, x = size // 2, 20 + t * step
        stack[t, y : y + square, x : x + square] = 255
    return stack


CLIPS = {
    "good": lambda: moving(texture(64)),
    "small": small_mover,
    "dark": lambda: moving(texture(64), gain=0.08),
    "blurred": lambda: box_blur(moving(texture(64))),
    "static": lambda: moving(texture(64), step=0),
    "tiny": lambda: moving(texture(16)),
}
EXPECTED = {"good": None, "small": None, "anim": None, "dark": "too dark", "blurred": "blurred", "static": "static", "tiny": "too small"}


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    media = root / "media"
    for name, make in CLIPS.items():
        write_video(media / f"{name}.mp4", make(), fps=8, gop=8)
    Image.fromarray(np.repeat(texture(64)[..., None], 3, axis=-1)).save(media / "sharp.png")
    gif = [Image.fromarray(f) for f in moving(texture(64))]
    gif[0].save(media / "anim.gif", save_all=True, append_images=gif[1:], duration=125, loop=0)  # measured as a video
    (media / "broken.mp4").write_text("not a video")
    names = [*CLIPS, "broken"]
    records = [{"id": n, "video": f"{n}.mp4", "conversations": [{"from": "human", "value": "<video>\nWhat?"}, {"from": "gpt", "value": n}]} for n in names]
    records.append({"id": "anim", "image": "anim.gif", "conversations": [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "x"}]})
    records.append({"id": "image", "image": "sharp.png", "conversations": [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "x"}]})
    records.append({"id": "text", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hi"}]})
    (root / "train.json").write_text(json.dumps(records))
    argv = ["clean", "--data", str(root / "train.json"), "--media_folder", str(media), "--output", str(root / "kept.json"),
            "--report", str(root / "report.csv"), "--min_short_side", "32", "--num_video_frames", "4", "--workers", "1"]  # fmt: skip
    assert main(argv) == 0
    with open(root / "report.csv", newline="") as f:
        rows = {row["path"].rsplit("/", 1)[-1].split(".")[0]: row for row in csv.DictReader(f)}
    return rows, json.loads((root / "kept.json").read_text())


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_clip_gets_its_verdict_and_reason(cleaned, name):
    rows, _ = cleaned
    row = rows[name]
    if EXPECTED[name] is None:
        assert row["kept"] == "True" and row["reasons"] == ""
    else:
        assert row["kept"] == "False" and EXPECTED[name] in row["reasons"]
        if name != "dark":  # dimming also flattens detail, so the dark clip is blurred too
            assert len(row["reasons"].split("; ")) == 1, row["reasons"]


def test_report_has_measured_values_and_kept_records(cleaned):
    rows, kept = cleaned
    assert float(rows["good"]["sharpness"]) > 50 > float(rows["blurred"]["sharpness"])
    assert float(rows["dark"]["brightness"]) < 20 < float(rows["good"]["brightness"])
    assert float(rows["static"]["motion_share"]) == 0 and float(rows["good"]["motion_share"]) == 1
    assert (rows["tiny"]["width"], rows["tiny"]["height"]) == ("16", "16")
    assert rows["sharp"]["kind"] == "image" and rows["sharp"]["motion_share"] == ""  # no motion rule for images
    assert "unreadable" in rows["broken"]["reasons"]
    assert float(rows["small"]["motion_share"]) == 1  # a small subject moving in a large still frame moves
    assert rows["anim"]["kind"] == "image" and float(rows["anim"]["motion_share"]) == 1  # an animation is measured as a video
    assert [r["id"] for r in kept] == ["good", "small", "anim", "image", "text"]  # records unchanged, text-only kept


def test_measures():
    flat = np.full((20, 20), 100.0, np.float32)
    assert laplacian_variance(flat) == 0.0
    noisy = flat + np.random.default_rng(0).normal(0, 10, flat.shape).astype(np.float32)
    assert laplacian_variance(noisy) > 100
    grey = np.stack([flat, flat, flat + 50])
    assert motion_share(grey, [0, 0, 5], threshold=2) == 1.0  # a repeated frame (short clip) is not "static"
    assert motion_share(grey, [0, 3, 5], threshold=2) == 0.5


def test_motion_is_measured_locally():
    """A 12 px square moving on a 256 px still frame changes 0.4% of the pixels: the whole-frame mean
    difference stays far below the threshold, the busiest tile's does not. A still clip, even noisy, stays still."""
    background = np.random.default_rng(0).uniform(40, 216, size=(256, 256)).astype(np.float32)
    moving_square = np.stack([background.copy() for _ in range(4)])
    for t, frame in enumerate(moving_square):
        frame[120:132, 40 + 8 * t : 52 + 8 * t] = 250.0
    whole_frame = np.abs(np.diff(moving_square, axis=0)).mean(axis=(1, 2))
    assert whole_frame.max() < 0.5  # what the old whole-frame measure saw: "static"
    assert motion_share(moving_square, [0, 1, 2, 3], threshold=2) == 1.0
    noise = np.random.default_rng(1).normal(0, 1.0, size=(4, 256, 256)).astype(np.float32)
    assert motion_share(np.stack([background] * 4) + noise, [0, 1, 2, 3], threshold=2) == 0.0
    assert motion_share(np.stack([background] * 4), [0, 1, 2, 3], threshold=2) == 0.0


def test_judge_thresholds_are_flags():
    q = Quality(width=100, height=300, brightness=240, sharpness=10, motion_share=0.1)
    assert judge(q, Thresholds(min_short_side=100, max_brightness=250, min_sharpness=5, min_motion_share=0.1)) == []
    reasons = judge(q, Thresholds())
    assert [r.split(":")[0] for r in reasons] == ["too small", "too bright", "blurred", "static"]


def test_model_frame_size_is_the_default_minimum_size(tmp_path, tiny_model_dir, capsys):
    """With --model and --image_size 64 (the model's frame size for this run), a 96 px clip that the
    generic 224 px default would reject is kept; a 16 px one is not."""
    media = tmp_path / "media"
    write_video(media / "mid.mp4", moving(texture(96)), fps=8, gop=8)
    write_video(media / "tiny.mp4", moving(texture(16)), fps=8, gop=8)
    records = [{"id": n, "video": f"{n}.mp4", "conversations": [{"from": "human", "value": "<video>\nWhat?"}, {"from": "gpt", "value": n}]} for n in ("mid", "tiny")]
    (tmp_path / "train.json").write_text(json.dumps(records))
    argv = ["clean", "--data", str(tmp_path / "train.json"), "--media_folder", str(media), "--output", str(tmp_path / "kept.json"),
            "--report", str(tmp_path / "report.csv"), "--model", str(tiny_model_dir), "--image_size", "64", "--num_video_frames", "4",
            "--workers", "1", "--min_motion_share", "0", "--min_sharpness", "0"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "shorter side 64 px, the model's frame size" in out and "1 of 2 media file(s) rejected" in out
    assert [r["id"] for r in json.loads((tmp_path / "kept.json").read_text())] == ["mid"]
