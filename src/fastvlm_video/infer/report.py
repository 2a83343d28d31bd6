"""``report.html``: one self-contained page (inline CSS and JS, images as data URIs) that shows how good
a model is and where it fails: headline metrics, per-class table and confusion matrix, training curves
when the model directory has ``trainer_state.json``, then one row per sample with the frames the model
saw, question, reference, prediction and scores, coloured by score, filterable and sortable.
"""

from __future__ import annotations

import base64
import logging
from html import escape
from pathlib import Path
from string import Template

from .metrics import OTHER, normalize_answer
from .plots import confusion_matrix_figure, figure_png, find_trainer_state, overview_figure, read_training_log
from .predictions import FRAMES, METRICS, PREDICTIONS, REPORT, question_text, read_json, read_rows
from .thumbnails import data_uri

logger = logging.getLogger(__name__)

HEADLINE = [  # metrics.json key, label, scale (x100 -> %), format
    ("accuracy", "Accuracy (exact match)", 100, "{:.1f}%"),
    ("task_mean_accuracy", "Mean of task accuracies", 100, "{:.1f}%"),
    ("macro_f1", "Macro-F1", 100, "{:.1f}"),
    ("bleu", "BLEU", 1, "{:.1f}"),
    ("rougeL", "ROUGE-L", 100, "{:.1f}"),
    ("meteor", "METEOR", 100, "{:.1f}"),
    ("semantic_similarity", "Semantic similarity", 1, "{:.3f}"),
]
LABEL_METRICS = ("accuracy", "task_mean_accuracy", "macro_f1")  # what the page leads with when answers are labels
SCORE_LABELS = {"bleu": "BLEU", "rougeL": "ROUGE-L", "meteor": "METEOR", "semantic_similarity": "sim"}


def sample_score(row: dict, task: str) -> float | None:
    """The one number a row is coloured and sorted by: exact match for labels, else similarity / ROUGE-L."""
    if row.get("error") or row.get("unscored"):
        return None
    scores = row.get("scores", {})
    if task == "open":
        for key in ("semantic_similarity", "rougeL"):
            if key in scores:
                return max(0.0, min(1.0, scores[key]))
    return float(bool(row.get("exact_match")))


def _png(fig) -> str:
    return "data:image/png;base64," + base64.b64encode(figure_png(fig)).decode()


def headline_metrics(metrics: dict) -> list[tuple[str, str, str]]:
    """(key, label, formatted value) of the metrics worth leading with: for label answers, accuracy and macro-F1."""
    labels_only = metrics.get("task") in ("classification", "multiple_choice")
    return [
        (key, label, fmt.format(metrics[key] * scale))
        for key, label, scale, fmt in HEADLINE
        if metrics.get(key) is not None and (key in LABEL_METRICS or not labels_only)
    ]


def _headline(metrics: dict) -> str:
    cards = []
    for key, label, value in headline_metrics(metrics):
        extra = ""
        if key == "accuracy":
            extra = f"<small>{round(metrics['accuracy'] * metrics['num_scored'])} of {metrics['num_scored']}</small>"
        covers = metrics.get("task_mean_covers")
        if key == "task_mean_accuracy" and covers:
            bad = "bad" if covers["missing"] else ""
            extra = f'<small class="{bad}">over {covers["tasks"]} of {covers["of"]} tasks</small>'

        cards.append(f'<div class="card"><b>{value}</b><span>{label}</span>{extra}</div>')
    errors = metrics.get("num_errors", 0)
    others = metrics.get("num_unscored", errors) - errors
    more = f"<small class='bad'>{others} not scored for another reason</small>" if others else ""
    cards.append(
        f'<div class="card"><b>{metrics["num_samples"]}</b><span>samples</span>'
        f'<small class="{"bad" if errors else ""}">{errors} with unreadable media (not scored)</small>{more}</div>'
    )
    return '<div class="cards">' + "".join(cards) + "</div>"


