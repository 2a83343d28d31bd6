"""A folder of frames is a video: natural order, times from a sidecar or --frames_fps, every sampling
mode and segments, only the sampled images decoded, the same pixels as the images alone, clear errors,
records and the frame cache (keyed by the listing)."""

from __future__ import annotations

import json
import os
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from fastvlm_video.data.cache_build import build_cache
from fastvlm_video.data.dataset import load_media_item, load_sample_media, media_kind
from fastvlm_video.data.frame_cache import FrameCache, file_stamp, media_key
from fastvlm_video.data.records import MediaRef, load_samples
from fastvlm_video.errors import ConfigError, MediaError
from fastvlm_video.media import frame_folder
from fastvlm_video.media.frame_folder import natural_key
from fastvlm_video.media.image import load_image_tensor
from fastvlm_video.media.video import load_video_tensor, read_media_index
from fastvlm_video.video_config import VideoConfig

VIDEO = VideoConfig(num_frames=4, image_size=64)


def make_folder(path, n=12, fmt="frame_{}.png", size=(48, 32)):
    """Frame i (named with an unpadded number, so "frame_10" sorts before "frame_2" by text) has grey level 20*i."""
    path.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((size[1], size[0], 3), 20 * i, np.uint8)).save(path / fmt.format(i))
    (path / "notes.txt").write_text("not a frame")
    (path / ".DS_Store").write_bytes(b"\0junk")
    return path


def levels(frames: torch.Tensor) -> list[int]:
    """The grey level of each (T, 3, S, S) frame's centre pixel."""
    s = frames.shape[-1] // 2
    return [int(f[0, s, s]) for f in frames]


def test_natural_order():
    names = ["frame_10.png", "frame_2.png", "Frame_1.png", "frame_02b.png"]
    assert sorted(names, key=natural_key) == ["Frame_1.png", "frame_2.png", "frame_02b.png", "frame_10.png"]


def test_frames_in_natural_order_at_the_folders_rate(tmp_path):
    folder = make_folder(tmp_path / "clip")
    clip = load_video_tensor(folder, num_frames=4, image_size=64)
    assert clip.indices == [0, 3, 7, 11] and levels(clip.frames) == [0, 60, 140, 220]
    assert clip.timestamps == [0.0, 3.0, 7.0, 11.0] and clip.window == (0.0, 12.0)  # default: 1 frame per second
    assert load_video_tensor(folder, num_frames=4, image_size=64, frames_fps=4).timestamps == [0.0, 0.75, 1.75, 2.75]
    (folder / "fps.txt").write_text("2\n")  # the folder's own rate wins over --frames_fps
    assert load_video_tensor(folder, num_frames=4, image_size=64, frames_fps=4).timestamps == [0.0, 1.5, 3.5, 5.5]
    (folder / "fps.txt").unlink()
    (folder / "meta.json").write_text(json.dumps({"fps": 10}))
    assert read_media_index(folder).timestamps[:3] == [0.0, 0.1, 0.2]


def test_sampling_modes_and_segments(tmp_path):
    folder = make_folder(tmp_path / "clip")
    (folder / "fps.txt").write_text("4")  # 12 frames = 3 s
    fps = load_video_tensor(folder, frame_sampling="fps", fps=2, image_size=64)
    assert fps.indices == [0, 2, 4, 6, 8, 10]
    key = load_video_tensor(folder, frame_sampling="keyframe", num_frames=3, image_size=64)
    assert key.indices == [0, 5, 11] and key.fallbacks == 0  # every frame is a keyframe
    seg = load_video_tensor(folder, num_frames=3, image_size=64, start=1.0, end=2.0)
    assert seg.indices == [4, 6, 8] and seg.timestamps == [1.0, 1.5, 2.0]
    with pytest.raises(MediaError, match="no frames between"):
        load_video_tensor(folder, image_size=64, start=5.0, end=6.0)


def test_each_frame_has_the_pixels_of_its_image_and_only_sampled_images_are_read(tmp_path, monkeypatch):
    folder = tmp_path / "clip"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(9):
        Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)).save(folder / f"{i:03d}.jpg", quality=90)
    opened = []
    real = frame_folder.load_image
    monkeypatch.setattr(frame_folder, "load_image", lambda p: (opened.append(os.path.basename(p)), real(p))[1])
    for aspect in ("pad", "crop"):
        opened.clear()
        clip = load_video_tensor(folder, num_frames=3, image_size=64, aspect=aspect)
        assert sorted(opened) == ["000.jpg", "004.jpg", "008.jpg"]  # the listing reads no pixels
        for frame, i in zip(clip.frames, clip.indices):
            assert torch.equal(frame, load_image_tensor(folder / f"{i:03d}.jpg", 64, aspect)[0])


