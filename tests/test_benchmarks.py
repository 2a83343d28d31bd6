"""Multiple-choice benchmarks (MVBench / Video-MME / TempCompass layouts), answer-letter extraction and
likelihood scoring of choices, on synthetic clips and the tiny random model."""

import json

import numpy as np
import pytest
import torch

from fastvlm_video.cli import main
from fastvlm_video.data.records import Message
from fastvlm_video.demo.synthetic import moving_square_frames, write_video
from fastvlm_video.errors import RecordError
from fastvlm_video.infer.benchmarks import class_specs, is_benchmark, load_benchmark
from fastvlm_video.infer.choices import ChoiceSpec, candidate_ids, extract_choice, score_choices
from fastvlm_video.infer.predictor import Predictor

DIRECTIONS = ["left", "right", "up", "down"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """One folder with clips and the three benchmarks' annotation files, as published (field names)."""
    root = tmp_path_factory.mktemp("bench")
    rng = np.random.default_rng(1)
    for d in ("left", "up"):
        write_video(root / "videos" / f"{d}.mp4", moving_square_frames(d, rng, num_frames=12), fps=8, gop=8)
    mv = root / "mvbench_json"
    mv.mkdir()
    (mv / "moving_direction.json").write_text(json.dumps([
        {"video": "left.mp4", "question": "Which way does the square move?", "candidates": DIRECTIONS, "answer": "left"},
        {"video": "up.mp4", "question": "Which way does the square move?", "candidates": DIRECTIONS, "answer": "up",
         "start": 0.25, "end": 1.25},
    ]))  # fmt: skip
    (mv / "object_existence.json").write_text(json.dumps([
        {"video": "up.mp4", "question": "Is there a square?", "candidates": ["yes", "no"], "answer": "yes"},
    ]))  # fmt: skip
    options = ["A. left", "B. right", "C. up", "D. down"]
    vmme = [
        {"video_id": "001", "duration": "short", "domain": "Knowledge", "sub_category": "Astronomy", "url": "",
         "videoID": vid, "question_id": f"001-{i}", "task_type": task, "question": "Where does it go?",
         "options": options, "answer": answer}
        for i, (vid, task, answer) in enumerate([("left", "Spatial Perception", "A"), ("up", "Spatial Perception", "C"),
                                                  ("up", "Counting Problem", "B")])
    ]  # fmt: skip
    (root / "videomme.jsonl").write_text("\n".join(json.dumps(r) for r in vmme) + "\n")
    tc = [
        {"video_id": "left", "question": "Which direction is the square moving?\nA. up\nB. left\nC. right", "answer": "B. left",
         "dim": "direction"},
        {"video_id": "up", "question": "How fast does it move?\nA. slowly\nB. fast", "answer": "A. slowly", "dim": "speed"},
    ]  # fmt: skip
    (root / "tempcompass.json").write_text(json.dumps(tc))
    nested = {"left": {"direction": [{"question": tc[0]["question"], "answer": tc[0]["answer"]}]}}
    (root / "tempcompass_original.json").write_text(json.dumps(nested))
    return root


def test_each_published_layout_reads_into_prompts_and_answers(bench):
    samples, specs = load_benchmark(bench / "mvbench_json", bench / "videos")
    assert [s.id for s in samples] == ["moving_direction/0", "moving_direction/1", "object_existence/0"]
    first = samples[0]
    assert first.messages[0].content == (
        "<image>\nQuestion:Which way does the square move?\nOption:\n(A) left\n(B) right\n(C) up\n(D) down\n"
        "Only give the best option.\n"
    )
    assert first.messages[1].content == "A" and specs[first.id].answer == 0 and specs[first.id].groups == {"task": "moving_direction"}
    # moving_direction is not one of MVBench's bounded tasks: its start/end are not applied (as MVBench does)
    assert (samples[1].media[0].start, samples[1].media[0].end) == (None, None)

    samples, specs = load_benchmark(bench / "videomme.jsonl", bench / "videos")
    assert samples[1].messages[0].content.endswith(
        "Where does it go?\nA. left\nB. right\nC. up\nD. down\n\nAnswer with the option's letter from the given choices directly.")
    assert samples[1].messages[0].content.startswith("<image>\nSelect the best answer to the following multiple-choice question")
    assert specs["001-1"].options == ["left", "right", "up", "down"] and specs["001-1"].answer == 2
    assert specs["001-2"].groups == {"task": "Counting Problem", "category": "Knowledge", "duration": "short", "sub_category": "Astronomy"}
    assert samples[0].media[0].path.endswith("videos/left.mp4")

    samples, specs = load_benchmark(bench / "tempcompass.json", bench / "videos")
    assert samples[0].messages[0].content.endswith("C. right\nPlease directly give the best option:")
    assert specs[samples[0].id].options == ["up", "left", "right"] and specs[samples[0].id].answer == 1
    nested, nested_specs = load_benchmark(bench / "tempcompass_original.json", bench / "videos")
    assert nested[0].messages == samples[0].messages and nested_specs[nested[0].id].answer == 1
    assert all(is_benchmark(p) for p in (bench / "mvbench_json", bench / "videomme.jsonl", bench / "tempcompass.json"))


def test_mvbench_videos_are_found_in_their_task_source_folders(tmp_path):
    video = tmp_path / "video"
    for folder in ("star/Charades_v1_480", "star/Charades_segment", "clevrer/video_validation"):
        (video / folder).mkdir(parents=True)
    (video / "star/Charades_v1_480/full.mp4").write_bytes(b"x")
    (video / "star/Charades_segment/cut.mp4").write_bytes(b"x")
    (video / "clevrer/video_validation/c.mp4").write_bytes(b"x")
    (tmp_path / "json").mkdir()
    bounded = {"question": "q", "candidates": ["a", "b"], "answer": "a", "start": 1.0, "end": 3.5}
    (tmp_path / "json" / "action_sequence.json").write_text(json.dumps([{**bounded, "video": "full.mp4"}, {**bounded, "video": "cut.mp4"}]))
    (tmp_path / "json" / "moving_count.json").write_text(json.dumps([{**bounded, "video": "c.mp4"}]))
    samples, _ = load_benchmark(tmp_path / "json", video)
    refs = {s.id: s.media[0] for s in samples}
    assert refs["action_sequence/0"].path == str(video / "star/Charades_v1_480/full.mp4") and refs["action_sequence/0"].start == 1.0
    assert refs["action_sequence/1"].path == str(video / "star/Charades_segment/cut.mp4") and refs["action_sequence/1"].start is None
    assert refs["moving_count/0"].path == str(video / "clevrer/video_validation/c.mp4")
    (tmp_path / "json" / "moving_count.json").write_text(json.dumps([{**bounded, "video": "../../secret.mp4"}]))
    with pytest.raises(RecordError, match="outside the media folder"):
        load_benchmark(tmp_path / "json", video)


def test_bad_benchmark_records_are_named(tmp_path):
    other = tmp_path / "plain.json"
    other.write_text(json.dumps([{"foo": 1}]))
    with pytest.raises(RecordError, match="pass --format"):
        load_benchmark(other, tmp_path)


SPEC = ChoiceSpec(["a man walks", "a dog runs", "nothing happens", "it rains"], answer=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("B", 1), ("B.", 1), ("(B)", 1), ("[B]", 1), ("B) a dog runs", 1), ("B. a dog runs", 1), ("B: dog", 1),
        ("The best answer is C.", 2), ("Answer: (D) it rains", 3), ("best option: A", 0), ("  c  ", 2), ("(c)", 2),
        ("Both A and B are wrong, the answer is C", 2), ("the answer is a dog", None),
        ("A man walks", 0),  # the article is not the letter A; the text names option A
        ("A dog runs.", 1),  # the article again: the text names option B
        ("a dog runs", 1), ("I think it is (C).", 2), ("I think C is right", 2), ("E", None), ("", None),
        (None, None), ("none of these", None), ("A or B", None), ("B\n", 1),
    ],
)  # fmt: skip
def test_answer_letter_extraction_rule(text, expected):
    assert extract_choice(text, SPEC) == expected


