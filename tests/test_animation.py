"""Animated GIF / WebP / PNG are read as videos: N frames sampled by the video sampler, timestamps from
the frame durations, pixels as still images get them. A single-frame file stays one still image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fastvlm_video.data.dataset import load_media
from fastvlm_video.data.records import MediaRef
from fastvlm_video.demo.synthetic import frame_number_of, numbered_frames
from fastvlm_video.errors import MediaError
from fastvlm_video.media.image import load_image_tensor
from fastvlm_video.media.sampling import uniform_indices
from fastvlm_video.video_config import VideoConfig

DURATIONS_MS = [100, 100, 300, 100, 50, 100, 100, 200, 100, 100]  # 10 frames, variable timing


def save_animation(path, frames=None, durations=DURATIONS_MS):
    frames = numbered_frames(len(durations)) if frames is None else frames
    images = [Image.fromarray(f) for f in frames]
    extra = {"lossless": True} if path.suffix == ".webp" else {}
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0, **extra)
    return path


def numbers(frames):
    s = frames.shape[-1]
    return [frame_number_of(f.permute(1, 2, 0).numpy()[s // 3 : 2 * s // 3, s // 3 : 2 * s // 3]) for f in frames]


def starts(durations):
    return [sum(durations[:i]) / 1000 for i in range(len(durations))]


@pytest.mark.parametrize("suffix", [".gif", ".webp", ".png"])
def test_animation_is_sampled_like_a_video(tmp_path, suffix):
    path = save_animation(tmp_path / f"anim{suffix}")
    frames, timestamps = load_media(MediaRef(str(path), "image"), VideoConfig(num_frames=4, image_size=64))
    expected = uniform_indices(10, 4)  # the video sampler's choice: 0, 3, 6, 9
    assert frames.shape == (4, 3, 64, 64) and numbers(frames) == expected
    assert timestamps == pytest.approx([starts(DURATIONS_MS)[i] for i in expected])


def test_fps_mode_uses_the_frame_durations(tmp_path):
    path = save_animation(tmp_path / "anim.gif")
    video = VideoConfig(num_frames=4, image_size=64, frame_sampling="fps", fps=2.0)
    frames, timestamps = load_media(MediaRef(str(path), "image"), video)
    # frames start at 0, .1, .2, .5, .6, .65, .75, .85, 1.05, 1.15 s: ticks 0, .5, 1.0 -> frames 0, 3, 8
    assert numbers(frames) == [0, 3, 8] and timestamps == pytest.approx([0.0, 0.5, 1.05])


def test_animation_frame_pixels_equal_the_still_image_path(tmp_path):
    """Frame k of an animation gets exactly the pixels the same picture gets as a still image."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3, 40, 72, 3), dtype=np.uint8)
    path = save_animation(tmp_path / "anim.webp", frames, durations=[100, 100, 100])
    got, _ = load_media(MediaRef(str(path), "image"), VideoConfig(num_frames=3, image_size=64))
    for k in range(3):
        Image.fromarray(frames[k]).save(tmp_path / f"still{k}.png")
        assert got[k].equal(load_image_tensor(tmp_path / f"still{k}.png", 64)[0])


def test_a_single_frame_gif_stays_one_still_image(tmp_path):
    Image.fromarray(numbered_frames(1)[0]).save(tmp_path / "still.gif")
    frames, timestamps = load_media(MediaRef(str(tmp_path / "still.gif"), "image"), VideoConfig(num_frames=4, image_size=64))
    assert frames.shape == (1, 3, 64, 64) and timestamps is None


def test_a_truncated_animation_is_a_media_error(tmp_path):
    data = save_animation(tmp_path / "anim.gif").read_bytes()
    (tmp_path / "cut.gif").write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="cut.gif"):
        load_media(MediaRef(str(tmp_path / "cut.gif"), "image"), VideoConfig(num_frames=8, image_size=64))


def test_prepare_picks_up_gifs_from_class_folders():
    from pathlib import Path

    from fastvlm_video.data.prepare import is_media_file

    assert is_media_file(Path("squat/a.gif")) and is_media_file(Path("squat/b.WEBP")) and not is_media_file(Path("notes.txt"))
