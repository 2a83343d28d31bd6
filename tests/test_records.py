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


# --- issue 11: mixed media, JSONL line breaks, list content, NUL bytes -------------------------


def messages(*turns, **media):
    roles = ["user", "assistant"] * len(turns)
    return {"id": "m", "messages": [{"role": r, "content": c} for r, c in zip(roles, turns)], **media}


def paths(sample):
    return [m.path for m in sample.media]


def test_mixed_media_pair_each_placeholder_with_its_own_type():
    """The audit's record: the <video> comes first in the text, so the clip's frames must come first."""
    rec = messages("<video>\nDoes the clip match this photo? <image>", "Yes.", images=["photo.jpg"], videos=["clip_t8.mp4"])
    s = parse_record(rec, "t.jsonl", 0)
    assert paths(s) == ["clip_t8.mp4", "photo.jpg"] and [m.kind for m in s.media] == ["video", "image"]
    assert s.messages[0].content == "<image>\nDoes the clip match this photo? <image>"  # normalised after pairing


def test_mixed_media_across_turns_and_several_of_each():
    rec = messages("<image> and <video>?", "a", "<video> then <image>", "b", images=["i1.jpg", "i2.png"], videos=["v1.mp4", "v2.mkv"])
    assert paths(parse_record(rec, "t", 0)) == ["i1.jpg", "v1.mp4", "v2.mkv", "i2.png"]


def test_llava_image_and_video_keys_pair_by_type_too():
    rec = llava(image="photo.jpg", video="clip.mp4")
    rec["conversations"][0]["value"] = "<video>\nSame as <image>?"
    assert paths(parse_record(rec, "t", 0)) == ["clip.mp4", "photo.jpg"]


def test_untyped_placeholders_take_media_in_listed_order():
    """LLaVA convention: <image> stands for any media (LLaVA-NeXT video data, FastVLM video forks)."""
    rec = llava(video="clip.mp4")  # "<image>\nWhat?" with a video key
    assert paths(parse_record(rec, "t", 0)) == ["clip.mp4"]
    both = llava(image="photo.jpg", video="clip.mp4")
    both["conversations"][0]["value"] = "<image> vs <image>"
    assert paths(parse_record(both, "t", 0)) == ["photo.jpg", "clip.mp4"]  # images first, as listed
    fork = llava(image=["clip.mp4", "photo.jpg"])
    fork["conversations"][0]["value"] = "<video> vs <image>"  # one key: the text's types are not checked
    assert paths(parse_record(fork, "t", 0)) == ["clip.mp4", "photo.jpg"]


def test_mixed_media_without_placeholders_are_prepended_images_first():
    s = parse_record(messages("Compare.", "Same.", images=["a.jpg"], videos=["b.mp4"]), "t", 0)
    assert paths(s) == ["a.jpg", "b.mp4"] and s.messages[0].content == "<image>\n<image>\nCompare."


def test_typed_placeholder_counts_must_match_per_type():
    rec = messages("<video> and <video>", "x", images=["a.jpg"], videos=["b.mp4"])
    with pytest.raises(RecordError, match=r"0 <image> placeholder\(s\) for 1 image\(s\) and 2 <video> placeholder\(s\) for 1 video\(s\)"):
        parse_record(rec, "t", 0)


