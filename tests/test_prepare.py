"""prepare: class folders and tables -> deterministic, stratified, leak-free splits that `train` reads unchanged."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest

from fastvlm_video.cli import main
from fastvlm_video.data.prepare import Item, parse_columns, parse_fractions, prepare, split_items
from fastvlm_video.data.records import load_samples
from fastvlm_video.demo.synthetic import moving_square_frames, write_video
from fastvlm_video.errors import ConfigError

CLASSES = {"squat": 10, "lunge": 10, "plank": 20}


def tiny_clip(path, seed):
    write_video(path, moving_square_frames("left", np.random.default_rng(seed), num_frames=4, size=32, square=8), fps=4, gop=4)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree") / "exercises"
    n = 0
    for name, count in CLASSES.items():
        for i in range(count):
            tiny_clip(root / name / ("sub" if i % 3 == 0 else "") / f"clip_{i:02d}.mp4", n)
            n += 1
    (root / "squat" / "notes.txt").write_text("not media")
    return root


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """12 videos, 2 questions each, 4 subjects; the media folder is beside the table."""
    root = tmp_path_factory.mktemp("table")
    rows = []
    for v in range(12):
        tiny_clip(root / "videos" / f"v{v}.mp4", 100 + v)
        for q in range(2):
            rows.append({"clip": f"v{v}.mp4", "label": ["walk", "run"][v % 2], "subject": f"s{v % 4}", "t0": "0" if q else "", "t1": "0.5" if q else "", "ask": f"Question {q}?"})
    rows.append({"clip": "gone.mp4", "label": "run", "subject": "s0", "t0": "", "t1": "", "ask": "?"})
    path = root / "labels.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_splits(out):
    return {name: json.loads((out / f"{name}.json").read_text()) for name in ("train", "val", "test")}


def test_class_folders_give_deterministic_leak_free_splits(tree, tmp_path, capsys):
    argv = ["prepare", str(tree), "--question", "What exercise is shown?", "--split", "0.8,0.1,0.1", "--seed", "42"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert "squat" in capsys.readouterr().out
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    assert main([*argv[:-1], "7", "--out", str(tmp_path / "c")]) == 0
    a, b, c = (read_splits(tmp_path / x) for x in "abc")
    assert a == b  # same seed, same splits
    assert a != c  # another seed, another deal
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert {label: sum(counts.values()) for label, counts in summary["classes"].items()} == {"lunge": 10, "plank": 20, "squat": 10}
    assert all(summary["counts"].values())  # every split asked for holds items
    media = [{r["video"] for r in split} for split in a.values()]
    assert sum(map(len, media)) == len(set().union(*media)) == 40  # every clip once, none in two splits
    record = a["train"][0]
    assert record["conversations"][0]["value"] == "<image>\nWhat exercise is shown?"
    assert record["conversations"][1]["value"] == record["class"] == record["video"].split("/")[0]
    samples, errors = load_samples([tmp_path / "a" / f"{n}.json" for n in a], tree)
    assert not errors and len(samples) == 40


def test_table_keeps_videos_and_groups_in_one_split_and_train_accepts_it(table, tiny_model_dir, tmp_path):
    from fastvlm_video.train.args import parse_train_args
    from fastvlm_video.train.run import train

    out = tmp_path / "data"
    argv = ["prepare", str(table), "--out", str(out), "--media_folder", str(table.parent / "videos"), "--columns", "media=clip,class=label,group=subject,start=t0,end=t1",
            "--question", "{ask} ({label}?)", "--answer", "{label}", "--split", "0.5,0.25,0.25"]  # fmt: skip
    assert main(argv) == 0
    splits = read_splits(out)
    subjects = [{r["video"][1:].split(".")[0] for r in split} for split in splits.values()]
    by_subject = [{int(v) % 4 for v in s} for s in subjects]
    assert all(not (x & y) for i, x in enumerate(by_subject) for y in by_subject[i + 1 :])  # a subject in one split only
    sizes = [len(s) for s in splits.values()]
    assert sum(sizes) == 24 and all(n and n % 6 == 0 for n in sizes)  # 4 subjects of 6 rows: each split holds whole subjects
    seg = next(r for r in splits["train"] if "start" in r)
    assert (seg["start"], seg["end"]) == (0.0, 0.5) and seg["conversations"][0]["value"].startswith("<image>\nQuestion 1? (")
    summary = json.loads((out / "summary.json").read_text())
    assert [d["media"] for d in summary["dropped"]] == ["gone.mp4"]

    args = parse_train_args([
        "--model_name_or_path", str(tiny_model_dir), "--data_path", str(out / "train.json"),
        "--validation_data_path", str(out / "val.json"), "--image_folder", summary["media_folder"],
        "--num_video_frames", "2", "--image_size", "64", "--output_dir", str(tmp_path / "run"), "--max_steps", "2",
        "--per_device_train_batch_size", "4", "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none",
        "--use_cpu", "--disable_tqdm", "true",
    ])  # fmt: skip
    result = train(*args)
    assert result.invalid_records == 0 and result.skipped == 0


def test_split_is_independent_of_input_order_and_stable_when_items_come_and_go():
    items = [Item(id=f"{c}{i}", media=f"{c}{i}.mp4", question="q", answer=c, label=c, group=f"{c}{i}") for c in "abcdefghij" for i in range(5)]
    base = split_items(items, [0.8, 0.1, 0.1], seed=3)
    shuffled = items[:]
    random.Random(0).shuffle(shuffled)
    assert split_items(shuffled, [0.8, 0.1, 0.1], seed=3) == base
    where = {it.id: name for name, split in base.items() for it in split}
    rng = random.Random(1)
    for trial in range(20):  # add and remove items at random: no item that stays changes split
        kept = rng.sample(items, rng.randint(30, 50))
        added = [Item(id=f"n{trial}-{i}", media=f"n{trial}-{i}.mp4", question="q", answer="a", label="a", group=f"n{trial}-{i}") for i in range(rng.randint(0, 20))]
        again = split_items(kept + added, [0.8, 0.1, 0.1], seed=3)
        assert all(where[it.id] == name for name, split in again.items() for it in split if it.id in where)
        assert all(again.values())


def test_every_split_is_filled_when_there_are_enough_groups_and_refused_when_not():
    def subjects(n):
        return [Item(id=f"s{s}-{i}", media=f"s{s}-{i}.mp4", question="q", answer="a", label="a", group=f"s{s}") for s in range(n) for i in range(8)]

    for seed in range(30):  # 7 subjects, as in the walk (58/0/0 before): val and test are never empty
        splits = split_items(subjects(7), [0.8, 0.1, 0.1], seed)
        assert all(splits.values())
        assert all(len({it.group for it in split}) == len(split) // 8 for split in splits.values())  # whole subjects
    assert all(split_items(subjects(3), [0.8, 0.1, 0.1], 0).values())
    with pytest.raises(ConfigError, match=r"2 groups .* cannot fill 3 splits .*--split 0.8,0.2"):
        split_items(subjects(2), [0.8, 0.1, 0.1], 0)
    with pytest.raises(ConfigError, match=r"1 items cannot fill 3 splits"):
        split_items(subjects(1)[:1], [0.8, 0.1, 0.1], 0)


def test_adding_a_clip_keeps_every_old_item_in_its_split_and_out_is_not_overwritten_silently(tree, tmp_path, capsys):
    import shutil

    grown = tmp_path / "exercises"
    shutil.copytree(tree, grown)
    out = tmp_path / "data"
    assert main(["prepare", str(grown), "--out", str(out)]) == 0
    before = {r["id"]: name for name, split in read_splits(out).items() for r in split}
    assert main(["prepare", str(grown), "--out", str(out)]) == 1
    assert "already holds files" in capsys.readouterr().err and read_splits(out) is not None
    tiny_clip(grown / "lunge" / "clip_new.mp4", 999)
    (grown / "plank" / "clip_04.mp4").unlink()
    assert main(["prepare", str(grown), "--out", str(out), "--overwrite"]) == 0
    assert "39 item(s) kept their split, 0 changed split, 1 new, 1 gone" in capsys.readouterr().out
    after = {r["id"]: name for name, split in read_splits(out).items() for r in split}
    assert {i: after[i] for i in before if i in after} == {i: s for i, s in before.items() if i in after}
    assert set(after) - set(before) == {"lunge/clip_new"} and set(before) - set(after) == {"plank/clip_04"}
    moved = json.loads((out / "summary.json").read_text())["moved"]
    assert moved == {"kept": 39, "moved": [], "new": 1, "gone": 1}
    assert main(["prepare", str(grown), "--out", str(out), "--overwrite", "--split", "0.9,0.1"]) == 0
    assert not (out / "test.json").exists()  # no stale split beside a two-way one


def test_labels_differing_only_by_case_or_spaces_are_one_class(tmp_path, caplog):
    for i in range(6):
        tiny_clip(tmp_path / f"c{i}.mp4", 200 + i)
    labels = ["Up", "up", "UP ", "left", "Left", " up"]
    (tmp_path / "labels.csv").write_text("clip,label\n" + "".join(f"c{i}.mp4,{lab}\n" for i, lab in enumerate(labels)))
    with caplog.at_level("WARNING"):
        summary = prepare(tmp_path / "labels.csv", tmp_path / "out", question="Where?", answer="{label}",
                          columns={"media": "clip", "class": "label"}, fractions=[0.5, 0.5])
    assert sorted(summary["classes"]) == ["Left", "up"]  # the most common spelling; a tie: the first in sorted order
    answers = {r["conversations"][1]["value"] for name in ("train", "val") for r in json.loads((tmp_path / "out" / f"{name}.json").read_text())}
    assert answers == {"Left", "up"}
    assert [r.message for r in caplog.records if "one class" in r.message] == [
        "labels that differ only by case or surrounding spaces are one class: 'Left', 'left' -> 'Left'; ' up', 'UP ', 'Up', 'up' -> 'up'"
    ]


def test_csv_errors_name_the_line_list_every_bad_cell_and_read_times_and_windows_paths(tmp_path):
    tiny_clip(tmp_path / "clips" / "a.mp4", 300)
    rows = ["clip,label,t0,t1", "clips/a.mp4,x,1:02,1:03.5", "clips/a.mp4,x,soon,2", ",x,0,1", "clips\\a.mp4,x,0:00:01,0:00:02"]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(ConfigError) as info:
        prepare(tmp_path / "t.csv", tmp_path / "out", columns={"media": "clip", "start": "t0", "end": "t1"}, question="Q?", answer="{label}")
    message = str(info.value)
    assert "2 bad cell(s)" in message and "t.csv, line 3: start must be seconds" in message and "t.csv, line 4: no media path" in message
    rows[2:4] = []
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    summary = prepare(tmp_path / "t.csv", tmp_path / "out", columns={"media": "clip", "start": "t0", "end": "t1"}, question="Q?", answer="{label}",
                      fractions=[1.0], overwrite=True)
    record = json.loads((tmp_path / "out" / "train.json").read_text())[0]
    assert (record["start"], record["end"]) == (62.0, 63.5)
    assert "backslashes (a Windows path?): write it as clips/a.mp4 (that file exists)" in summary["dropped"][0]["reason"]


def test_bad_options_say_what_is_wrong(table, tmp_path):
    with pytest.raises(ConfigError, match="no column"):
        prepare(table, tmp_path, columns={"media": "nope"})
    with pytest.raises(ConfigError, match=r"labels.csv, line 2: .* uses \{missing\}"):
        prepare(table, tmp_path, columns={"media": "clip"}, question="{missing}")
    with pytest.raises(ConfigError, match="which column holds the media"):
        prepare(table, tmp_path, columns={"answer": "label"})
    with pytest.raises(ConfigError, match="summing to 1"):
        parse_fractions("0.8,0.3")
    with pytest.raises(ConfigError, match="FIELD=COLUMN"):
        parse_columns("media")