def test_class_labels_are_matched_by_text_not_letters():
    spec = ChoiceSpec(["left", "up"], answer=0, lettered=False)
    assert extract_choice("Left.", spec) == 0 and extract_choice("It moves up", spec) == 1 and extract_choice("A", spec) is None


@pytest.fixture(scope="module")
def predictor(tiny_model_dir):
    return Predictor.from_pretrained(tiny_model_dir, device="cpu", num_frames=2)


def brute_force_logprob(predictor, prompt, candidate: str, end: bool = True, greedy: list | None = None) -> float:
    """Token by token: one full forward (frames included) per answer token, log-softmax of the last position."""
    ids, start = candidate_ids(predictor, prompt.input_ids.tolist(), candidate, end)
    pixel_values = predictor._inputs([prompt]).get("pixel_values")
    total, top = 0.0, []
    with torch.no_grad():
        for t in range(start, len(ids)):
            kwargs = {} if pixel_values is None else {"pixel_values": pixel_values}
            logits = predictor.model(input_ids=torch.tensor([ids[:t]]), **kwargs).logits[0, -1].double()
            total += float(torch.log_softmax(logits, -1)[ids[t]])
            top.append(int(logits.argmax()) == ids[t])
    if greedy is not None:
        greedy.append(all(top))
    return total


