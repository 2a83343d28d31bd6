"""evaluate's --data with several files: repeated --data adds files, and ids repeated across the files are
refused before the model loads (a cheap check first)."""

from __future__ import annotations

import json

from fastvlm_video.cli import build_parser, load_commands, main


def write_records(path, ids):
    turns = [{"from": "human", "value": "<image>\nWhere?"}, {"from": "gpt", "value": "left"}]
    path.write_text(json.dumps([{"id": i, "image": "left.mp4", "conversations": turns} for i in ids]))
    return str(path)


def test_repeated_data_flags_add_files():
    args = build_parser(load_commands(), only="evaluate").parse_args(
        ["evaluate", "--model", "m", "--out", "o", "--data", "a.json", "--data", "b.json", "c.json"])
    assert args.data == ["a.json", "b.json", "c.json"]


def test_ids_repeated_across_files_are_refused_before_the_model_loads(tmp_path, media_folder, monkeypatch, capsys):
    from fastvlm_video.infer import evaluate

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before the ids were checked")

    monkeypatch.setattr(evaluate.Predictor, "from_pretrained", no_loading)
    val, test = write_records(tmp_path / "val.json", ["a", "b"]), write_records(tmp_path / "test.json", ["b", "c"])
    argv = ["evaluate", "--model", str(tmp_path / "model"), "--data", val, test, "--media_folder", str(media_folder),
            "--out", str(tmp_path / "ev"), "--no_semantic"]  # fmt: skip
    assert main(argv) == 1
    assert "unique sample ids; repeated: ['b']" in capsys.readouterr().err