def _class_section(metrics: dict) -> str:
    classes = metrics.get("classes")
    if not classes:
        return ""
    rows = []
    for label, c in classes["per_class"].items():
        pct = 100 * c["accuracy"]
        rows.append(
            f'<tr><td><a href="#samples" data-class="{escape(label)}" class="classlink">{escape(label)}</a></td>'
            f'<td class="num">{c["support"]}</td><td class="num">{c["correct"]}</td>'
            f'<td><div class="bar"><i style="width:{pct:.1f}%;background:{_colour(c["accuracy"])}"></i><span>{pct:.1f}%</span></div></td>'
            f'<td class="num">{c["precision"]:.3f}</td><td class="num">{c["f1"]:.3f}</td></tr>'
        )
    cm = classes["confusion_matrix"]
    picture = _png(confusion_matrix_figure(cm["rows"], cm["columns"], cm["counts"]))
    note = f"<p class='note'>Predictions outside the answer set are counted as {escape(OTHER)}.</p>" if OTHER in cm["columns"] else ""
    return f"""
<section><h2>Per class</h2><div class="two">
<table class="classes"><thead><tr><th>class</th><th>n</th><th>correct</th><th>accuracy (recall)</th><th>precision</th><th>F1</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<figure><img class="cm" alt="confusion matrix" src="{picture}"><figcaption>Confusion matrix (rows: reference, columns: prediction)</figcaption>{note}</figure>
</div></section>"""


def _bar(score: float) -> str:
    pct = 100 * score
    return f'<div class="bar"><i style="width:{pct:.1f}%;background:{_colour(score)}"></i><span>{pct:.1f}%</span></div>'


def _group_section(metrics: dict) -> str:
    """Accuracy per task (and per category, duration, ...) of multiple-choice / label rows."""
    tables = []
    for key, groups in metrics.get("by_group", {}).items():
        rows = "".join(
            f'<tr><td><a href="#samples" data-class="{escape(name)}" class="classlink">{escape(name)}</a></td>'
            f'<td class="num">{g["num"]}</td><td class="num">{g["correct"]}</td>'
            f'<td>{"—" if g["accuracy"] is None else _bar(g["accuracy"])}</td>{_unscored_cell(g)}</tr>'
            for name, g in groups.items()
        )
        tables.append(f'<table class="classes groups" data-key="{escape(key)}"><thead><tr><th>{escape(key)}</th><th>scored</th>'
                      f"<th>correct</th><th>accuracy</th><th>not scored (why)</th></tr></thead><tbody>{rows}</tbody></table>")  # fmt: skip
    if not tables:
        return ""
    unparsed = metrics.get("num_unparsed", 0)
    note = f"<p class='note'>{unparsed} answer(s) named no option: counted wrong.</p>" if unparsed else ""
    covers = metrics.get("task_mean_covers")
    if covers and covers["missing"]:
        note += (f"<p class='note bad'>The mean of task accuracies covers {covers['tasks']} of {covers['of']} tasks: "
                 f"{escape(', '.join(covers['missing']))} had no scored question.</p>")  # fmt: skip
    problems = metrics.get("problems", [])
    if problems:
        note += f"<p class='note'>{len(problems)} question(s) whose answer is not among their options: scored wrong.</p>"
    return f'<section><h2>Accuracy by {escape(" / ".join(metrics["by_group"]))}</h2><div class="two">{"".join(tables)}</div>{note}</section>'


def _unscored_cell(group: dict) -> str:
    n = group.get("unscored", 0)
    if not n:
        return '<td class="num">0</td>'
    why = "; ".join(f"{count} × {reason}" for reason, count in group.get("unscored_reasons", {}).items())
    return f'<td class="num bad" title="{escape(why)}">{n}<div class="why">{escape(why)}</div></td>'


def _row_group(row: dict) -> str:
    """The name a sample row is filtered by: its task (benchmarks) or class."""
    groups = row.get("groups") or {}
    return groups.get("task") or groups.get("class") or ""


def _training_section(model_dir: str | None) -> str:
    state = find_trainer_state(model_dir) if model_dir and Path(model_dir).is_dir() else None
    if state is None:
        return ""
    try:
        picture = _png(overview_figure(read_training_log(state)))
    except (ValueError, KeyError) as exc:  # a malformed state file must not sink the report
        logger.warning("%s: cannot plot training curves (%s)", state, exc)
        return ""
    return f'<section><h2>Training</h2><img class="curves" alt="training curves" src="{picture}"><p class="note">From {escape(str(state))}</p></section>'


