"""Frames at the right indices and timestamps, from both backends; clear errors for bad files."""

import av
import numpy as np
import pytest
import torch
from PIL import Image

from fastvlm_video import MediaError, is_video_file, load_video_frames, load_video_tensor
from fastvlm_video.demo.synthetic import frame_number_of, numbered_frames, write_video
from fastvlm_video.media import pyav_backend
from fastvlm_video.media.transforms import place_on_square, resized_dims
from fastvlm_video.media.video import resolve_backend

BACKENDS = ["pyav", "decord"]


@pytest.fixture(scope="module")
def textured_video(tmp_path_factory):
    """60 frames of smooth random colour (96x64), B-frames, a keyframe every 25: every frame differs."""
    coarse = np.random.default_rng(0).integers(0, 256, size=(60, 8, 12, 3), dtype=np.uint8)
    frames = np.stack([np.asarray(Image.fromarray(c).resize((96, 64), Image.Resampling.BICUBIC)) for c in coarse])
    path = tmp_path_factory.mktemp("textured") / "textured.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt, stream.gop_size = 96, 64, "yuv420p", 25
        stream.options = {"preset": "ultrafast", "crf": "10", "keyint_min": "25", "sc_threshold": "0", "bframes": "2"}
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def smooth_video(tmp_path_factory):
    """10 frames of gently varying colour at 192x128: what a resampler comparison is fair on."""
    coarse = np.random.default_rng(1).integers(0, 256, size=(10, 4, 6, 3), dtype=np.uint8)
    frames = np.stack([np.asarray(Image.fromarray(c).resize((192, 128), Image.Resampling.BICUBIC)) for c in coarse])
    return write_video(tmp_path_factory.mktemp("smooth") / "smooth.mp4", frames, fps=10, gop=5)


def sequential_decode(path, size: int) -> list[torch.Tensor]:
    """Every frame, decoded front to back with no seeking, resized by PyAV's own per-frame path, padded like ours.

    Our backend shares one swscale context per clip; this reference builds one per frame.
    """

    def rgb(frame):
        width, height = resized_dims(frame.width, frame.height, size, "pad")
        return frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="BICUBIC")

    with av.open(str(path)) as container:
        return [place_on_square(rgb(f), size) for f in container.decode(video=0)]


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
    expected = np.linspace(0, 49, 8, dtype=int).tolist()  # the seed's indices
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
    assert clip.indices == [0, 0, 0, 0, 1, 1, 1, 2]  # the seed's linspace(0, 2, 8, dtype=int)
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
    # the seed's frames: linspace(0, 49, 4, dtype=int) = 0, 16, 32, 49 (rounding would give 33)
    assert [frame_number_of(np.asarray(f)) for f in frames] == np.linspace(0, 49, 4, dtype=int).tolist() == [0, 16, 32, 49]


