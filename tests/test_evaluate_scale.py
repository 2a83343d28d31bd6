"""Evaluation at scale: batched option scoring and prefetched decoding give batch 1's results.

Float tolerance: a batch pads prompts and answers to a common length, which changes the shapes of the
float32 matrix products and so their summation order; each log-probability then moves by float32
rounding (about 1e-6 here, relative error ~1e-7 per op over a few layers and tokens). 1e-4 is far
above that and far below the gaps that decide a ranking (the random tiny model's options differ by >1e-2).
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from fastvlm_video.data.records import load_samples
from fastvlm_video.infer.benchmarks import class_specs
from fastvlm_video.infer.choices import score_choices, score_choices_batch
from fastvlm_video.infer.evaluate import evaluate
from fastvlm_video.infer.predictor import Predictor
from fastvlm_video.infer.prefetch import batched, prefetch
from fastvlm_video.infer.text_metrics import TextScorer

TOL = 1e-4  # see the module docstring

ANSWERS = {"left": "left", "up": "it goes up", "down": "down, slowly and then it stops"}  # 1 to 8 tokens


def record(sid: str, media: str | None, cls: str, key: str = "video") -> dict:
    question = "<video>\nWhich way?" if media else "Which way?"
    return {"id": sid, **({key: media} if media else {}), "class": cls,
            "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": ANSWERS[cls]}]}  # fmt: skip


@pytest.fixture(scope="module")
def predictor(tiny_model_dir):
    return Predictor.from_pretrained(tiny_model_dir, device="cpu", num_frames=2)


@pytest.fixture(scope="module")
def samples(tmp_path_factory, media_folder):
    records = [
        record("v1", "left.mp4", "left"),
        record("v2", "up.MOV", "up"),
        record("broken", "corrupt.mp4", "left"),
        record("img", "still.png", "down", key="image"),
        record("text", None, "up"),
        record("v3", "up.MOV", "down"),
        record("v4", "left.mp4", "up"),
    ]
    path = tmp_path_factory.mktemp("scale_data") / "test.json"
    path.write_text(json.dumps(records))
    return load_samples(path, media_folder)[0]


def test_batched_option_scores_equal_one_question_at_a_time(predictor, media_folder):
    prompts = [
        predictor.prompt_for(media_folder / "left.mp4", "Which way?"),
        predictor.prompt_for(None, "Say yes"),  # no frames: the batch's frames still line up with their prompts
        predictor.prompt_for(media_folder / "still.png", "What is it?"),
        predictor.prompt_for(media_folder / "up.MOV", "Which way does the square go, and how fast?"),
    ]
    candidates = [["left", "to the right", "A"], ["yes", "no"], ["B"], list(ANSWERS.values())]
    for end in (True, False):
        batch = score_choices_batch(predictor, prompts, candidates, end)
        for prompt, options, got in zip(prompts, candidates, batch):
            alone = score_choices(predictor, prompt, options, end)
            assert got.logprobs == pytest.approx(alone.logprobs, abs=TOL)
            assert got.num_tokens == alone.num_tokens and got.greedy == alone.greedy
            assert got.best() == alone.best() and got.best("mean") == alone.best("mean")


def run(predictor, samples, out, **kwargs) -> tuple[list[dict], dict]:
    metrics = evaluate(predictor, samples, out, max_new_tokens=4, scorer=TextScorer(semantic=False), **kwargs)
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()], metrics


@pytest.mark.parametrize("score", ["generate", "choices"])
def test_batch_of_4_with_prefetch_equals_batch_1_without(predictor, samples, tmp_path, score):
    specs = class_specs(samples)
    one, m1 = run(predictor, samples, tmp_path / "b1", batch_size=1, decode_threads=0, specs=specs, score=score)
    four, m4 = run(predictor, samples, tmp_path / "b4", batch_size=4, decode_threads=2, specs=specs, score=score)
    assert [r["id"] for r in four] == [r["id"] for r in one] == [s.id for s in samples]
    assert [r["prediction"] for r in four] == [r["prediction"] for r in one]  # greedy text / chosen class: identical
    assert [r.get("error") for r in four] == [r.get("error") for r in one] and one[2]["error"]
    if score == "choices":
        for a, b in zip(one, four):
            if "choice_scores" in a:
                assert [v["logprob"] for v in b["choice_scores"].values()] == pytest.approx(
                    [v["logprob"] for v in a["choice_scores"].values()], abs=TOL
                )
    assert (m4["accuracy"], m4["num_scored"]) == (m1["accuracy"], m1["num_scored"])


def test_prefetch_yields_in_order_bounded_and_raises_at_the_items_turn():
    started, lock = [], threading.Lock()

    def work(i: int) -> int:
        with lock:
            started.append(i)
        if i == 7:
            raise ValueError("item 7 is broken")
        time.sleep(0.01 * (i % 3))  # finish out of order
        return i * i

    results = prefetch(work, range(10), workers=3, ahead=4)
    assert [next(results) for _ in range(3)] == [0, 1, 4]
    time.sleep(0.1)
    assert len(started) <= 3 + 4  # never more than `ahead` items beyond what was taken
    assert [next(results) for _ in range(4)] == [9, 16, 25, 36]
    with pytest.raises(ValueError, match="item 7"):
        next(results)
    assert list(prefetch(work, range(5), workers=0)) == [0, 1, 4, 9, 16]
    assert list(batched(range(5), 2)) == [[0, 1], [2, 3], [4]]


def test_closing_early_stops_the_work():
    done = []
    results = prefetch(lambda i: done.append(i) or i, range(1000), workers=1, ahead=2)
    assert next(results) == 0
    results.close()
    assert len(done) <= 4  # the first, the two ahead, at most one more started: the rest never run


def test_several_data_files_give_one_predictions_file_with_sources_and_metrics_per_file(tiny_model_dir, media_folder, tmp_path, capsys):
    from fastvlm_video.cli import main

    files = {"val.json": [record("a1", "left.mp4", "left"), record("a2", "corrupt.mp4", "up")],
             "test.json": [record("b1", "up.MOV", "up"), record("b2", None, "left"), record("b3", "still.png", "up", key="image")]}  # fmt: skip
    for name, records in files.items():
        (tmp_path / name).write_text(json.dumps(records))
    argv = ["evaluate", "--model", str(tiny_model_dir), "--data", str(tmp_path / "val.json"), str(tmp_path / "test.json"),
            "--media_folder", str(media_folder), "--out", str(tmp_path / "out"), "--num_frames", "2", "--max_new_tokens", "3",
            "--device", "cpu", "--no_semantic"]  # fmt: skip
    assert main(argv) == 0
    rows = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert [(r["id"], r["source"]) for r in rows] == [(r["id"], str(tmp_path / name)) for name in files for r in files[name]]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    per_file = metrics["by_source"]
    assert [(m["num_samples"], m["num_errors"]) for m in per_file.values()] == [(2, 1), (3, 0)]
    assert metrics["num_samples"] == 5 and metrics["num_scored"] == 4
    correct = sum(round(m["accuracy"] * m["num_scored"]) for m in per_file.values())
    assert metrics["accuracy"] == pytest.approx(correct / 4)  # overall = all files' questions together
    assert metrics["settings"]["data"] == [str(tmp_path / name) for name in files]
    assert "val.json: Accuracy" in capsys.readouterr().out

    for records in files.values():  # no ids: numbered per file, so they collide -> one clear line
        for r in records:
            del r["id"]
    (tmp_path / "val.json").write_text(json.dumps(files["val.json"]))
    (tmp_path / "test.json").write_text(json.dumps(files["test.json"]))
    assert main([*argv, "--overwrite"]) == 1
    assert "give them ids" in capsys.readouterr().err
