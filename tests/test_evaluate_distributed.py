"""``torchrun --nproc_per_node 2 -m fastvlm_video evaluate`` (gloo, CPU): the two processes split the
questions and rank 0 merges them into one predictions.jsonl, in the data's order, with the metrics of
a single process; a restart reuses what each rank had already written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CLASSES = {"left": "left", "up": "it goes up"}


def torchrun_evaluate(nproc: int, model, data, media, out, *extra: str) -> tuple[list[dict], dict]:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), "-m", "fastvlm_video",
        "evaluate", "--model", str(model), "--data", str(data), "--media_folder", str(media), "--out", str(out),
        "--num_frames", "2", "--max_new_tokens", "3", "--batch_size", "2", "--device", "cpu", "--no_semantic", *extra,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    return rows, json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    clips = ["left.mp4", "up.MOV", "still.png", "corrupt.mp4", None]
    records = []
    for k in range(7):
        clip, cls = clips[k % len(clips)], list(CLASSES)[k % 2]
        media = {("image" if clip.endswith("png") else "video"): clip} if clip else {}
        question = "<video>\nWhich way?" if clip else "Which way?"
        records.append({"id": f"q{k}", **media, "class": cls,
                        "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": CLASSES[cls]}]})  # fmt: skip
    path = tmp_path_factory.mktemp("dist_data") / "test.json"
    path.write_text(json.dumps(records))
    return path


@pytest.fixture(scope="module")
def single(tmp_path_factory, tiny_model_dir, data, media_folder):
    out = tmp_path_factory.mktemp("one_process")
    return out, *torchrun_evaluate(1, tiny_model_dir, data, media_folder, out)


def test_two_processes_give_the_single_process_predictions_and_metrics(single, tiny_model_dir, data, media_folder, tmp_path):
    _, rows1, metrics1 = single
    rows2, metrics2 = torchrun_evaluate(2, tiny_model_dir, data, media_folder, tmp_path)
    assert [r["id"] for r in rows2] == [f"q{k}" for k in range(7)]  # the data's order, each question once
    assert rows2 == rows1  # every field: prediction, choice, scores, error, frames
    assert metrics2 == metrics1
    assert sorted(p.name for p in tmp_path.glob("predictions*")) == ["predictions.jsonl"]  # part files merged away


def test_a_restart_reuses_each_ranks_part_file(single, tiny_model_dir, data, media_folder, tmp_path):
    out1, rows1, metrics1 = single
    (tmp_path / "settings.json").write_text((out1 / "settings.json").read_text())
    kept = {**rows1[1], "prediction": "KEPT"}  # rank 1 had answered q1 when the run stopped
    (tmp_path / "predictions.rank1.jsonl").write_text(json.dumps(kept) + "\n")
    (tmp_path / "predictions.rank0.jsonl").write_text(json.dumps(rows1[0]) + "\n" + json.dumps(rows1[2])[:40])  # + a torn line
    rows, metrics = torchrun_evaluate(2, tiny_model_dir, data, media_folder, tmp_path, "--resume")
    assert [r["id"] for r in rows] == [f"q{k}" for k in range(7)]
    assert rows[1]["prediction"] == "KEPT"  # reused, not answered again
    assert [r for k, r in enumerate(rows) if k != 1] == [r for k, r in enumerate(rows1) if k != 1]
    assert metrics["num_samples"] == 7 and not list(tmp_path.glob("predictions.rank*"))


def test_one_process_resumes_what_two_left(single, tiny_model_dir, data, media_folder, tmp_path):
    out1, rows1, metrics1 = single
    (tmp_path / "settings.json").write_text((out1 / "settings.json").read_text())
    (tmp_path / "predictions.rank1.jsonl").write_text(json.dumps(rows1[3]) + "\n")
    with pytest.raises(AssertionError, match="--resume"):  # left-over part files are results too: never clobbered
        torchrun_evaluate(1, tiny_model_dir, data, media_folder, tmp_path)
    rows, metrics = torchrun_evaluate(1, tiny_model_dir, data, media_folder, tmp_path, "--resume")
    assert rows == rows1 and metrics == metrics1 and not list(tmp_path.glob("predictions.rank*"))