def _colour(score: float | None) -> str:
    return "#9e9e9e" if score is None else f"hsl({120 * score:.0f}, 60%, 42%)"


def _frame_labels(timestamps: list | None) -> list[str]:
    labels = []
    for item in timestamps or []:
        labels += [f"{t:.2f} s" for t in item] if item else ["image"]
    return labels


def _strip(row: dict, frames_dir: Path) -> str:
    """The sampled frames with their timestamps (or why there are none)."""
    if row.get("error"):
        return f'<div class="strip none">media error:<br>{escape(row["error"])}</div>'
    path = frames_dir / row["frames"] if row.get("frames") else None
    if path is None or not path.is_file():
        return '<div class="strip none">no frames' + (" (text only)" if not row.get("media") else "") + "</div>"
    labels = _frame_labels(row.get("timestamps"))
    caption = "".join(f"<span>{escape(label)}</span>" for label in labels)
    n = max(1, len(labels))
    return (
        f'<div class="strip" style="--n:{n}" title="click to enlarge"><img alt="frames" src="{data_uri(path)}">'
        f'<div class="ts">{caption}</div></div>'
    )


def _scores(row: dict, task: str) -> str:
    if row.get("error"):
        return "—"
    if row.get("unscored"):
        return f'<span class="muted">not scored: {escape(row["unscored"])}</span>'
    if "options" in row:  # judged against a closed answer set
        mark = '<b class="ok">✓ right</b>' if row.get("exact_match") else '<b class="no">✗ wrong</b>'
        chose = "unparsed" if row.get("choice") is None else f"chose {escape(str(row['choice']))}"
        scores = [f"{escape(str(label))} {v['score']:.2f}" for label, v in (row.get("choice_scores") or {}).items()]
        return "<br>".join([mark, chose, *scores])
    if row.get("exact_match"):
        mark = '<b class="ok">✓ exact</b>'
    else:  # for free text, not matching word for word is the norm, not an alarm
        mark = '<b class="no">✗ wrong</b>' if task == "classification" else '<span class="muted">not exact</span>'
    if task == "classification":
        return mark
    parts = [mark] + [
        f"{SCORE_LABELS[k]} {v:.2f}" if k != "bleu" else f"BLEU {v:.1f}"
        for k, v in row.get("scores", {}).items()
        if k in SCORE_LABELS
    ]
    return "<br>".join(parts)


def _sample_rows(rows: list[dict], task: str, frames_dir: Path) -> str:
    out = []
    for i, row in enumerate(rows):
        score = sample_score(row, task)
        error = bool(row.get("error"))
        cls = _row_group(row) or (normalize_answer(row["reference"]) if task == "classification" else "")
        question = question_text(row)
        prediction = "" if row.get("prediction") is None else row["prediction"]
        out.append(
            f'<tr class="sample" data-i="{i}" data-id="{escape(row["id"])}" data-class="{escape(cls)}" '
            f'data-correct="{int(bool(row.get("exact_match")))}" data-error="{int(error)}" '
            f'data-score="{"" if score is None else f"{score:.4f}"}" style="--c:{_colour(score)}">'
            f'<td class="idx">{i + 1}<div class="sid">{escape(row["id"])}</div></td>'
            f"<td>{_strip(row, frames_dir)}</td><td>{escape(question)}</td><td>{escape(row['reference'])}</td>"
            f'<td class="pred">{escape(prediction)}</td><td class="scores">{_scores(row, task)}</td></tr>'
        )
    return "\n".join(out)


def _settings(metrics: dict) -> str:
    items = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in metrics.get("settings", {}).items())
    return f"<details><summary>Settings</summary><table class='kv'>{items}</table></details>" if items else ""


