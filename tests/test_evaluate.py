"""``fastvlm-video evaluate`` on a tiny random model: the three files, broken media, interrupt + resume."""

import json

import pytest

from fastvlm_video.cli import main
from fastvlm_video.data.records import Message, Sample
from fastvlm_video.errors import MediaError
from fastvlm_video.infer.evaluate import predict_samples
from fastvlm_video.infer.metrics import exact_match
from fastvlm_video.infer.predictor import Predictor

FILES = ("predictions.jsonl", "metrics.json", "report.html")


def record(sid, media, answer, key="video"):
    question = "<video>\nWhich way?" if media else "Which way?"
    return {"id": sid, **({key: media} if media else {}), "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]}


@pytest.fixture(scope="module")
def test_file(tmp_path_factory):
    records = [
        record("v1", "left.mp4", "left"),
        record("v2", "up.MOV", "up"),
        record("broken", "corrupt.mp4", "left"),
        record("img", "still.png", "still", key="image"),
        record("text", None, "hi"),
    ]
    path = tmp_path_factory.mktemp("eval_data") / "test.json"
    path.write_text(json.dumps(records))
    return path


def cli(model, data, media, out, *extra):
    argv = ["evaluate", "--model", str(model), "--data", str(data), "--media_folder", str(media), "--out", str(out),
            "--num_frames", "2", "--max_new_tokens", "3", "--batch_size", "2", "--device", "cpu", "--no_semantic", *extra]  # fmt: skip
    return main(argv)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, tiny_model_dir, test_file, media_folder):
    out = tmp_path_factory.mktemp("eval_full")
    assert cli(tiny_model_dir, test_file, media_folder, out) == 0
    return out


def read(out):
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def test_evaluate_writes_the_three_files_and_metrics_match_the_rows(full_run):
    assert all((full_run / name).is_file() for name in FILES)
    rows = read(full_run)
    metrics = json.loads((full_run / "metrics.json").read_text())
    assert [r["id"] for r in rows] == ["v1", "v2", "broken", "img", "text"]
    scored = [r for r in rows if not r.get("error")]
    assert metrics["accuracy"] == sum(exact_match(r["prediction"], r["reference"]) for r in scored) / len(scored)
    v1 = rows[0]
    assert v1["timestamps"] == [[0.0, pytest.approx(v1["timestamps"][0][1])]] and len(v1["timestamps"][0]) == 2
    assert (full_run / "frames" / v1["frames"]).is_file() and {"bleu", "rougeL"} <= set(v1["scores"])
    assert rows[3]["timestamps"] == [None] and "frames" not in rows[4]


def test_broken_media_is_recorded_counted_and_not_scored(full_run):
    broken = read(full_run)[2]
    assert broken["prediction"] is None and "corrupt.mp4" in broken["error"] and "scores" not in broken
    metrics = json.loads((full_run / "metrics.json").read_text())
    assert (metrics["num_samples"], metrics["num_scored"], metrics["num_errors"]) == (5, 4, 1)
    assert metrics["errors"][0]["id"] == "broken"


def test_interrupted_run_resumes_to_the_same_files_without_regenerating(full_run, tiny_model_dir, test_file, media_folder, tmp_path, monkeypatch):
    generate, calls = Predictor.generate, []

    def interrupted(self, prompts, **kwargs):
        if len(calls) == 1:
            raise KeyboardInterrupt  # Ctrl-C during the second batch
        calls.append(len(prompts))
        return generate(self, prompts, **kwargs)

    monkeypatch.setattr(Predictor, "generate", interrupted)
    assert cli(tiny_model_dir, test_file, media_folder, tmp_path) == 130  # Ctrl-C: one line, exit 130 (cli.main)
    assert [r["id"] for r in read(tmp_path)] == ["v1", "v2"] and not (tmp_path / "metrics.json").exists()

    def counted(self, prompts, **kwargs):
        calls.append(len(prompts))
        return generate(self, prompts, **kwargs)

    calls.clear()
    monkeypatch.setattr(Predictor, "generate", counted)
    assert cli(tiny_model_dir, test_file, media_folder, tmp_path, "--resume") == 0
    assert calls == [1, 1]  # [broken, img] then [text]: v1 and v2 were not generated again
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (full_run / name).read_bytes(), name


def test_existing_results_are_never_clobbered_or_mixed(full_run, tiny_model_dir, test_file, media_folder):
    assert cli(tiny_model_dir, test_file, media_folder, full_run) == 1  # neither --resume nor --overwrite
    assert cli(tiny_model_dir, test_file, media_folder, full_run, "--resume", "--max_new_tokens", "5") == 1


class FakePredictor:
    """Answers with the reference; media named 'bad' fails to load."""

    def prepare(self, messages, media):
        if any("bad" in m.path for m in media):
            raise MediaError(media[0].path, "cannot open")
        return type("P", (), {"timestamps": [], "pixel_values": None, "answer": messages[-1].content})()

    def generate(self, prompts, max_new_tokens):
        return [p.answer for p in prompts]


def test_predict_samples_keeps_the_demo_contract():
    from fastvlm_video.data.records import MediaRef

    samples = [
        Sample("a", [Message("user", "left"), Message("assistant", "left")]),
        Sample("b", [Message("user", "<image>\nx"), Message("assistant", "x")], [MediaRef("bad.mp4", "video")]),
    ]
    rows = list(predict_samples(FakePredictor(), samples, batch_size=16, max_new_tokens=4))
    assert [(r["id"], r.get("exact_match"), bool(r.get("error"))) for r in rows] == [("a", True, False), ("b", None, True)]
