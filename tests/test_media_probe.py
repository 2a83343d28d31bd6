"""The start-up header probe: 0-byte, audio-only, half-uploaded and non-media files fail with their reason,
good videos and images pass, and outcomes are cached by path, size and mtime."""

from __future__ import annotations

import json
import os

import av
import numpy as np
import pytest

from fastvlm_video.data import media_probe
from fastvlm_video.data.media_probe import probe_media
from fastvlm_video.data.preflight import screen_media
from fastvlm_video.data.records import load_samples


def audio_only(path):
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory, media_folder):
    root = tmp_path_factory.mktemp("probe")
    data = (media_folder / "left.mp4").read_bytes()
    (root / "left.mp4").write_bytes(data)
    (root / "still.png").write_bytes((media_folder / "still.png").read_bytes())
    (root / "empty.mp4").write_bytes(b"")
    (root / "half.mp4").write_bytes(data[: data.index(b"moov") - 8])  # the index never arrived
    audio_only(root / "voice.mp4")
    (root / "notes.mp4").write_text("not a video")
    return root


def test_broken_files_fail_the_probe_with_their_reason(files):
    refs = [(files / n, k) for n, k in [("left.mp4", "video"), ("still.png", "image"), ("empty.mp4", "video"),
                                         ("half.mp4", "video"), ("voice.mp4", "video"), ("notes.mp4", "video"),
                                         ("missing.mp4", "video"), ("notes.mp4", "image")]]  # fmt: skip
    from fastvlm_video.data.records import MediaRef

    failures = probe_media([MediaRef(str(p), k) for p, k in refs], cache_path=None)
    reasons = {os.path.basename(p) + ":" + k: r for (p, k), r in failures.items()}
    assert set(reasons) == {"empty.mp4:video", "half.mp4:video", "voice.mp4:video", "notes.mp4:video", "missing.mp4:video", "notes.mp4:image"}
    assert "empty file (0 bytes)" in reasons["empty.mp4:video"]
    assert "no video stream (streams: audio)" in reasons["voice.mp4:video"]
    assert "cannot open as a video" in reasons["half.mp4:video"]
    assert "file not found" in reasons["missing.mp4:video"]
    assert "cannot read image" in reasons["notes.mp4:image"]


def test_outcomes_are_cached_by_path_size_and_mtime(files, tmp_path, monkeypatch):
    from fastvlm_video.data.records import MediaRef

    cache = tmp_path / "probe.json"
    refs = [MediaRef(str(files / "left.mp4"), "video"), MediaRef(str(files / "empty.mp4"), "video")]
    assert set(probe_media(refs, cache_path=cache)) == {(str(files / "empty.mp4"), "video")}
    calls = []
    real = media_probe.probe_file
    monkeypatch.setattr(media_probe, "probe_file", lambda path, kind: calls.append(path) or real(path, kind))
    assert set(probe_media(refs, cache_path=cache)) == {(str(files / "empty.mp4"), "video")}
    assert calls == []  # both from the cache, the failure too
    st = os.stat(files / "left.mp4")
    os.utime(files / "left.mp4", ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    probe_media(refs, cache_path=cache)
    assert calls == [str(files / "left.mp4")]  # touched: probed again
    assert len(json.loads(cache.read_text())) == 2


def test_screen_media_names_the_samples_that_cannot_be_used(files, tmp_path, caplog):
    records = [{"id": n, "video": n, "conversations": [{"from": "human", "value": "<video>\nWhere?"}, {"from": "gpt", "value": "x"}]}
               for n in ("left.mp4", "empty.mp4", "voice.mp4", "half.mp4")]  # fmt: skip
    (tmp_path / "d.json").write_text(json.dumps(records))
    samples, _ = load_samples([tmp_path / "d.json"], files)
    with caplog.at_level("WARNING"):
        usable, unusable = screen_media(samples, "training", probe_cache=None)
    assert [s.id for s in usable] == ["left.mp4"]
    assert [s.where.rsplit("id ", 1)[1] for s in unusable] == ["'empty.mp4')", "'voice.mp4')", "'half.mp4')"]
    assert "3 of 4 training samples have unusable media" in caplog.text
