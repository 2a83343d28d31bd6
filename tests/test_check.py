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