def render_report(rows: list[dict], metrics: dict, frames_dir: Path, title: str = "Evaluation report") -> str:
    """The whole page as a string."""
    task = metrics.get("task", "open")
    notes = list(metrics.get("notes", []))
    if task == "classification":
        notes.append("Answers are labels: the page leads with accuracy; BLEU, ROUGE-L and similarity are in metrics.json.")
    elif task == "multiple_choice":
        how = "ranked by log-likelihood" if metrics.get("settings", {}).get("score") == "choices" else "read from the answer by the letter rule"
        notes.append(f"Multiple choice: a sample is right when the chosen option ({how}) is the right one.")
    notes = "".join(f"<li>{escape(n)}</li>" for n in notes)
    by_group = metrics.get("by_group", {})
    classes = list((by_group.get("task") or by_group.get("class") or {}).keys()) or metrics.get("classes", {}).get("labels", [])
    class_options = "".join(f'<option value="{escape(c)}">{escape(c)}</option>' for c in classes)
    return PAGE.substitute(
        title=escape(title),
        subtitle=escape(" · ".join(f"{k}: {metrics['settings'][k]}" for k in ("model", "data") if k in metrics.get("settings", {}))),
        headline=_headline(metrics),
        notes=f"<ul class='notes'>{notes}</ul>" if notes else "",
        classes=_group_section(metrics) + _class_section(metrics),
        training=_training_section(metrics.get("settings", {}).get("model")),
        settings=_settings(metrics),
        class_filter=f'<label>{"task" if "task" in by_group else "class"} <select id="cls"><option value="">all</option>{class_options}</select></label>' if classes else "",
        total=len(rows),
        rows=_sample_rows(rows, task, frames_dir),
        style=STYLE,
        script=SCRIPT,
    )


def write_report(out: str | Path, rows: list[dict] | None = None, metrics: dict | None = None, title: str = "Evaluation report") -> Path:
    """Write ``out/report.html``; rows and metrics default to ``out/predictions.jsonl`` and ``out/metrics.json``."""
    out = Path(out)
    rows = read_rows(out / PREDICTIONS) if rows is None else rows
    metrics = read_json(out / METRICS) if metrics is None else metrics
    path = out / REPORT
    path.write_text(render_report(rows, metrics, out / FRAMES, title), encoding="utf-8")
    logger.info("report: %s", path)
    return path


STYLE = """
:root{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2433;background:#f6f7fb}
body{margin:0 auto;max-width:1400px;padding:24px}
h1{margin:0 0 4px;font-size:26px} h2{font-size:18px;margin:28px 0 10px}
.sub{color:#5b6478;font-size:13px;word-break:break-all}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:18px 0}
.card{background:#fff;border-radius:10px;padding:14px 18px;min-width:150px;box-shadow:0 1px 3px #0002;display:flex;flex-direction:column}
.card b{font-size:28px}.card span{color:#5b6478;font-size:13px}.card small{color:#8a93a6;font-size:12px;margin-top:2px}
.card small.bad{color:#c62828;font-weight:600} td.bad,.note.bad{color:#c62828} .why{font-size:11px;color:#8a5a5a;white-space:normal;max-width:320px}
.notes{color:#7a5b00;background:#fff8e1;border-radius:8px;padding:8px 8px 8px 28px;font-size:13px}
.note{color:#5b6478;font-size:12px}
section{background:#fff;border-radius:10px;padding:4px 18px 14px;margin:16px 0;box-shadow:0 1px 3px #0002}
.two{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
table{border-collapse:collapse} th,td{padding:6px 8px;text-align:left;vertical-align:top}
thead th{background:#eef0f6;font-size:12px;text-transform:uppercase;letter-spacing:.03em;position:sticky;top:0;z-index:1}
.classes td{border-bottom:1px solid #eef0f6}.num{text-align:right}
.bar{position:relative;width:160px;height:18px;background:#eef0f6;border-radius:4px;overflow:hidden}
.bar i{position:absolute;left:0;top:0;bottom:0}.bar span{position:relative;padding-left:6px;font-size:12px;line-height:18px;font-weight:600}
img.cm{max-width:520px;width:100%} img.curves{width:100%;max-width:1100px}
figure{margin:0} figcaption{font-size:12px;color:#5b6478}
.controls{display:flex;flex-wrap:wrap;gap:16px;align-items:center;margin:8px 0 12px;font-size:14px}
.controls select,.controls input{font:inherit;padding:3px 6px}
#samples table{width:100%;background:#fff}
tr.sample{border-left:6px solid var(--c);background:color-mix(in srgb,var(--c) 9%,white)}
tr.sample td{border-bottom:1px solid #e3e6ee;font-size:14px}
tr.sample .pred{font-weight:600;color:var(--c)} tr.sample td:nth-child(3){white-space:pre-line}
.idx{color:#8a93a6;width:70px}.sid{font-size:11px;word-break:break-all}
.scores{font-size:12px;white-space:nowrap;color:#3c4457}.ok{color:#2e7d32}.no{color:#c62828}.muted{color:#8a93a6}
.strip{width:min(calc(var(--n)*72px),560px);cursor:zoom-in}
.strip.big{width:calc(var(--n)*96px);cursor:zoom-out}
.strip img{width:100%;display:block;border-radius:4px;image-rendering:auto}
.ts{display:grid;grid-template-columns:repeat(var(--n),1fr);font-size:10px;color:#5b6478;text-align:center}
.strip.none{width:auto;color:#8a93a6;font-size:12px;cursor:default}
details{margin:10px 0;font-size:13px} .kv th{color:#5b6478;font-weight:500}
"""

