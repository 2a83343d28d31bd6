"""check: clean data passes; leakage, token lengths, statistics, clean output and time limits."""

from __future__ import annotations

import json
import time

import pytest

from fastvlm_video.cli import main
from fastvlm_video.data.check import run_check
from fastvlm_video.data.parallel import parallel_map
from fastvlm_video.data.settings import chat_encoder
from fastvlm_video.video_config import VideoConfig

VIDEO = VideoConfig(num_frames=2, image_size=64)


def rec(id, media=None, question="What?", answer="left"):
    record = {"id": id, "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]}
    if media:
        record["image"] = media
    return record


@pytest.fixture
def data(tmp_path):
    train = [rec("t0", "left.mp4"), rec("t1", "still.png"), rec("t2"), rec("t3", "left.mp4", question="Again?")]
    val = [rec("v0", "up.MOV"), rec("v1", "left.mp4")]  # v1 leaks a training video
    (tmp_path / "train.json").write_text(json.dumps(train))
    (tmp_path / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in val))
    return tmp_path / "train.json", tmp_path / "val.jsonl"


def test_clean_data_passes_with_statistics(data, media_folder, tmp_path):
    train, _ = data
    report = run_check([train], media_folder, VIDEO, progress=False)
    assert report.ok and len(report.good) == 4 and report.num_records == 4
    media = report.media
    assert (media["videos"], media["images"]) == (1, 1)  # left.mp4 counted once although used twice
    assert media["codec"] == {"h264": 1} and media["fps"]["max"] == 8.0 and media["duration_s"]["max"] == 2.0
    assert media["resolution"] == {"64x64": 1, "60x40": 1}
    assert main(["check", "--data", str(train), "--media_folder", str(media_folder), "--workers", "1", "--report", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["ok"] is True


def test_media_shared_between_files_is_leakage(data, media_folder, tmp_path):
    report = run_check(list(data), media_folder, VIDEO, progress=False)
    assert [(p.kind, p.id) for p in report.errors] == [("leak", "v1")]
    assert "left.mp4 is also used by" in report.errors[0].reason and str(data[0]) in report.errors[0].reason
    out = tmp_path / "clean"
    assert main(["check", "--data", *map(str, data), "--media_folder", str(media_folder), "--workers", "1",
                 "--report", str(tmp_path / "r.json"), "--write_clean", str(out)]) == 1  # fmt: skip
    assert [r["id"] for r in json.loads((out / "train.json").read_text())] == ["t0", "t1", "t2", "t3"]
    assert [json.loads(line)["id"] for line in (out / "val.jsonl").read_text().splitlines()] == ["v0"]


def test_an_empty_data_file_is_an_error(data, media_folder, tmp_path):
    train, _ = data
    (tmp_path / "test.json").write_text("[]\n")  # as prepare wrote an empty split before it refused them
    report = run_check([train, tmp_path / "test.json"], media_folder, VIDEO, progress=False)
    assert [(p.file, p.kind) for p in report.errors] == [(str(tmp_path / "test.json"), "file")]
    assert "holds no records" in report.errors[0].reason and len(report.good) == 4


def test_token_counts_include_visual_tokens_and_list_the_longest(data, media_folder, tiny_model_dir):
    train, _ = data
    encoder = chat_encoder(str(tiny_model_dir), VIDEO)
    long_answer = [rec("long", "left.mp4", answer="word " * 300)]
    train.write_text(json.dumps(json.loads(train.read_text()) + long_answer))
    report = run_check([train], media_folder, VIDEO, encoder=encoder, model_max_length=100, progress=False)
    tokens = report.tokens
    assert tokens["longest"][0]["id"] == "long" and tokens["longest"][0]["visual_tokens"] == 2 * encoder.tokens_per_frame
    video_row = next(r for r in tokens["longest"] if r["id"] == "t0")
    samples = {s.id: s for s in report.good}
    assert video_row["tokens"] == len(encoder.encode(samples["t0"].messages, [2]).input_ids)
    assert report.ok and [w.id for w in report.warnings] == ["long"]  # the answer is cut, the sample still trains
    assert tokens["over_max_length"] == 1 and tokens["max"] > 100


def test_a_file_that_hangs_times_out_and_the_scan_goes_on():
    outcomes = {item: error for item, _, error in parallel_map(_sleepy, [0.0, 5.0], workers=1, timeout=0.3, progress=False)}
    assert outcomes[0.0] is None and "timed out after 0.3 s" in outcomes[5.0]


def test_parallel_map_uses_worker_processes_for_many_items(monkeypatch):
    import os

    monkeypatch.setattr("fastvlm_video.data.parallel.MIN_ITEMS_PER_WORKER", 1)
    outcomes = list(parallel_map(_pid, range(4), workers=2, progress=False))
    assert sorted(item for item, _, _ in outcomes) == [0, 1, 2, 3]
    assert os.getpid() not in {pid for _, pid, _ in outcomes}


def _pid(_) -> int:
    import os

    return os.getpid()


def _sleepy(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@pytest.fixture
def degraded(tmp_path):
    """A clip whose tail is cut off (moov first: 68% of its frames decode) and a JPEG renamed .mp4."""
    import av
    import numpy as np
    from PIL import Image

    from fastvlm_video.demo.synthetic import numbered_frames

    media = tmp_path / "media"
    media.mkdir()
    with av.open(str(media / "whole.mp4"), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.gop_size = 64, 48, 12
        stream.options = {"preset": "ultrafast", "keyint_min": "12", "sc_threshold": "0"}
        for rgb in numbered_frames(30):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")))
        container.mux(stream.encode())
    data = (media / "whole.mp4").read_bytes()
    (media / "partial_copy.mp4").write_bytes(data[: int(len(data) * 0.65)])
    Image.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(media / "photo.mp4", format="JPEG")
    (tmp_path / "data").mkdir()
    train = tmp_path / "data" / "train.json"
    train.write_text(json.dumps([rec("cut", "partial_copy.mp4"), rec("jpeg", "photo.mp4"), rec("fine", "whole.mp4")]))
    return train, media


def test_degraded_media_are_warnings_in_summary_and_report(degraded, tmp_path, monkeypatch, capsys):
    train, media = degraded
    video = VideoConfig(num_frames=4, image_size=64)
    report = run_check([train], media, video, progress=False)
    assert report.ok and len(report.good) == 3  # training uses them: warnings, not errors
    warned = {p.id: p for p in report.warnings}
    assert set(warned) == {"cut", "jpeg"} and {p.kind for p in report.warnings} == {"media_degraded"}
    assert "partial_copy.mp4: frames past #" in warned["cut"].reason and "could not be decoded" in warned["cut"].reason
    assert "photo.mp4: a video with a single frame (codec mjpeg)" in warned["jpeg"].reason
    # the CLI: the summary counts them, the report (next to the data, not in the current folder) lists them
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--data", str(train), "--media_folder", str(media), "--workers", "1", "--num_video_frames", "4",
                 "--image_size", "64", "--no_progress"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "3 good, 0 error(s) in 0 place(s), 2 warning(s)" in out and "[media_degraded]" in out
    assert f"report: {train.parent / 'check_report.json'}" in out and not (tmp_path / "check_report.json").exists()
    saved = json.loads((train.parent / "check_report.json").read_text())
    assert sorted(w["id"] for w in saved["warnings"]) == ["cut", "jpeg"]


def test_training_logs_stand_in_frames_once_per_file_per_run(degraded, tokenizer, caplog):
    """Every epoch decodes the clip again (in a fresh worker process): the trainer logs it once per file per run."""
    import logging
    from dataclasses import replace

    from fastvlm_video.data.chat import ChatEncoder
    from fastvlm_video.data.collate import Collator
    from fastvlm_video.data.dataset import ConversationDataset
    from fastvlm_video.data.records import load_samples
    from fastvlm_video.train.trainer import SkipCounter

    train, media = degraded
    samples, _ = load_samples(train, media)
    video = VideoConfig(num_frames=4, image_size=64)
    again = replace(samples[0], id="cut2", index=9)  # a second sample of the same file
    dataset = ConversationDataset([samples[0], again], ChatEncoder(tokenizer, video.tokens_per_frame), video)
    counter = SkipCounter(len(dataset))
    collate = Collator(tokenizer.pad_token_id)
    with caplog.at_level(logging.WARNING):
        for epoch in range(3):
            batch = collate([dataset[0], dataset[1]])
            counter.update(2, batch["skipped"], batch["truncated"])
    lines = [r.getMessage() for r in caplog.records if "partial_copy.mp4" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("stand-in frames in ") and "could not be decoded" in lines[0]
    assert counter.state()["counts"] == {"stand_in": 1}


def test_animations_and_frame_folders_count_as_videos(tmp_path):
    import numpy as np
    from PIL import Image

    media = tmp_path / "media"
    (media / "frames").mkdir(parents=True)
    frames = [Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)) for i in range(4)]
    frames[0].save(media / "spin.gif", save_all=True, append_images=frames[1:], duration=100)
    for i, frame in enumerate(frames):
        frame.save(media / "frames" / f"{i}.png")
    frames[0].save(media / "still.png")
    train = tmp_path / "train.json"
    train.write_text(json.dumps([rec("gif", "spin.gif"), rec("folder", "frames"), rec("png", "still.png")]))
    report = run_check([train], media, VIDEO, progress=False)
    assert report.ok and (report.media["videos"], report.media["images"]) == (2, 1)
    assert report.media["codec"] == {"gif": 1, "frames": 1}
