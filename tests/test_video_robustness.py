"""A battery of broken and odd video files: each gives the outcome documented in docs/video.md.

Unreadable input raises ``UnreadableMediaError`` naming the file and the reason; odd but valid
input (rotation, VFR, 10-bit, yuv444, grey, odd sizes, 4K, one frame, a truncated tail, corrupt
packets, no frame count in the container) decodes to the right frames, from both backends.
"""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from fastvlm_video.errors import MediaError, UnreadableMediaError
from fastvlm_video.media.video import load_video_tensor
from fastvlm_video.demo.synthetic import frame_number_of, numbered_frames, write_video

BACKENDS = ["pyav", "decord"]


def encode(path: Path, frames: np.ndarray, *, fps: int = 10, gop: int = 12, pix_fmt: str = "yuv420p", fmt: str | None = None,
           rotation: int = 0, pts: list[int] | None = None, bframes: int = 0, faststart: bool = False) -> Path:  # fmt: skip
    """H.264 with the knobs the battery needs (``write_video`` keeps the common case simple)."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format=fmt, options=options) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt, stream.gop_size = pix_fmt, gop
        stream.options = {"preset": "ultrafast", "crf": "18", "keyint_min": str(gop), "sc_threshold": "0", "bframes": str(bframes)}
        if rotation:
            stream.set_display_rotation(rotation)
        if pts is not None:
            stream.time_base = Fraction(1, fps)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def numbers(clip) -> list[int]:
    """Frame numbers read back from the centre of each (3, S, S) frame."""
    s = clip.frames.shape[-1]
    return [frame_number_of(f.permute(1, 2, 0).numpy()[3 * s // 8 : 5 * s // 8, 3 * s // 8 : 5 * s // 8]) for f in clip.frames]


def cut(path: Path, out: Path, keep: float) -> Path:
    data = path.read_bytes()
    out.write_bytes(data[: int(len(data) * keep)])
    return out


def audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Good clips the broken ones are cut from: 30 numbered frames at 10 fps, keyframe every 12."""
    root = tmp_path_factory.mktemp("battery")
    frames = numbered_frames(30)
    encode(root / "moov_at_end.mp4", frames, bframes=2)
    encode(root / "faststart.mp4", frames, faststart=True)
    encode(root / "stream.mkv", frames)
    return root


# --- unreadable input: one exception type, the file and the reason in the message ------------------

UNREADABLE = {
    "missing": (lambda d, c: d / "missing.mp4", "file not found"),
    "zero-bytes": (lambda d, c: (d / "zero.mp4").write_bytes(b"") and None or d / "zero.mp4", "empty file"),
    "directory": (lambda d, c: (d / "dir.mp4").mkdir() or d / "dir.mp4", "holds no image"),
    "text": (lambda d, c: (d / "text.mp4").write_text("hello, not a video") and d / "text.mp4", "cannot open as a video"),
    "random-bytes": (lambda d, c: (d / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(50_000)) and d / "noise.mp4", "cannot open as a video"),
    "header-only": (lambda d, c: cut(c / "moov_at_end.mp4", d / "header.mp4", 0.02), "cannot open as a video"),
    "truncated-moov-at-end": (lambda d, c: cut(c / "moov_at_end.mp4", d / "trunc.mp4", 0.6), "cannot open as a video"),
    "audio-only": (lambda d, c: audio_only(d / "speech.m4a"), r"no video stream \(streams: audio\)"),
}


@pytest.mark.parametrize("case", list(UNREADABLE))
@pytest.mark.parametrize("backend", BACKENDS)
def test_unreadable_input_raises_one_error_naming_file_and_reason(tmp_path, clips, case, backend):
    make, reason = UNREADABLE[case]
    path = make(tmp_path, clips)
    with pytest.raises(UnreadableMediaError, match=reason) as info:
        load_video_tensor(path, num_frames=4, image_size=64, backend=backend)
    assert str(path) in str(info.value) and info.value.path == str(path)
    assert isinstance(info.value, MediaError)  # what the dataset catches and counts


# --- odd but readable input: the documented frames ---------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_tail_uses_the_last_decodable_frame(tmp_path, clips, backend):
    """moov in front, tail cut off: frames that no longer decode are stood in for by the last one that does."""
    clip = load_video_tensor(cut(clips / "faststart.mp4", tmp_path / "cut.mp4", 0.65), num_frames=4, image_size=64, backend=backend)
    assert numbers(clip) == clip.indices  # every slot shows the frame its index and timestamp claim
    assert clip.indices[-1] < 29 and clip.extra["missing"] >= 1
    assert clip.timestamps == pytest.approx([i / 10 for i in clip.indices])


def test_truncated_matroska_samples_what_is_there(tmp_path, clips):
    """A cut Matroska file indexes only the frames it still holds, so sampling spans those."""
    clip = load_video_tensor(cut(clips / "stream.mkv", tmp_path / "cut.mkv", 0.6), num_frames=4, image_size=64)
    assert clip.num_source_frames < 30 and clip.extra["missing"] == 0
    assert numbers(clip) == clip.indices == np.linspace(0, clip.num_source_frames - 1, 4, dtype=int).tolist()


def test_corrupt_packets_are_skipped_not_fatal(tmp_path, clips, caplog):
    data = bytearray((clips / "moov_at_end.mp4").read_bytes())
    mid = len(data) // 2
    data[mid : mid + 300] = np.random.default_rng(0).bytes(300)
    (tmp_path / "corrupt.mp4").write_bytes(bytes(data))
    clip = load_video_tensor(tmp_path / "corrupt.mp4", num_frames=4, image_size=64)
    assert clip.indices == [0, 9, 19, 29] and clip.frames.shape == (4, 3, 64, 64)
    assert numbers(clip)[0] == 0 and numbers(clip)[-1] == 29  # frames outside the damaged GOP are intact
    assert "corrupt packets" in caplog.text


