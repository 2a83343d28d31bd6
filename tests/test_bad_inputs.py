"""The bad-input battery: `check` names every broken record and file (and no good one), and
training on the same data skips exactly those and finishes."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest

from fastvlm_video.cli import main
from fastvlm_video.data.check import run_check
from fastvlm_video.data.settings import chat_encoder
from fastvlm_video.demo.synthetic import moving_square_frames, write_video
from fastvlm_video.train.args import parse_train_args
from fastvlm_video.train.run import train
from fastvlm_video.video_config import VideoConfig

MAX_LENGTH = 200


def convo(question="<image>\nWhat moves?", answer="left"):
    return [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]


def rec(id, media=None, key="video", **extra):
    record = {"id": id, "conversations": convo() if media else convo("Say hi", "hi")}
    if media is not None:
        record[key] = media
    return {**record, **extra}


GOOD = [
    rec("good-video", "clips/left.mp4"),
    rec("good-mov", "clips/up.MOV", key="image"),
    rec("good-image", "still.png", key="image"),
    rec("good-text"),
    rec("good-segment", "clips/left.mp4", start=0.5, end=1.5),
    {"id": "good-messages", "videos": ["clips/up.MOV"], "messages": [{"role": "user", "content": "<video>Which way?"}, {"role": "assistant", "content": "up"}]},
    {"id": "good-parts", "videos": ["clips/up.MOV"], "messages": [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Which way?"}]}, {"role": "assistant", "content": "up"}]},
    {"id": "good-mixed", "images": ["still.png"], "videos": ["clips/left.mp4"], "messages": [{"role": "user", "content": "<video>\nLike <image>?"}, {"role": "assistant", "content": "no"}]},
]

# (id, record, reason expected in the report): the broken records of train.json
BAD_RECORDS = [
    ("no-conversation", {"id": "no-conversation", "video": "clips/left.mp4"}, "no 'conversations'"),
    ("turns-not-a-list", {"id": "turns-not-a-list", "conversations": "hello"}, "non-empty list"),
    ("turn-missing-value", {"id": "turn-missing-value", "conversations": [{"from": "human"}, {"from": "gpt", "value": "x"}]}, "must be an object with"),
    ("unknown-role", {"id": "unknown-role", "conversations": [{"from": "robot", "value": "hi"}, {"from": "gpt", "value": "x"}]}, "unknown role"),
    ("no-assistant", {"id": "no-assistant", "conversations": [{"from": "human", "value": "hi"}]}, "no assistant"),
    ("empty-answer", {"id": "empty-answer", "conversations": convo("hi", "   ")}, "empty"),
    ("text-not-string", {"id": "text-not-string", "conversations": convo("hi", 42)}, "must be a string"),
    ("placeholder-mismatch", rec("placeholder-mismatch", "clips/left.mp4", conversations=convo("<image><image>Q")), "2 media placeholder"),
    ("placeholder-in-answer", rec("placeholder-in-answer", "clips/left.mp4", conversations=convo("Q", "<video>")), "only appear in user"),
    ("media-wrong-type", rec("media-wrong-type", 17), "path or a list of paths"),
    ("segment-inverted", rec("segment-inverted", "clips/left.mp4", start=2, end=1), "must be after"),
    ("system-not-first", {"id": "system-not-first", "conversations": [*convo("hi", "x"), {"from": "system", "value": "s"}]}, "system message"),
    ("escapes-dotdot", rec("escapes-dotdot", "../outside/clip.mp4"), "outside the media folder"),
    ("escapes-absolute", None, "outside the media folder"),  # filled in with an absolute path
    ("escapes-symlink", rec("escapes-symlink", "clips/link_out.mp4"), "outside the media folder"),
    ("good-video", rec("good-video", "clips/up.MOV"), "duplicate id"),
    ("media-missing", rec("media-missing", "clips/nope.mp4"), "file not found"),
    ("zero-byte", rec("zero-byte", "clips/empty.mp4"), "0 bytes"),
    ("truncated", rec("truncated", "clips/truncated.mp4"), "cannot open"),
    ("not-a-video", rec("not-a-video", "clips/text.mp4"), "cannot open"),
    ("audio-only", rec("audio-only", "clips/audio.mp4"), "no video stream"),
    ("corrupt-image", rec("corrupt-image", "broken.png", key="image"), "cannot read image"),
    ("media-is-a-folder", rec("media-is-a-folder", "clips", key="image"), "a folder is read as a video of its frames, but it holds no image"),
    ("segment-past-end", rec("segment-past-end", "clips/left.mp4", start=50, end=60), "no frames between"),
    ("too-long", rec("too-long", "clips/left.mp4", conversations=convo("<image>\n" + "very long question " * 200, "left")), "do not fit"),
    ("nul-in-path", rec("nul-in-path", "clips/left.mp4\0../../etc/passwd"), "contains a NUL byte"),
    ("name-too-long", rec("name-too-long", "clips/" + "a" * 300 + ".mp4"), "File name too long"),
    ("image-name-too-long", rec("image-name-too-long", "b" * 300 + ".png", key="image"), "File name too long"),
]
NOT_AN_OBJECT = ("not-an-object", "just a string", "must be a JSON object")


def write_audio_only(path):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    """media/ with good and broken files, and four data files: mostly bad records, a few good ones."""
    from PIL import Image

    root = tmp_path_factory.mktemp("battery")
    media, clips, outside = root / "media", root / "media" / "clips", root / "outside"
    rng = np.random.default_rng(0)
    write_video(clips / "left.mp4", moving_square_frames("left", rng), fps=8, gop=8)
    write_video(clips / "up.MOV", moving_square_frames("up", rng), fps=8, gop=8)
    write_video(clips / "right.mp4", moving_square_frames("right", rng), fps=8, gop=8)
    write_video(outside / "clip.mp4", moving_square_frames("down", rng), fps=8, gop=8)
    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(media / "still.png")
    (clips / "empty.mp4").write_bytes(b"")
    good_bytes = (clips / "left.mp4").read_bytes()
    (clips / "truncated.mp4").write_bytes(good_bytes[: len(good_bytes) // 2])  # moov atom lost
    (clips / "text.mp4").write_text("this is not a video\n")
    write_audio_only(clips / "audio.mp4")
    (media / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    os.symlink(outside / "clip.mp4", clips / "link_out.mp4")

    bad = {rid: (record, reason) for rid, record, reason in BAD_RECORDS}
    bad["escapes-absolute"] = (rec("escapes-absolute", str(outside / "clip.mp4")), "outside the media folder")
    records = [*GOOD[:3], NOT_AN_OBJECT[1], *[r for r, _ in bad.values()], *GOOD[3:]]
    expected = {("train.json", 3): NOT_AN_OBJECT[2]}
    for i, record in enumerate(records):
        if isinstance(record, dict) and record["id"] in bad and i >= 3:
            expected[("train.json", i)] = bad[record["id"]][1]
    (root / "train.json").write_text(json.dumps(records, indent=1))

    jsonl = [json.dumps(rec("jsonl-good", "clips/right.mp4")), "{not json", json.dumps(rec("jsonl-good-2"))]
    (root / "more.jsonl").write_text("\n".join(jsonl) + "\n")
    expected[("more.jsonl", 1)] = "invalid JSON on line 2"
    (root / "latin1.json").write_bytes('[{"id": "caf\u00e9"}]'.encode("latin-1"))
    expected[("latin1.json", None)] = "not valid UTF-8 at line 1"
    (root / "broken_list.json").write_text('[\n  {"id": "a"},\n  {"id": "b",,}\n]')
    expected[("broken_list.json", None)] = "invalid JSON at line 3"
    files = [str(root / n) for n in ("train.json", "more.jsonl", "latin1.json", "broken_list.json")]
    return root, media, files, {(str(root / f), i): r for (f, i), r in expected.items()}


@pytest.fixture(scope="module")
def checked(battery, tiny_model_dir):
    root, media, files, _ = battery
    video = VideoConfig(num_frames=2, image_size=64)
    return run_check(files, media, video, encoder=chat_encoder(str(tiny_model_dir), video), model_max_length=MAX_LENGTH, workers=1, progress=False)


def test_battery_has_at_least_twenty_kinds(battery):
    assert len(battery[3]) >= 20


def test_check_names_every_bad_item_with_file_record_and_reason(checked, battery):
    expected = battery[3]
    found = {(p.file, p.record): p.reason for p in checked.errors}
    assert set(found) == set(expected), {k: v for k, v in found.items() if k not in expected}  # every bad item, no good one
    for key, reason in expected.items():
        assert reason in found[key], (key, found[key])
    assert sorted(s.id for s in checked.good) == sorted([r["id"] for r in GOOD] + ["jsonl-good", "jsonl-good-2"])


def test_check_command_exits_1_on_the_battery_and_writes_the_report(battery, tmp_path, capsys):
    root, media, files, expected = battery
    report = tmp_path / "report.json"
    code = main(["check", "--data", *files, "--media_folder", str(media), "--num_video_frames", "2", "--image_size", "64",
                 "--workers", "2", "--report", str(report), "--write_clean", str(tmp_path / "clean")])  # fmt: skip
    assert code == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "train.json, record 3" in out
    saved = json.loads(report.read_text())
    assert saved["ok"] is False and len(saved["errors"]) == len(expected) - 1  # no tokenizer: too-long not flagged
    clean = [str(tmp_path / "clean" / "train.json"), str(tmp_path / "clean" / "more.jsonl")]
    assert main(["check", "--data", *clean, "--media_folder", str(media), "--workers", "1", "--report", str(report)]) == 0


def test_training_skips_exactly_what_check_flags_and_finishes(battery, checked, tiny_model_dir, tmp_path, caplog):
    root, media, files, _ = battery
    out = tmp_path / "run"
    argv = [
        "--model_name_or_path", str(tiny_model_dir), "--data_path", *files, "--image_folder", str(media),
        "--num_video_frames", "2", "--image_size", "64", "--model_max_length", str(MAX_LENGTH),
        "--skip_invalid_records", "--max_skip_fraction", "0.95", "--output_dir", str(out),
        "--per_device_train_batch_size", "4", "--num_train_epochs", "1", "--eval_strategy", "no", "--save_strategy", "no",
        "--report_to", "none", "--use_cpu", "--seed", "0", "--disable_tqdm", "true",
    ]  # fmt: skip
    with caplog.at_level(logging.WARNING):
        result = train(*parse_train_args(argv))
    dropped = {r.getMessage().removeprefix("dropped invalid record: ") for r in caplog.records if r.getMessage().startswith("dropped invalid record")}
    skipped = {s["where"] for s in json.loads((out / "skipped_samples.json").read_text())["samples"]}
    static = {str(p) for p in checked.errors if p.kind in ("file", "record")}
    runtime = {_where(p) for p in checked.errors if p.kind in ("media", "too_long")}
    assert dropped == static and result.invalid_records == len(static)
    assert skipped == runtime
    assert (out / "model.safetensors").is_file()


def _where(problem) -> str:
    return f"{problem.file}, record {problem.record} (id {problem.id!r})"
