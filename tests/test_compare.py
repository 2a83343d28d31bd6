"""``fastvlm-video compare``: metric deltas and disagreeing samples of two evaluations."""

import pytest

from fastvlm_video.cli import main
from fastvlm_video.infer.compare import Evaluation, disagreements, metric_deltas
from fastvlm_video.infer.metrics import exact_match, summarize
from fastvlm_video.infer.predictions import append_rows, write_json

REFS = ["left", "up", "down", "left", "up", "down"]


def write_eval(out, predictions):
    out.mkdir()
    rows = []
    for i, (ref, pred) in enumerate(zip(REFS, predictions)):
        row = {"id": f"s{i}", "question": "<image>\nWhich way?", "reference": ref, "prediction": pred}
        rows.append({**row, "error": "broken"} if pred is None else {**row, "exact_match": exact_match(pred, ref)})
    append_rows(out / "predictions.jsonl", rows)
    write_json(out / "metrics.json", summarize(rows, task="classification"))
    return out


@pytest.fixture
def runs(tmp_path):
    a = write_eval(tmp_path / "a", ["left", "left", "down", "up", "up", None])  # 3 of 5 right
    b = write_eval(tmp_path / "b", ["Left.", "up", "up", "left", "up", "down"])  # 5 of 6 right
    return a, b


def test_deltas_and_verdicts(runs):
    a, b = (Evaluation.load(p) for p in runs)
    deltas = {d.label: d for d in metric_deltas(a.metrics, b.metrics)}
    acc = deltas["Accuracy (exact match)"]
    assert acc.a == pytest.approx(60.0) and acc.delta == pytest.approx(100 * 5 / 6 - 60.0)
    assert deltas["unreadable media"].delta == -1
    assert deltas["accuracy of class 'left'"].delta == pytest.approx(50.0)
    found = {d.id: d.verdict for d in disagreements(a, b)}
    assert found == {"s1": "B fixed", "s3": "B fixed", "s2": "B broke", "s5": "error in A"}  # s0: same once normalised
    assert list(found)[0] == "s2"  # regressions first


def test_compare_command_prints_a_table_and_writes_html(runs, tmp_path, capsys):
    html = tmp_path / "cmp.html"
    assert main(["compare", str(runs[0]), str(runs[1]), "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert "Accuracy (exact match)" in out and "+23.3" in out and "4 of 6 common samples answered differently" in out
    page = html.read_text()
    assert main(["compare", str(runs[0]), str(tmp_path)]) == 1 and "not an evaluate output" in capsys.readouterr().err
    assert page.count('<tr class="fixed">') == 2 and page.count('<tr class="broke">') == 1
