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


def test_class_folders_give_stratified_deterministic_splits(tree, tmp_path, capsys):
    argv = ["prepare", str(tree), "--question", "What exercise is shown?", "--split", "0.8,0.1,0.1", "--seed", "42"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert "squat" in capsys.readouterr().out
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    assert main([*argv[:-1], "7", "--out", str(tmp_path / "c")]) == 0
    a, b, c = (read_splits(tmp_path / x) for x in "abc")
    assert a == b  # same seed, same splits
    assert a != c  # another seed, another deal
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["classes"] == {"lunge": {"train": 8, "val": 1, "test": 1}, "plank": {"train": 16, "val": 2, "test": 2}, "squat": {"train": 8, "val": 1, "test": 1}}
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
    assert [len(s) for s in splits.values()] == [12, 6, 6]
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


def test_split_is_independent_of_input_order_and_fills_val_and_test_from_small_classes():
    items = [Item(id=f"{c}{i}", media=f"{c}{i}.mp4", question="q", answer=c, label=c, group=f"{c}{i}") for c in "abcdefghij" for i in range(5)]
    base = split_items(items, [0.8, 0.1, 0.1], seed=3)
    shuffled = items[:]
    random.Random(0).shuffle(shuffled)
    assert split_items(shuffled, [0.8, 0.1, 0.1], seed=3) == base
    assert [len(s) for s in base.values()] == [40, 5, 5]  # classes of 5 cannot each give 0.5 to val and test
    for label in "abcdefghij":
        per_split = [sum(it.label == label for it in s) for s in base.values()]
        assert per_split[0] == 4 and sorted(per_split[1:]) == [0, 1]
    assert [len(s) for s in split_items(items[:1], [0.8, 0.1, 0.1], seed=3).values()] == [1, 0, 0]


def test_bad_options_say_what_is_wrong(table, tmp_path):
    with pytest.raises(ConfigError, match="no column"):
        prepare(table, tmp_path, columns={"media": "nope"})
    with pytest.raises(ConfigError, match=r"row 0: .* uses \{missing\}"):
        prepare(table, tmp_path, columns={"media": "clip"}, question="{missing}")
    with pytest.raises(ConfigError, match="which column holds the media"):
        prepare(table, tmp_path, columns={"answer": "label"})
    with pytest.raises(ConfigError, match="summing to 1"):
        parse_fractions("0.8,0.3")
    with pytest.raises(ConfigError, match="FIELD=COLUMN"):
        parse_columns("media")
