"""Record parsing: LLaVA and messages formats, placeholders, and errors that name file, record and reason."""

import json

import pytest

from fastvlm_video import RecordError
from fastvlm_video.data.records import Message, load_samples, parse_record, read_json_records


def llava(**kw):
    rec = {"id": "r1", "conversations": [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "A cat."}]}
    rec.update(kw)
    return rec


def test_llava_image_key_may_hold_a_video():
    s = parse_record(llava(image="clips/a.MP4"), "train.json", 0, "/media")
    assert [(m.path, m.kind) for m in s.media] == [("/media/clips/a.MP4", "video")]
    assert s.messages == [Message("user", "<image>\nWhat?"), Message("assistant", "A cat.")]


def test_video_key_and_video_placeholder():
    rec = llava(video="a.mp4")
    rec["conversations"][0]["value"] = "<video>\nWhat?"
    s = parse_record(rec, "t.json", 0)
    assert s.media[0].kind == "video" and s.messages[0].content == "<image>\nWhat?"


def test_messages_format_with_images_and_videos():
    rec = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "<image><video>Compare."},
            {"role": "assistant", "content": "Same."},
        ],
        "images": ["a.jpg"],
        "videos": ["b.mkv"],
    }
    s = parse_record(rec, "t.jsonl", 3)
    assert [m.kind for m in s.media] == ["image", "video"]
    assert s.id == "3" and s.messages[0] == Message("system", "Be brief.")


def test_missing_placeholder_is_prepended_to_first_user_turn():
    rec = llava(video="a.mp4")
    rec["conversations"][0]["value"] = "What?"
    assert parse_record(rec, "t", 0).messages[0].content == "<image>\nWhat?"


def test_text_only_and_segment():
    rec = llava(start=1.5, end=3)
    rec["conversations"][0]["value"] = "Hi"
    assert parse_record(rec, "t", 0).media == []
    s = parse_record({**rec, "video": "a.mp4"}, "t", 0)
    assert (s.media[0].start, s.media[0].end) == (1.5, 3)


@pytest.mark.parametrize(
    "record,reason",
    [
        ("just a string", "must be a JSON object"),
        ({"id": "x"}, "no 'conversations'"),
        (llava(conversations=[]), "non-empty list"),
        (llava(conversations=[{"from": "robot", "value": "hi"}, {"from": "gpt", "value": "x"}]), "unknown role 'robot'"),
        (llava(conversations=[{"from": "human", "value": "hi"}]), "no assistant"),
        (llava(conversations=[{"from": "human", "value": "hi"}, {"from": "gpt", "value": "  "}]), "empty"),
        (llava(conversations=[{"from": "human", "value": 3}, {"from": "gpt", "value": "x"}]), "must be a string"),
        (llava(image="a.mp4", conversations=[{"from": "human", "value": "<image><image>"}, {"from": "gpt", "value": "x"}]), "2 media placeholder"),
        (llava(image=["a.mp4", 7]), "path or a list of paths"),
        (llava(image="a.mp4", conversations=[{"from": "human", "value": "q"}, {"from": "gpt", "value": "<image>"}]), "only appear in user"),
        (llava(image="a.mp4", start=5, end=2), "must be after"),
    ],
)
def test_bad_records_name_file_record_and_reason(record, reason):
    with pytest.raises(RecordError, match=reason) as info:
        parse_record(record, "data/train.json", 7)
    assert "data/train.json, record 7" in str(info.value)


def test_jsonl_and_invalid_json_line(tmp_path):
    good = tmp_path / "a.jsonl"
    good.write_text(json.dumps(llava()) + "\n\n" + json.dumps(llava(id="r2")) + "\n")
    assert len(read_json_records(good)) == 2
    bad = tmp_path / "b.jsonl"
    bad.write_text(json.dumps(llava()) + "\n{oops\n")
    with pytest.raises(RecordError, match="line 2"):
        read_json_records(bad)


def test_load_samples_lists_every_invalid_record_or_skips_them(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps([llava(image="a.mp4"), {"id": "bad1"}, llava(id="ok2", image="b.png"), {"id": "bad2"}]))
    with pytest.raises(RecordError, match="2 invalid record") as info:
        load_samples(path)
    assert "bad1" in str(info.value) and "bad2" in str(info.value)
    samples, errors = load_samples([path], skip_invalid=True)
    assert [s.id for s in samples] == ["r1", "ok2"] and len(errors) == 2


def test_media_must_stay_inside_the_media_folder(tmp_path):
    media, outside = tmp_path / "media", tmp_path / "outside"
    media.mkdir(), outside.mkdir()
    (outside / "x.mp4").write_bytes(b"x")
    (media / "link.mp4").symlink_to(outside / "x.mp4")
    for path in ("../outside/x.mp4", str(outside / "x.mp4"), "link.mp4", "sub/../../outside/x.mp4"):
        with pytest.raises(RecordError, match="outside the media folder.*--allow_outside_media_folder"):
            parse_record(llava(video=path), "t.json", 0, media)
        assert parse_record(llava(video=path), "t.json", 0, media, allow_outside_media_folder=True).media
    for path in ("a.mp4", "sub/../a.mp4", str(media / "a.mp4")):  # inside, however spelled (existing or not)
        assert parse_record(llava(video=path), "t.json", 0, media).media


def test_duplicate_explicit_ids_across_files_are_invalid_records(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.jsonl"
    no_id = {"image": "a.png", "conversations": llava()["conversations"]}
    a.write_text(json.dumps([llava(id="x", image="a.png"), llava(id="y", image="a.png"), no_id]))
    b.write_text(json.dumps(llava(id="x", image="a.png")) + "\n" + json.dumps(no_id) + "\n")
    samples, errors = load_samples([a, b], skip_invalid=True)
    assert [s.id for s in samples] == ["x", "y", "2", "1"]  # implicit ids (record indices) may repeat
    assert [(e.source, e.index, e.record_id) for e in errors] == [(str(b), 0, "x")]
    assert f"duplicate id (first seen in {a}, record 0)" in str(errors[0])


def test_a_bad_jsonl_line_costs_one_record_and_names_its_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(llava(id="a", image="a.png")) + "\n\n{oops\n" + json.dumps(llava(id="c", image="c.png")) + "\n")
    samples, errors = load_samples(path, skip_invalid=True)
    assert [s.id for s in samples] == ["a", "c"] and [s.index for s in samples] == [0, 2]
    assert errors[0].index == 1 and "invalid JSON on line 3" in str(errors[0])


def test_non_utf8_names_its_line(tmp_path):
    path = tmp_path / "t.json"
    path.write_bytes(b'[\n{"id": "ok"},\n{"id": "caf\xe9"}\n]')
    with pytest.raises(RecordError, match="not valid UTF-8 at line 3"):
        read_json_records(path)
    samples, errors = load_samples([path, tmp_path / "missing.json"], skip_invalid=True)
    assert not samples and [e.index for e in errors] == [None, None] and "data file not found" in str(errors[1])
