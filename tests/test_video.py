"""Frames at the right indices and timestamps, from both backends; clear errors for bad files."""

import numpy as np
import pytest
import torch
from PIL import Image

from fastvlm_video import MediaError, is_video_file, load_video_frames, load_video_tensor
from fastvlm_video.demo.synthetic import frame_number_of, numbered_frames, write_video

BACKENDS = ["pyav", "decord"]


def numbers(clip):
    # centre crop of the padded (T, 3, S, S) tensor holds the picture
    s = clip.frames.shape[-1]
    return [frame_number_of(f.permute(1, 2, 0).numpy()[s // 3 : 2 * s // 3, s // 3 : 2 * s // 3]) for f in clip.frames]


@pytest.mark.parametrize("name,expected", [("a.mp4", True), ("B.MKV", True), ("c.WebM", True), ("d.m4v", True), ("e.png", False), ("mp4", False)])
def test_is_video_file(name, expected):
    assert is_video_file(name) is expected


@pytest.mark.parametrize("backend", BACKENDS)
def test_uniform_frames_and_timestamps(numbered_video, backend):
    clip = load_video_tensor(numbered_video, num_frames=8, image_size=64, backend=backend)
    expected = np.linspace(0, 49, 8).round().astype(int).tolist()
    assert clip.indices == expected
    assert numbers(clip) == expected  # the pixels really are those frames
    assert clip.timestamps == pytest.approx([i / 10 for i in expected])
    assert clip.frames.shape == (8, 3, 64, 64) and clip.frames.dtype == torch.uint8


def test_backends_agree(numbered_video):
    a = load_video_tensor(numbered_video, num_frames=6, image_size=64, backend="pyav")
    b = load_video_tensor(numbered_video, num_frames=6, image_size=64, backend="decord")
    assert a.indices == b.indices and a.timestamps == b.timestamps
    assert (a.frames.int() - b.frames.int()).abs().float().mean() < 3


def test_pad_is_black_and_centred(numbered_video):
    clip = load_video_tensor(numbered_video, num_frames=2, image_size=64, aspect="pad")
    # 64x48 source -> 64x48 inside a 64x64 square: 8 black rows above and below
    assert clip.frames[1, :, :8].max() == 0 and clip.frames[1, :, -8:].max() == 0
    assert clip.frames[1, :, 8:56].float().mean() > 100


def test_short_clip_repeats_frames(tmp_path):
    path = write_video(tmp_path / "short.mp4", numbered_frames(3), fps=10, gop=12)
    clip = load_video_tensor(path, num_frames=8, image_size=64)
    assert clip.indices == [0, 0, 1, 1, 1, 1, 2, 2]
    assert numbers(clip) == clip.indices


def test_segment_window(numbered_video):
    clip = load_video_tensor(numbered_video, num_frames=3, image_size=64, start=1.0, end=2.0)
    assert clip.indices == [10, 15, 20]
    assert numbers(clip) == [10, 15, 20]


def test_keyframe_mode_never_repeats_frame_zero(numbered_video):
    clip = load_video_tensor(numbered_video, num_frames=8, image_size=64, frame_sampling="keyframe")
    assert len(set(clip.indices)) == 8
    assert numbers(clip) == clip.indices
    assert clip.fallbacks == 3  # 5 keyframes (0, 12, 24, 36, 48) for 8 targets


def test_load_video_frames_is_seed_compatible(numbered_video):
    frames = load_video_frames(numbered_video, num_frames=4)
    assert len(frames) == 4 and all(isinstance(f, Image.Image) for f in frames)
    assert frames[0].size == (64, 48)


def test_matches_transformers_image_processor(numbered_video):
    """Our decode-at-size + pad equals LLaVA's expand-to-square + CLIP processor, up to resampling."""
    from transformers import CLIPImageProcessor

    full = load_video_frames(numbered_video, num_frames=3)
    ours = load_video_tensor(numbered_video, num_frames=3, image_size=128).frames.float() / 255
    processor = CLIPImageProcessor(size={"shortest_edge": 128}, crop_size={"height": 128, "width": 128}, image_mean=[0, 0, 0], image_std=[1, 1, 1])
    squares = []
    for frame in full:
        side = max(frame.size)
        square = Image.new("RGB", (side, side), (0, 0, 0))
        square.paste(frame, ((side - frame.width) // 2, (side - frame.height) // 2))
        squares.append(square)
    theirs = processor(images=squares, return_tensors="pt")["pixel_values"]
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().mean() < 0.02
    assert (ours - theirs).abs().max() < 0.25  # only at the pad border, where interpolation differs


@pytest.mark.parametrize(
    "make,reason",
    [
        (lambda p: p, "file not found"),
        (lambda p: (p.write_bytes(b""), p)[1], "empty file"),
        (lambda p: (p.write_text("not a video at all"), p)[1], "cannot open"),
        (lambda p: (p.mkdir(), p)[1], "not a regular file"),
    ],
    ids=["missing", "zero-bytes", "text", "directory"],
)
def test_bad_files_raise_media_error(tmp_path, make, reason):
    path = make(tmp_path / "bad.mp4")
    with pytest.raises(MediaError, match=reason) as info:
        load_video_tensor(path, num_frames=4, image_size=64)
    assert str(tmp_path / "bad.mp4") in str(info.value)


def test_truncated_video_raises_or_returns_frames(numbered_video, tmp_path):
    data = numbered_video.read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(MediaError, match="truncated.mp4"):
        load_video_tensor(path, num_frames=4, image_size=64)