@pytest.mark.parametrize("processor_class", ["CLIPImageProcessor", "CLIPImageProcessorPil"])
def test_matches_transformers_image_processor(smooth_video, processor_class):
    """Our decode-at-size + pad equals LLaVA's expand-to-square + CLIP processor on full-resolution
    frames, up to resampling (swscale's bicubic inside the decoder vs the processor's)."""
    import transformers.models.clip as clip

    full = load_video_frames(smooth_video, num_frames=3)
    ours = load_video_tensor(smooth_video, num_frames=3, image_size=128).frames.float() / 255
    processor = getattr(clip, processor_class)(size={"shortest_edge": 128}, crop_size={"height": 128, "width": 128}, image_mean=[0, 0, 0], image_std=[1, 1, 1])
    squares = []
    for frame in full:
        side = max(frame.size)
        square = Image.new("RGB", (side, side), (0, 0, 0))
        square.paste(frame, ((side - frame.width) // 2, (side - frame.height) // 2))
        squares.append(square)
    theirs = processor(images=squares, return_tensors="pt")["pixel_values"]
    assert ours.shape == theirs.shape
    diff = (ours - theirs).abs()
    assert diff.mean() < 0.015  # measured 0.010 (2.6 of 255 levels)
    assert diff[:, :, 24:104].max() < 0.1  # picture rows; measured 0.067


@pytest.mark.parametrize(
    "make,reason",
    [
        (lambda p: p, "file not found"),
        (lambda p: (p.write_bytes(b""), p)[1], "empty file"),
        (lambda p: (p.write_text("not a video at all"), p)[1], "cannot open"),
        (lambda p: (p.mkdir(), p)[1], r"a folder is read as a video of its frames, but it holds no image .*; it holds nothing"),
    ],
    ids=["missing", "zero-bytes", "text", "empty-frame-folder"],
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


@pytest.mark.parametrize("frame_sampling", ["uniform", "keyframe", "fps"])
def test_frames_equal_a_full_sequential_decode(textured_video, frame_sampling):
    """Seeking lands exactly: PyAV frames are bit-identical to a front-to-back decode at the same
    indices, and so are decord's at the source size; resized, decord's own scaler differs a little."""
    reference = sequential_decode(textured_video, 64)
    assert len(reference) == 60
    kwargs = dict(num_frames=8, frame_sampling=frame_sampling, fps=3.0)
    pyav = load_video_tensor(textured_video, image_size=64, backend="pyav", **kwargs)
    decord = load_video_tensor(textured_video, image_size=64, backend="decord", **kwargs)
    assert pyav.indices == decord.indices and pyav.timestamps == decord.timestamps
    assert len(set(pyav.indices)) == len(pyav.indices) > 1
    for i, a, b in zip(pyav.indices, pyav.frames, decord.frames):
        assert torch.equal(a, reference[i])
        assert (b.int() - a.int()).abs().float().mean() < 5  # bilinear (decord) vs bicubic (swscale)
        neighbour = reference[i + 1 if i < 59 else i - 1]
        assert (a.int() - neighbour.int()).abs().float().mean() > 20  # a wrong frame would show
    native = [load_video_tensor(textured_video, image_size=None, backend=b, **kwargs).frames for b in BACKENDS]
    assert torch.equal(*native)


@pytest.mark.parametrize("frame_sampling", ["uniform", "keyframe"])
def test_one_thread_per_clip_decodes_the_same_frames(textured_video, frame_sampling, monkeypatch):
    """The server decodes each clip in one thread (``decode_one_thread_per_clip``), training and predict
    with FFmpeg's threads: the frames must be bit-identical, or the server would answer other pixels."""
    reference = sequential_decode(textured_video, 64)
    threaded = load_video_tensor(textured_video, num_frames=8, image_size=64, frame_sampling=frame_sampling)
    monkeypatch.setattr(pyav_backend, "_THREAD_TYPE", pyav_backend._THREAD_TYPE)  # restored after the test
    pyav_backend.decode_one_thread_per_clip()
    assert pyav_backend._THREAD_TYPE == "NONE"
    single = load_video_tensor(textured_video, num_frames=8, image_size=64, frame_sampling=frame_sampling)
    assert single.indices == threaded.indices and single.timestamps == threaded.timestamps
    assert torch.equal(single.frames, threaded.frames)
    assert all(torch.equal(frame, reference[i]) for i, frame in zip(single.indices, single.frames))


def test_keyframe_mode_decodes_keyframes_from_their_packets_alone(textured_video, monkeypatch):
    """Keyframe targets never run the sequential decoder (that is what makes the mode fast)."""
    monkeypatch.setattr(pyav_backend._Cursor, "_advance", lambda self, target: pytest.fail("decoded past a keyframe"))
    clip = load_video_tensor(textured_video, num_frames=3, image_size=64, frame_sampling="keyframe")
    assert clip.indices == [0, 25, 50] and clip.fallbacks == 0


def test_one_keyframe_clip_is_decoded_in_one_pass(tmp_path, monkeypatch):
    """With a single keyframe every target lies after the current position: one seek, one pass."""
    path = write_video(tmp_path / "single_key.mp4", numbered_frames(60), fps=10, gop=1000)
    seeks = []
    real_seek = pyav_backend._Cursor._seek
    monkeypatch.setattr(pyav_backend._Cursor, "_seek", lambda self, key: (seeks.append(key), real_seek(self, key)))
    for sampling in ("uniform", "keyframe"):
        seeks.clear()
        clip = load_video_tensor(path, num_frames=8, image_size=64, frame_sampling=sampling)
        assert numbers(clip) == clip.indices == np.linspace(0, 59, 8, dtype=int).tolist()
        assert len(seeks) <= 1
    assert clip.fallbacks == 7  # keyframe mode: frame 0 is the only keyframe, 7 targets decoded exactly


def test_fps_mode_is_capped_by_max_frames(numbered_video):
    clip = load_video_tensor(numbered_video, image_size=64, frame_sampling="fps", fps=5.0, max_frames=6)
    assert len(clip.indices) == 6 and clip.indices[0] == 0 and clip.indices[-1] == 48
    assert numbers(clip) == clip.indices


def test_keyframe_mode_stays_inside_the_segment(numbered_video):
    """Keyframes 0, 12, 24, 36, 48: a 1.5 s - 3.0 s window must not snap back to frame 12."""
    clip = load_video_tensor(numbered_video, num_frames=3, image_size=64, frame_sampling="keyframe", start=1.5, end=3.0)
    assert all(1.5 <= t <= 3.0 for t in clip.timestamps)
    # frames 15..30; targets 15, 22, 30: only 30 has a keyframe (24) at or before it inside the window
    assert clip.indices == [15, 22, 24] and numbers(clip) == clip.indices and clip.fallbacks == 2


def test_auto_backend_is_pyav():
    """Measured faster (docs/performance.md), and always installed."""
    assert resolve_backend("auto") == "pyav"
    with pytest.raises(ValueError):
        resolve_backend("opencv")


@pytest.mark.parametrize("kwargs", [dict(frame_sampling="random"), dict(aspect="stretch"), dict(num_frames=0), dict(fps=0.0), dict(backend="opencv")])
def test_bad_settings_are_value_errors_not_media_errors(numbered_video, kwargs):
    """A settings mistake fails fast as a ``ValueError``, never counted as a broken file."""
    with pytest.raises(ValueError):
        load_video_tensor(numbered_video, image_size=64, **kwargs)