def test_an_image_with_a_video_name_is_a_one_frame_clip(tmp_path):
    """FFmpeg reads a PNG as a one-frame video: the frame is repeated (as for any clip shorter than N)."""
    Image.fromarray(numbered_frames(6)[5]).save(tmp_path / "still.png")
    shutil.copy(tmp_path / "still.png", tmp_path / "still.mp4")
    clip = load_video_tensor(tmp_path / "still.mp4", num_frames=3, image_size=64)
    assert clip.indices == [0, 0, 0] and numbers(clip) == [5, 5, 5] and clip.num_source_frames == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_frame_video(tmp_path, backend):
    path = write_video(tmp_path / "one.mp4", numbered_frames(1))
    clip = load_video_tensor(path, num_frames=4, image_size=64, backend=backend)
    assert clip.indices == [0, 0, 0, 0] and clip.timestamps == [0.0] * 4 and numbers(clip) == [0] * 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_variable_frame_rate_uses_timestamps(tmp_path, backend):
    """Frame gaps of 1-5 ticks: indices are frames, timestamps are the real presentation times."""
    pts = np.cumsum([0] + [1, 1, 3, 1, 5, 1, 1, 2] * 4)[:30].tolist()
    path = encode(tmp_path / "vfr.mp4", numbered_frames(30), pts=pts)
    clip = load_video_tensor(path, num_frames=4, image_size=64, backend=backend)
    assert numbers(clip) == clip.indices == [0, 9, 19, 29]
    assert clip.timestamps == pytest.approx([pts[i] / 10 for i in clip.indices])
    fps_clip = load_video_tensor(path, image_size=64, frame_sampling="fps", fps=1.0, backend=backend)
    # one frame per second of presentation time, not per 10 frames
    assert fps_clip.timestamps == pytest.approx(list(range(len(fps_clip.timestamps))), abs=0.25)  # gaps <= 0.5 s
    assert len(fps_clip.indices) == int(pts[-1] / 10) + 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_frame_count_in_container(tmp_path, backend):
    """MPEG-TS stores no frame count: the packet index still finds all 30 frames."""
    path = encode(tmp_path / "clip.ts", numbered_frames(30), fmt="mpegts")
    assert av.open(str(path)).streams.video[0].frames == 0
    clip = load_video_tensor(path, num_frames=4, image_size=64, backend=backend)
    assert clip.num_source_frames == 30 and numbers(clip) == clip.indices == [0, 9, 19, 29]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_is_honoured(tmp_path, backend, rotation):
    frames = np.zeros((4, 48, 64, 3), np.uint8)
    frames[:, :16, :16] = 255  # a white block in the top-left corner of the stored picture
    path = encode(tmp_path / "rot.mp4", frames, rotation=rotation)
    clip = load_video_tensor(path, num_frames=1, image_size=None, backend=backend)
    upright = np.rot90(frames[0], k=rotation // 90)  # PyAV's rotation is counter-clockwise
    assert clip.frames.shape[1:3] == upright.shape[:2]
    assert np.abs(clip.frames[0].numpy().astype(int) - upright).mean() < 8


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pix_fmt", ["yuv420p10le", "yuv444p", "gray"])
def test_pixel_formats(tmp_path, backend, pix_fmt):
    path = encode(tmp_path / f"{pix_fmt}.mp4", numbered_frames(30), pix_fmt=pix_fmt)
    clip = load_video_tensor(path, num_frames=4, image_size=64, backend=backend)
    got = numbers(clip)
    if pix_fmt == "gray":  # grey levels pass a studio-range round trip: order kept, values shift a little
        assert got == sorted(got) and got[0] == 0 and abs(got[-1] - 29) <= 3
        assert (clip.frames[:, 0] == clip.frames[:, 1]).all() and (clip.frames[:, 1] == clip.frames[:, 2]).all()
    else:  # 10-bit: the 8 -> 10 -> 8 bit round trip may move a grey level by one step
        assert clip.indices == [0, 9, 19, 29]
        assert np.abs(np.array(got) - clip.indices).max() <= (1 if "10" in pix_fmt else 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_odd_frame_size(tmp_path, backend):
    path = encode(tmp_path / "odd.mp4", numbered_frames(30, width=63, height=47), pix_fmt="yuv444p")
    full = load_video_tensor(path, num_frames=2, image_size=None, backend=backend)
    assert full.frames.shape == (2, 47, 63, 3)
    clip = load_video_tensor(path, num_frames=2, image_size=64, backend=backend)
    assert numbers(clip) == [0, 29]
    # 63x47 -> 64x48 centred: 8 black rows above and below
    assert clip.frames[:, :, :8].max() == 0 and clip.frames[:, :, -8:].max() == 0 and clip.frames[1, :, 8:56].min() > 0


def test_4k_is_resized_inside_the_decoder(tmp_path):
    frames = np.broadcast_to(numbered_frames(21, width=1, height=1)[[10, 20]], (2, 2160, 3840, 3))
    path = encode(tmp_path / "uhd.mp4", np.ascontiguousarray(frames))
    clip = load_video_tensor(path, num_frames=2, image_size=64)
    assert clip.frames.shape == (2, 3, 64, 64) and numbers(clip) == [10, 20]
    assert clip.frames[:, :, 18:46].float().mean() > 0 and clip.frames[:, :, :14].max() == 0  # 36 rows of picture


def test_empty_segment_is_a_media_error(clips):
    with pytest.raises(MediaError, match="no frames between start=50"):
        load_video_tensor(clips / "stream.mkv", num_frames=4, image_size=64, start=50.0, end=60.0)
