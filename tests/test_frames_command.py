"""``fastvlm-video frames`` shows exactly the pixels training feeds the model: 16-bit PNG, EXIF-rotated and
CMYK JPEGs (once "corrupt or truncated"), a video segment, a frame folder; --model's settings, --video_fps."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from fastvlm_video.cli import main
from fastvlm_video.data.chat import ChatEncoder
from fastvlm_video.data.dataset import ConversationDataset
from fastvlm_video.data.records import MediaRef, Message, Sample
from fastvlm_video.demo.synthetic import numbered_frames, write_video
from fastvlm_video.media.contact_sheet import CAPTION_H, tile_origin
from fastvlm_video.media.kinds import media_type
from fastvlm_video.video_config import VideoConfig

SIZE, THUMB = 64, 256  # tiles are 4x nearest-neighbour enlargements of the model's 64 px frames


def sheet_frames(path, n: int, columns: int = 4) -> torch.Tensor:
    """The model frames a sheet shows, read back from its tiles: (n, 3, S, S) uint8."""
    sheet = np.asarray(Image.open(path).convert("RGB"))
    out = []
    for i in range(n):
        x, y = tile_origin(i, columns, THUMB, THUMB + CAPTION_H)
        out.append(torch.from_numpy(sheet[y : y + THUMB : THUMB // SIZE, x : x + THUMB : THUMB // SIZE].copy()).permute(2, 0, 1))
    return torch.stack(out)


def trained_frames(tokenizer, path, video: VideoConfig, start=None, end=None) -> torch.Tensor:
    """What a training sample of ``path`` feeds the model."""
    sample = Sample("s", [Message("user", "<image>\nWhat?"), Message("assistant", "x")], [MediaRef(str(path), media_type(path), start, end)])
    return ConversationDataset([sample], ChatEncoder(tokenizer, video.tokens_per_frame), video).build(sample)["pixel_values"]


@pytest.fixture(scope="module")
def tricky(tmp_path_factory):
    """A 16-bit PNG, an EXIF-rotated JPEG, a CMYK JPEG (the walk's images), a 5 s clip and a frame folder."""
    root = tmp_path_factory.mktemp("tricky")
    y, x = np.mgrid[:48, :80]
    grey = ((x * 3 + y) % 256).astype(np.uint8)
    Image.fromarray(grey.astype(np.uint16) * 257).save(root / "depth16.png")
    rgb = np.stack([grey, 255 - grey, np.full_like(grey, 90)], -1)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(rgb).save(root / "IMG_2001 exif rotated.jpg", exif=exif, quality=95)
    Image.fromarray(rgb).convert("CMYK").save(root / "print_cmyk.jpg", quality=95)
    write_video(root / "clip.mp4", numbered_frames(50), fps=10, gop=12)
    (root / "frames").mkdir()
    for i in range(10):
        Image.fromarray(np.full((40, 60, 3), 25 * i, np.uint8)).save(root / "frames" / f"{i}.png")
    return root


@pytest.mark.parametrize(
    "name,flags,num",
    [
        ("depth16.png", [], 1),
        ("IMG_2001 exif rotated.jpg", [], 1),
        ("print_cmyk.jpg", [], 1),
        ("clip.mp4", ["--start", "1.0", "--end", "3.0"], 4),
        ("frames", ["--frames_fps", "5"], 4),
    ],
    ids=["16-bit-png", "exif-jpeg", "cmyk-jpeg", "video-segment", "frame-folder"],
)
def test_frames_shows_the_pixels_training_gets(tricky, tokenizer, tmp_path, capsys, name, flags, num):
    out = tmp_path / "sheet.png"
    assert main(["frames", str(tricky / name), "--out", str(out), "--image_size", str(SIZE), "--num_frames", "4", *flags]) == 0
    video = VideoConfig(num_frames=4, image_size=SIZE, frames_fps=5)
    start, end = (1.0, 3.0) if name == "clip.mp4" else (None, None)
    expected = trained_frames(tokenizer, tricky / name, video, start, end)
    assert expected.shape[0] == num and torch.equal(sheet_frames(out, num), expected)
    assert f"{num} frame(s) of 64x64" in capsys.readouterr().out
    if name == "IMG_2001 exif rotated.jpg":  # upright: taller than wide once rotated, so padded left and right
        assert expected[0, :, :, :8].max() == 0 and expected[0, :, 32, 8:56].float().mean() > 0


def test_frames_reads_the_checkpoints_settings(tricky, tiny_model_dir, tmp_path, capsys):
    model = tmp_path / "model"
    model.mkdir()
    for f in tiny_model_dir.iterdir():
        (model / f.name).symlink_to(f)
    (model / "video_config.json").write_text(json.dumps({"num_frames": 3, "image_size": 64, "frame_sampling": "uniform"}))
    out = tmp_path / "sheet.png"
    assert main(["frames", str(tricky / "clip.mp4"), "--model", str(model), "--out", str(out)]) == 0
    assert "3 frame(s) of 64x64" in capsys.readouterr().out
    # --video_fps is honoured: 2 frames per second of a 5 s clip is 10 frames (the walk got 3 from --num_frames 6)
    assert main(["frames", str(tricky / "clip.mp4"), "--model", str(model), "--out", str(out),
                 "--frame_sampling", "fps", "--video_fps", "2"]) == 0  # fmt: skip
    assert "10 frame(s) of 64x64 (pad), fps sampling, 0.00-5.00 s" in capsys.readouterr().out