SCRIPT = """
const body = document.querySelector('#samples tbody');
const rows = Array.from(body.querySelectorAll('tr.sample'));
const $ = id => document.getElementById(id);
function keep(r, show, cls, q) {
  const d = r.dataset;
  if (show === 'wrong' && (d.correct === '1' || d.error === '1')) return false;
  if (show === 'right' && d.correct !== '1') return false;
  if (show === 'errors' && d.error !== '1') return false;
  if (cls && d.class !== cls) return false;
  return !q || r.textContent.toLowerCase().includes(q);
}
const order = {
  index: (a, b) => a.dataset.i - b.dataset.i,
  'score-asc': (a, b) => (parseFloat(a.dataset.score) || -1) - (parseFloat(b.dataset.score) || -1) || a.dataset.i - b.dataset.i,
  'score-desc': (a, b) => (parseFloat(b.dataset.score) || -1) - (parseFloat(a.dataset.score) || -1) || a.dataset.i - b.dataset.i,
  id: (a, b) => a.dataset.id.localeCompare(b.dataset.id, undefined, {numeric: true}),
};
const controls = Array.from(document.querySelectorAll('.controls select, .controls input'));
// the URL's #hash holds the view (e.g. report.html#show=wrong&sort=score-asc), so a link can share it
new URLSearchParams(location.hash.slice(1)).forEach((v, k) => { if ($(k)) $(k).value = v; });
function apply() {
  const show = $('show').value, cls = $('cls') ? $('cls').value : '', q = $('q').value.trim().toLowerCase();
  const view = new URLSearchParams(controls.filter(e => e.value && e.value !== e.options?.[0]?.value).map(e => [e.id, e.value]));
  try { history.replaceState(null, '', view.toString() ? '#' + view : location.pathname); } catch (e) {}
  let shown = 0;
  rows.slice().sort(order[$('sort').value]).forEach(r => {
    r.hidden = !keep(r, show, cls, q);
    shown += !r.hidden;
    body.appendChild(r);
  });
  $('count').textContent = shown + ' of ' + rows.length + ' samples';
}
controls.forEach(e => e.addEventListener('input', apply));
document.querySelectorAll('.classlink').forEach(a => a.addEventListener('click', () => {
  if ($('cls')) { $('cls').value = a.dataset.class; apply(); }
}));
body.addEventListener('click', e => {
  const strip = e.target.closest('.strip:not(.none)');
  if (strip) strip.classList.toggle('big');
});
apply();
"""

PAGE = Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>$title</title><style>$style</style></head>
<body>
<h1>$title</h1><div class="sub">$subtitle</div>
$headline
$notes
$classes
$training
$settings
<section id="samples"><h2>Samples</h2>
<div class="controls">
<label>show <select id="show"><option value="all">all</option><option value="wrong">wrong only</option>
<option value="right">right only</option><option value="errors">media errors</option></select></label>
$class_filter
<label>sort <select id="sort"><option value="index">data order</option><option value="score-asc">score, worst first</option>
<option value="score-desc">score, best first</option><option value="id">id</option></select></label>
<label>search <input id="q" type="search" placeholder="text in any column"></label>
<span id="count">$total samples</span>
</div>
<table><thead><tr><th>#</th><th>frames the model saw</th><th>question</th><th>reference</th><th>prediction</th><th>scores</th></tr></thead>
<tbody>
$rows
</tbody></table></section>
<script>$script</script>
</body></html>
""")