def test_choice_scores_equal_a_brute_force_log_likelihood(predictor, bench):
    prompt = predictor.prompt_for(bench / "videos" / "left.mp4", "Which way?")
    candidates = ["left", "to the right", "A"]
    scores = score_choices(predictor, prompt, candidates)
    brute = [brute_force_logprob(predictor, prompt, c) for c in candidates]
    assert scores.logprobs == pytest.approx(brute, abs=1e-4)
    assert scores.best("sum") == int(np.argmax(brute))
    assert scores.best("mean") == int(np.argmax([b / n for b, n in zip(brute, scores.num_tokens)]))
    # the scored tokens are exactly the ones training learns for that answer (its labels)
    full = predictor.encoder.encode([Message("user", "<image>\nWhich way?"), Message("assistant", candidates[1])], [2])
    ids, start = candidate_ids(predictor, prompt.input_ids.tolist(), candidates[1])
    assert full.input_ids[: len(ids)] == ids and [t for t in full.labels if t != -100] == ids[start:]


def test_text_only_prompts_score_too(predictor):
    prompt = predictor.prompt_for(None, "Say yes")
    scores = score_choices(predictor, prompt, ["yes", "no"])
    assert scores.logprobs == pytest.approx([brute_force_logprob(predictor, prompt, c) for c in ("yes", "no")], abs=1e-4)
    greedy = []  # as a bare continuation (lmms-eval's loglikelihood): no <|im_end|>, plus "would greedy give it"
    greedy_text = predictor.generate([prompt], max_new_tokens=2)[0]
    candidates = ["yes", greedy_text] if greedy_text else ["yes"]
    bare = score_choices(predictor, prompt, candidates, end=False)
    assert bare.logprobs == pytest.approx([brute_force_logprob(predictor, prompt, c, False, greedy) for c in candidates], abs=1e-4)
    assert bare.greedy == greedy and bare.num_tokens[0] == len(predictor.encoder.text_ids("yes"))


def run_eval(model, data, media, out, *extra):
    argv = ["evaluate", "--model", str(model), "--data", str(data), "--media_folder", str(media), "--out", str(out),
            "--num_frames", "2", "--max_new_tokens", "4", "--batch_size", "2", "--device", "cpu", "--no_semantic", *extra]  # fmt: skip
    assert main(argv) == 0
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    return rows, json.loads((out / "metrics.json").read_text()), (out / "report.html").read_text()