def test_jsonl_keeps_records_holding_unicode_line_separators(tmp_path):
    """U+2028, U+2029 and U+0085 are legal inside JSON strings; the subset writer leaves them raw."""
    from fastvlm_video.data.records import iter_records
    from fastvlm_video.data.subset import write_records, write_subset

    answers = ["A squat.\u2028Keep the back straight.", "Para\u2029graph", "next\x85line", "plain"]
    records = [llava(id=f"r{i}", image="a.png", conversations=[{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": a}]) for i, a in enumerate(answers)]
    src = tmp_path / "src.jsonl"
    write_records(records, src)
    assert "\u2028" in src.read_text(encoding="utf-8")  # written raw, as the project writes JSONL
    samples, errors = load_samples(src, skip_invalid=True)
    assert not errors and [s.messages[1].content for s in samples] == answers
    out = write_subset([(str(src), 0), (str(src), 2), (str(src), 3)], [str(src)], tmp_path / "kept.jsonl")[0]
    assert [r for _, r in iter_records(out)] == [records[0], records[2], records[3]]
    crlf = tmp_path / "crlf.jsonl"  # Windows line ends still work
    crlf.write_bytes(src.read_bytes().replace(b"\n", b"\r\n"))
    assert read_json_records(crlf) == records


def test_hf_list_content_parts_are_placeholders_of_their_type():
    rec = messages(
        [{"type": "video"}, {"type": "text", "text": "Does it match"}, {"type": "image"}, {"type": "text", "text": "?"}],
        [{"type": "text", "text": "Yes."}],
        images=["photo.jpg"],
        videos=["clip.mp4"],
    )
    s = parse_record(rec, "t", 0)
    assert paths(s) == ["clip.mp4", "photo.jpg"]
    assert s.messages == [Message("user", "<image>\nDoes it match<image>\n?"), Message("assistant", "Yes.")]
    nulls = messages([{"type": "video", "text": None, "image": None}, {"type": "text", "text": "What?", "video": None}], "x", videos=["a.mp4"])
    assert parse_record(nulls, "t", 0).messages[0].content == "<image>\nWhat?"  # datasets' unified schema


def test_hf_list_content_renders_like_the_saved_chat_template():
    """The checkpoint's chat template renders list content; parsing must give the same prompt (no skew)."""
    import jinja2

    from fastvlm_video.data.chat import CHAT_TEMPLATE

    content = [{"type": "text", "text": "Look: "}, {"type": "video"}, {"type": "text", "text": "What moves?"}]
    rec = messages(content, "The square.", videos=["a.mp4"])
    template = jinja2.Environment().from_string(CHAT_TEMPLATE)
    parsed = [{"role": m.role, "content": m.content} for m in parse_record(rec, "t", 0).messages]
    assert template.render(messages=parsed) == template.render(messages=rec["messages"])


@pytest.mark.parametrize(
    "content,reason",
    [
        (["hi"], "turn 0, part 0: a part must be an object"),
        ([{"text": "hi"}], "turn 0, part 0: no 'type'"),
        ([{"type": "audio"}], "turn 0, part 0: unknown part type 'audio'"),
        ([{"type": "text"}], "turn 0, part 0: a text part needs a string 'text'"),
        ([{"type": "text", "text": "q"}, {"type": "video", "path": "x.mp4"}], "turn 0, part 1: .*list the file under 'videos'"),
        ({"type": "text", "text": "q"}, "turn 0: 'content' must be a string or a list of parts, got dict"),
    ],
)
def test_malformed_list_content_is_a_record_error(content, reason):
    with pytest.raises(RecordError, match=reason) as info:
        parse_record(messages(content, "x", videos=["a.mp4"]), "data/t.jsonl", 4)
    assert "data/t.jsonl, record 4" in str(info.value)


@pytest.mark.parametrize("path", ["x\0.mp4", "good.mp4\0../../etc/passwd"])
@pytest.mark.parametrize("outside", [False, True])
def test_nul_byte_in_a_media_path_is_a_record_error(tmp_path, path, outside):
    with pytest.raises(RecordError, match=r"record 1 \(id 'r1'\): media path .* contains a NUL byte"):
        parse_record(llava(video=path), "t.json", 1, tmp_path, allow_outside_media_folder=outside)
    data = tmp_path / "t.json"
    data.write_text(json.dumps([llava(id="ok", image="a.png"), llava(video=path)]))
    samples, errors = load_samples(data, tmp_path, skip_invalid=True)  # --skip_invalid_records drops it
    assert [s.id for s in samples] == ["ok"] and "NUL byte" in errors[0].reason


def test_random_mixed_records_pair_every_placeholder_with_its_type():
    """The audit's random check: any order of typed placeholders, over one or several turns."""
    import random

    rng = random.Random(0)
    for _ in range(300):
        images = [f"i{k}.jpg" for k in range(rng.randint(1, 3))]
        videos = [f"v{k}.mp4" for k in range(rng.randint(1, 3))]
        tokens = ["<image>"] * len(images) + ["<video>"] * len(videos)
        rng.shuffle(tokens)
        cut = rng.randint(0, len(tokens))
        turns = [" ".join(tokens[:cut]) + " Q1", "A1", " ".join(tokens[cut:]) + " Q2", "A2"]
        s = parse_record(messages(*turns, images=images, videos=videos), "t", 0)
        queues = {"<image>": iter(images), "<video>": iter(videos)}
        assert paths(s) == [next(queues[t]) for t in tokens]


def test_mixed_record_puts_the_clips_frames_where_its_placeholder_is(tokenizer, media_folder, tmp_path):
    """End to end (records -> dataset -> ids): the image-token runs follow the text's placeholder order."""
    import torch

    from fastvlm_video.data.chat import ChatEncoder
    from fastvlm_video.data.dataset import ConversationDataset, load_media
    from fastvlm_video.video_config import VideoConfig

    rec = messages("<video>\nDoes the clip match this photo? <image>", "Yes.", images=["still.png"], videos=["left.mp4"])
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps(rec) + "\n")
    video = VideoConfig(num_frames=4, image_size=64)
    samples, _ = load_samples(data, media_folder)
    item = ConversationDataset(samples, ChatEncoder(tokenizer, video.tokens_per_frame), video).build(samples[0])
    is_image = (item["input_ids"] == tokenizer.convert_tokens_to_ids("<image>")).int().tolist()
    runs = [len(r) for r in "".join(map(str, is_image)).split("0") if r]
    assert runs == [4, 1]  # 4 frames x 1 token for the clip, then the photo's 1
    clip, _ = load_media(samples[0].media[0], video)
    assert torch.equal(item["pixel_values"][:4], clip)
