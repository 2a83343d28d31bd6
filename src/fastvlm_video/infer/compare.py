"""Compare two evaluations of the same data: metric deltas, whether they are beyond noise (paired tests,
``significance``), and the samples where the models disagree."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path

from ..errors import ConfigError
from .metrics import normalize_answer
from .predictions import METRICS, PREDICTIONS, question_text, read_json, read_rows
from .report import HEADLINE
from .significance import PairedTest, paired_tests

COUNTS = [("num_scored", "samples scored", None), ("num_errors", "unreadable media", False)]  # key, label, higher is better


@dataclass
class Evaluation:
    name: str
    metrics: dict
    rows: dict[str, dict]  # by sample id

    @classmethod
    def load(cls, out: str | Path) -> Evaluation:
        out = Path(out)
        if not (out / METRICS).is_file():
            raise ConfigError(f"{out}: no {METRICS} (not an evaluate output folder?)")
        return cls(str(out), read_json(out / METRICS), {r["id"]: r for r in read_rows(out / PREDICTIONS)})


@dataclass
class Delta:
    label: str
    a: float | None
    b: float | None
    fmt: str = "{:.1f}"
    higher_is_better: bool | None = True  # None: neither (a count)

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a


@dataclass
class Disagreement:
    id: str
    question: str
    reference: str
    a: str | None
    b: str | None
    verdict: str  # "B fixed" | "B broke" | "both wrong" | "both right" | "error in A/B"


def metric_deltas(a: dict, b: dict) -> list[Delta]:
    """Headline metrics, counts and per-class accuracy of A and B side by side (percent points where scaled)."""
    deltas = []
    for key, label, scale, fmt in HEADLINE:
        if a.get(key) is not None or b.get(key) is not None:
            deltas.append(Delta(label, *(None if m.get(key) is None else m[key] * scale for m in (a, b)), fmt.replace("%", "")))
    for key, label, better in COUNTS:
        deltas.append(Delta(label, a.get(key), b.get(key), "{:.0f}", better))
    per_a = a.get("classes", {}).get("per_class", {})
    per_b = b.get("classes", {}).get("per_class", {})
    for label in sorted(set(per_a) | set(per_b)):
        acc = [None if label not in p else 100 * p[label]["accuracy"] for p in (per_a, per_b)]
        deltas.append(Delta(f"accuracy of class '{label}'", *acc))
    for key in sorted((set(a.get("by_group", {})) | set(b.get("by_group", {}))) - {"class"}):  # benchmark tasks, categories
        group_a, group_b = a.get("by_group", {}).get(key, {}), b.get("by_group", {}).get(key, {})
        for name in sorted(set(group_a) | set(group_b)):
            acc = [None if g.get(name, {}).get("accuracy") is None else 100 * g[name]["accuracy"] for g in (group_a, group_b)]
            deltas.append(Delta(f"accuracy of {key} '{name}'", *acc))
    return deltas


def _verdict(ra: dict, rb: dict) -> str:
    if ra.get("error") or rb.get("error"):
        return "error in " + "/".join(n for n, r in (("A", ra), ("B", rb)) if r.get("error"))
    right_a, right_b = bool(ra.get("exact_match")), bool(rb.get("exact_match"))
    return {(False, True): "B fixed", (True, False): "B broke", (False, False): "both wrong"}.get((right_a, right_b), "both right")


def _answer_key(row: dict) -> str | None:
    """What a row answered: the chosen option when judged against options, else its normalised text."""
    if "options" in row:
        return row.get("choice")
    return None if row.get("prediction") is None else normalize_answer(row["prediction"])


def disagreements(a: Evaluation, b: Evaluation) -> list[Disagreement]:
    """Samples in both runs whose normalised answers (or readability) differ; changed correctness first."""
    found = []
    for sid, ra in a.rows.items():
        rb = b.rows.get(sid)
        if rb is None:
            continue
        pa, pb = (_answer_key(r) for r in (ra, rb))
        if pa != pb:
            found.append(Disagreement(sid, question_text(ra), ra["reference"], ra.get("prediction"), rb.get("prediction"), _verdict(ra, rb)))
    rank = {"B broke": 0, "B fixed": 1}
    return sorted(found, key=lambda d: rank.get(d.verdict, 2))


def _num(value: float | None, fmt: str, sign: bool = False) -> str:
    if value is None:
        return "—"
    text = fmt.format(value)
    return ("+" + text if value > 0 else text) if sign else text


def _answer(text: str | None) -> str:
    return "(unreadable media)" if text is None else text


def format_table(
    a: Evaluation, b: Evaluation, deltas: list[Delta], found: list[Disagreement], max_rows: int = 20, tests: list[PairedTest] = ()
) -> str:
    """The comparison as plain text for the terminal."""
    width = max(len(d.label) for d in deltas)
    lines = [f"A = {a.name}", f"B = {b.name}", "", f"{'metric':<{width}}  {'A':>8}  {'B':>8}  {'B - A':>8}"]
    for d in deltas:
        lines.append(f"{d.label:<{width}}  {_num(d.a, d.fmt):>8}  {_num(d.b, d.fmt):>8}  {_num(d.delta, d.fmt, True):>8}")
    if tests:
        lines += ["", "paired tests (McNemar exact for accuracy, bootstrap 95% CI for scores):"]
        lines += [f"  {t.describe()}" for t in tests]
    common = len(set(a.rows) & set(b.rows))
    lines += ["", f"{len(found)} of {common} common samples answered differently" + (":" if found else ".")]
    for d in found[:max_rows]:
        lines.append(f"  [{d.verdict}] {d.id}: reference {d.reference!r} | A {_answer(d.a)!r} | B {_answer(d.b)!r}")
    if len(found) > max_rows:
        lines.append(f"  ... and {len(found) - max_rows} more (see the HTML)")
    only = len(set(a.rows) ^ set(b.rows))
    if only:
        lines.append(f"\nnote: {only} sample id(s) appear in only one of the two runs; they are not compared.")
    return "\n".join(lines)


def render_html(a: Evaluation, b: Evaluation, deltas: list[Delta], found: list[Disagreement], tests: list[PairedTest] = ()) -> str:
    """A small self-contained page: the delta table, then the disagreeing samples."""

    def cell(value, fmt, better=None):
        cls = "" if not value or better is None else (" good" if (value > 0) == better else " bad")
        return f'<td class="num{cls}">{escape(_num(value, fmt, sign=True))}</td>'

    metric_rows = "".join(
        f'<tr><td>{escape(d.label)}</td><td class="num">{_num(d.a, d.fmt)}</td><td class="num">{_num(d.b, d.fmt)}</td>'
        f"{cell(d.delta, d.fmt, d.higher_is_better)}</tr>"
        for d in deltas
    )
    sample_rows = "".join(
        f'<tr class="{d.verdict.split()[-1]}"><td>{escape(d.id)}</td><td>{escape(d.verdict)}</td><td>{escape(d.question)}</td>'
        f"<td>{escape(d.reference)}</td><td>{escape(_answer(d.a))}</td><td>{escape(_answer(d.b))}</td></tr>"
        for d in found
    )
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Comparison</title><style>
body{{font-family:system-ui,sans-serif;max-width:1200px;margin:auto;padding:20px;color:#1d2433}}
table{{border-collapse:collapse;margin:10px 0}} th,td{{padding:5px 9px;border-bottom:1px solid #e3e6ee;text-align:left;vertical-align:top}}
th{{background:#eef0f6}} .num{{text-align:right}} .good{{color:#2e7d32;font-weight:600}} .bad{{color:#c62828;font-weight:600}}
tr.fixed{{background:#e8f5e9}} tr.broke{{background:#ffebee}} .note{{color:#5b6478;font-size:12px}}
li.real{{font-weight:600}} li.noise{{color:#5b6478}}
</style></head><body><h1>Comparison</h1><p>A = {escape(a.name)}<br>B = {escape(b.name)}</p>
<table><thead><tr><th>metric</th><th>A</th><th>B</th><th>B − A</th></tr></thead><tbody>{metric_rows}</tbody></table>
<h2>Is the difference real?</h2><ul class="tests">{"".join(f'<li class="{"noise" if t.within_noise else "real"}">{escape(t.describe())}</li>' for t in tests)}</ul>
<p class="note">McNemar's exact test on the samples the two runs judge differently (accuracy); paired bootstrap
95% interval of the mean difference (scores). "within noise": p &ge; 0.05 or the interval contains 0.</p>
<h2>{len(found)} samples answered differently</h2>
<table><thead><tr><th>id</th><th>verdict</th><th>question</th><th>reference</th><th>A</th><th>B</th></tr></thead>
<tbody>{sample_rows}</tbody></table></body></html>
"""


def compare(out_a: str | Path, out_b: str | Path, html: str | Path | None = None, max_rows: int = 20) -> str:
    """Compare two evaluation folders; writes the HTML when ``html`` is set and returns the text table."""
    a, b = Evaluation.load(out_a), Evaluation.load(out_b)
    deltas, found, tests = metric_deltas(a.metrics, b.metrics), disagreements(a, b), paired_tests(a.rows, b.rows)
    if html:
        Path(html).write_text(render_html(a, b, deltas, found, tests), encoding="utf-8")
    return format_table(a, b, deltas, found, max_rows, tests)
