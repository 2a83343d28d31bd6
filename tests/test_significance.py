"""``compare``'s paired tests: exact McNemar, paired bootstrap, and "within noise" on constructed runs."""

import math

import pytest

from fastvlm_video.cli import main
from fastvlm_video.infer.metrics import summarize
from fastvlm_video.infer.predictions import append_rows, write_json
from fastvlm_video.infer.significance import mcnemar_exact, paired_bootstrap, paired_tests


def binomial_two_sided(k: int, n: int) -> float:
    """Reference: the textbook sum over outcomes no more likely than k (symmetric p = 1/2)."""
    pk = math.comb(n, k)
    return min(1.0, sum(math.comb(n, i) for i in range(n + 1) if math.comb(n, i) <= pk) / 2**n)


@pytest.mark.parametrize(("b", "c"), [(0, 0), (1, 9), (9, 1), (5, 5), (0, 6), (3, 12), (40, 62), (700, 760)])
def test_mcnemar_exact_matches_the_binomial_test(b, c):
    assert mcnemar_exact(b, c) == pytest.approx(binomial_two_sided(min(b, c), b + c), rel=1e-12)


def test_mcnemar_known_values_and_scipy():
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024)
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(4, 4) == 1.0
    stats = pytest.importorskip("scipy.stats", reason="scipy not installed: the reference check above still runs")
    for b, c in [(2, 11), (17, 30), (100, 130)]:
        assert mcnemar_exact(b, c) == pytest.approx(stats.binomtest(min(b, c), b + c, 0.5).pvalue, rel=1e-9)


def test_paired_bootstrap_interval():
    a = [0.5] * 50
    assert paired_bootstrap(a, a) == (0.0, 0.0, 0.0)
    shifted = [x + 0.2 + 0.01 * (i % 3) for i, x in enumerate(a)]
    delta, low, high = paired_bootstrap(a, shifted)
    assert 0.2 < low <= delta <= high < 0.23
    noisy = [0.5 + (0.3 if i % 2 else -0.3) for i in range(50)]
    delta, low, high = paired_bootstrap(a, noisy)
    assert low < 0 < high  # symmetric noise around no change


def write_run(out, right: list[bool], similarity: list[float]):
    out.mkdir()
    rows = [{"id": f"s{i}", "question": "q", "reference": "left", "prediction": "left" if r else "up", "exact_match": r,
             "scores": {"semantic_similarity": s}} for i, (r, s) in enumerate(zip(right, similarity))]  # fmt: skip
    append_rows(out / "predictions.jsonl", rows)
    write_json(out / "metrics.json", summarize(rows, task="classification"))
    return rows


def test_compare_says_within_noise_for_a_small_change_and_not_for_a_large_one(tmp_path, capsys):
    base = [i % 2 == 0 for i in range(40)]  # 20 of 40 right
    rows_a = write_run(tmp_path / "a", base, [0.5] * 40)
    small = list(base)
    small[1] = True  # B fixes one sample
    write_run(tmp_path / "small", small, [0.5 + (0.01 if i % 2 else -0.01) for i in range(40)])
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "small"), "--html", str(tmp_path / "c.html")]) == 0
    out = capsys.readouterr().out
    assert "accuracy: B - A = +0.0250 (p = 1" in out and "within noise" in out
    assert "semantic similarity" in out and "B better" not in out
    assert "within noise" in (tmp_path / "c.html").read_text()

    large = [True] * 38 + base[38:]  # B fixes 19, breaks none
    rows_b = write_run(tmp_path / "large", large, [0.7] * 40)
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "large"), "--html", ""]) == 0
    out = capsys.readouterr().out
    p = mcnemar_exact(0, 19)
    assert f"p = {p:.3g}" in out and "-> B better" in out and "within noise" not in out
    tests = {t.metric: t for t in paired_tests({r["id"]: r for r in rows_a}, {r["id"]: r for r in rows_b})}
    assert tests["accuracy"].p_value == p < 1e-5 and tests["semantic similarity"].low == pytest.approx(0.2)


def test_compare_shows_per_task_accuracy_of_benchmark_runs(tmp_path, capsys):
    for name, right in (("a", [True, False, False, True]), ("b", [True, True, False, True])):
        rows = [{"id": f"s{i}", "question": "q", "reference": "A", "prediction": "A" if r else "B", "exact_match": r,
                 "options": ["x", "y"], "labels": ["A", "B"], "answer_index": 0, "lettered": True, "choice": "A" if r else "B",
                 "groups": {"task": "t1" if i < 2 else "t2"}} for i, r in enumerate(right)]  # fmt: skip
        (tmp_path / name).mkdir()
        append_rows(tmp_path / name / "predictions.jsonl", rows)
        write_json(tmp_path / name / "metrics.json", summarize(rows))
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--html", ""]) == 0
    out = capsys.readouterr().out
    assert "accuracy of task 't1'" in out and "+50.0" in out and "[B fixed] s1" in out