@pytest.mark.parametrize("data", ["mvbench_json", "videomme.jsonl", "tempcompass.json"])
def test_benchmarks_evaluate_end_to_end_with_per_task_accuracy(tiny_model_dir, bench, tmp_path, data, capsys):
    rows, metrics, html = run_eval(tiny_model_dir, bench / data, bench / "videos", tmp_path / "gen")
    assert metrics["task"] == "multiple_choice" and metrics["num_scored"] == len(rows)
    for row in rows:
        spec = ChoiceSpec(row["options"], row["answer_index"])
        index = extract_choice(row["prediction"], spec)
        assert row["choice"] == (None if index is None else "ABCD"[index])
        assert row["exact_match"] == (index == row["answer_index"])
    assert metrics["accuracy"] == sum(r["exact_match"] for r in rows) / len(rows)
    tasks = metrics["by_group"]["task"]
    for name, g in tasks.items():
        mine = [r for r in rows if r["groups"]["task"] == name]
        assert (g["num"], g["correct"]) == (len(mine), sum(r["exact_match"] for r in mine))
    assert metrics["task_mean_accuracy"] == pytest.approx(sum(g["accuracy"] for g in tasks.values()) / len(tasks))
    assert "Accuracy by task" in html and all(f'data-class="{name}"' in html for name in tasks)
    assert "accuracy by task:" in capsys.readouterr().out
    if data != "mvbench_json":
        return
    rows, metrics, html = run_eval(tiny_model_dir, bench / data, bench / "videos", tmp_path / "ll", "--score", "choices")
    for row in rows:  # the prediction is the best-scored letter; every letter's score is stored
        scores = {label: v["score"] for label, v in row["choice_scores"].items()}
        assert list(scores) == list("ABCD")[: len(row["options"])] and row["choice"] == max(scores, key=scores.get)
    assert metrics["settings"]["score"] == "choices" and metrics["num_unparsed"] == 0


def test_records_with_a_class_are_a_label_set_for_task_auto(tiny_model_dir, bench, tmp_path):
    records = [
        {"id": f"{d}{i}", "video": f"{d}.mp4", "class": d,
         "conversations": [{"from": "human", "value": "<image>\nWhich way?"}, {"from": "gpt", "value": f"it goes {d}"}]}
        for d in ("left", "up") for i in range(2)
    ]  # fmt: skip
    data = tmp_path / "test.json"
    data.write_text(json.dumps(records))
    from fastvlm_video.data.records import load_samples

    samples, _ = load_samples(data, bench / "videos")
    specs = class_specs(samples)
    assert specs["up1"].options == ["it goes left", "it goes up"] and specs["up1"].answer == 1
    assert specs["up1"].groups == {"class": "up"}
    rows, metrics, html = run_eval(tiny_model_dir, data, bench / "videos", tmp_path / "out", "--score", "choices")
    assert metrics["task"] == "classification" and set(metrics["by_group"]["class"]) == {"left", "up"}
    assert all(r["prediction"] in ("it goes left", "it goes up") and len(r["choice_scores"]) == 2 for r in rows)
    assert metrics["accuracy"] == sum(r["exact_match"] for r in rows) / 4


def test_score_choices_without_candidates_is_a_clear_error(tiny_model_dir, tmp_path, bench):
    data = tmp_path / "plain.json"
    data.write_text(json.dumps([{"id": "x", "video": "left.mp4", "conversations": [
        {"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "a square"}]}]))  # fmt: skip
    argv = ["evaluate", "--model", str(tiny_model_dir), "--data", str(data), "--media_folder", str(bench / "videos"),
            "--out", str(tmp_path / "o"), "--device", "cpu", "--no_semantic", "--score", "choices"]  # fmt: skip
    assert main(argv) == 1


def test_label_metrics_use_the_judged_class_of_generated_text():
    from fastvlm_video.infer.choices import judge
    from fastvlm_video.infer.metrics import summarize

    spec = {"left": ChoiceSpec(["left", "up"], 0, lettered=False, groups={"class": "left"}),
            "up": ChoiceSpec(["left", "up"], 1, lettered=False, groups={"class": "up"})}  # fmt: skip
    texts = [("left", "It moves left."), ("left", "up"), ("up", "Up, clearly"), ("up", "no idea")]
    rows = [judge({"id": str(i), "reference": ref, "prediction": text}, spec[ref]) for i, (ref, text) in enumerate(texts)]
    assert [r["choice"] for r in rows] == ["left", "up", "up", None]
    metrics = summarize(rows, task="auto")
    assert metrics["task"] == "classification" and metrics["accuracy"] == 0.5 and metrics["num_unparsed"] == 1
    per_class = metrics["classes"]["per_class"]
    assert per_class["left"]["correct"] == 1 and per_class["up"]["correct"] == 1
    assert metrics["by_group"]["class"]["up"] == {"accuracy": 0.5, "correct": 1, "num": 2, "unscored": 0}