def test_unusable_folders_are_media_errors_naming_the_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("x")
    with pytest.raises(MediaError, match=r"empty: a folder is read as a video of its frames, but it holds no image .*it holds 1 file\(s\) \(.md x1\)"):
        load_video_tensor(empty, image_size=64)
    broken = make_folder(tmp_path / "broken", n=3)
    (broken / "frame_2.png").write_bytes(b"not a png")
    with pytest.raises(MediaError, match=r"broken: frame 'frame_2.png': cannot read image") as info:
        load_video_tensor(broken, num_frames=3, image_size=64)
    assert info.value.path == str(broken)
    bad_rate = make_folder(tmp_path / "rate", n=2)
    (bad_rate / "fps.txt").write_text("fast")
    with pytest.raises(MediaError, match=r"fps.txt: frames per second must be a number > 0, got 'fast'"):
        load_video_tensor(bad_rate, image_size=64)
    with pytest.raises(ConfigError, match="frames_fps"):
        VideoConfig(frames_fps=0)


def test_frames_of_different_sizes(tmp_path):
    """At a model size each frame is resized alone; at full resolution (clean, load_video_frames) a clear error."""
    folder = make_folder(tmp_path / "clip", n=3)
    Image.fromarray(np.full((64, 40, 3), 99, np.uint8)).save(folder / "frame_1.png")
    assert load_video_tensor(folder, num_frames=3, image_size=64).frames.shape == (3, 3, 64, 64)
    with pytest.raises(MediaError, match=r"clip: frames of different sizes \(48x32, 40x64\)"):
        load_video_tensor(folder, num_frames=3, image_size=None)


def test_records_point_at_a_folder_with_either_key(tmp_path):
    make_folder(tmp_path / "media" / "clip", n=6)
    records = [
        {"id": key, key: "clip", "conversations": [{"from": "human", "value": "<image>\nWhere?"}, {"from": "gpt", "value": "left"}]}
        for key in ("video", "image")
    ]
    (tmp_path / "train.json").write_text(json.dumps(records))
    samples, errors = load_samples(tmp_path / "train.json", tmp_path / "media")
    assert not errors
    for sample in samples:
        [ref] = sample.media
        assert ref.kind == "video" and media_kind(ref) == "video"
        [item], _ = load_sample_media(sample.messages, sample.media, VIDEO)
        assert item.frames.shape == (4, 3, 64, 64) and item.timestamps == [0.0, 1.0, 3.0, 5.0]
    assert media_kind(MediaRef(str(tmp_path / "media" / "clip"), "image")) == "video"  # however the ref was made


def test_frame_cache_keys_on_the_listing(tmp_path):
    folder = make_folder(tmp_path / "media" / "clip", n=6)
    records = [{"id": "a", "video": "clip", "conversations": [{"from": "human", "value": "<image>\nWhere?"}, {"from": "gpt", "value": "x"}]}]
    (tmp_path / "train.json").write_text(json.dumps(records))
    samples, _ = load_samples(tmp_path / "train.json", tmp_path / "media")
    ref = samples[0].media[0]
    report = build_cache(samples, VIDEO, tmp_path / "cache", progress=False)
    assert (report.built, report.broken) == (1, 0)
    cache = FrameCache(tmp_path / "cache", VIDEO)
    assert torch.equal(cache.get(ref, VIDEO).frames, load_media_item(ref, VIDEO).frames)
    stamp = file_stamp(folder)
    Image.fromarray(np.full((32, 48, 3), 255, np.uint8)).save(folder / "frame_6.png")  # a frame added
    assert file_stamp(folder) != stamp
    assert cache.get(ref, VIDEO) is None and cache.counts == Counter(hit=1, stale=1)
    (folder / "frame_6.png").rename(folder / "frame_7.png")  # renamed: same sizes, other listing
    assert file_stamp(folder) not in (stamp, None)
    # --frames_fps keys frame folders only: a video file's key is what it was before the setting existed
    other = VideoConfig(num_frames=4, image_size=64, frames_fps=3)
    assert media_key(ref, other) != media_key(ref, VIDEO)
    video_ref = MediaRef(str(tmp_path / "x.mp4"), "video")
    assert media_key(video_ref, other) == media_key(video_ref, VIDEO) and "frames_fps" not in media_key(video_ref, VIDEO)


def test_media_type_by_name_then_by_disk(tmp_path):
    from fastvlm_video.media.kinds import media_type

    odd = make_folder(tmp_path / "shots.jpg", n=3)  # a folder named like an image
    plain = make_folder(tmp_path / "shots", n=3)
    assert media_type(tmp_path / "clip.MP4") == "video" and media_type(tmp_path / "a.png") == "image"  # by name: no stat
    assert media_type(plain) == "video" and media_type(tmp_path / "missing") == "image"
    ref = MediaRef(str(odd), media_type(odd))
    assert ref.kind == "image" and media_kind(ref) == "video"  # decoding looks at the disk again
    assert load_media_item(ref, VIDEO).frames.shape == (4, 3, 64, 64)
