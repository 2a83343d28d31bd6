"""Answer metrics: exact match after normalisation, and for a closed answer set per-class accuracy,
macro-F1 and a confusion matrix. ``summarize`` turns scored prediction rows into ``metrics.json``.

Free-text metrics (BLEU, ROUGE-L, METEOR, semantic similarity) live in ``text_metrics``.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.IGNORECASE)
_PUNCT = str.maketrans("", "", string.punctuation)

OTHER = "(other)"  # confusion-matrix column for predictions outside the answer set
MAX_CLASSES = 50  # more distinct references than this is free-form text, not a closed set


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and English articles, collapse white space."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCT))
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(reference)


def accuracy(predictions: Sequence[str], references: Sequence[str]) -> float:
    if not references:
        return float("nan")
    return sum(exact_match(p, r) for p, r in zip(predictions, references)) / len(references)


def is_closed_set(references: Sequence[str]) -> bool:
    """Do the references look like labels? Few distinct answers, each seen about twice or more."""
    classes = {normalize_answer(r) for r in references}
    return 1 < len(classes) <= min(MAX_CLASSES, len(references) / 2)


@dataclass
class ClassScore:
    label: str
    support: int  # references of this class
    correct: int
    accuracy: float  # = recall
    precision: float
    f1: float


@dataclass
class ClassReport:
    """Per-class scores and the confusion matrix (rows: reference, columns: prediction)."""

    labels: list[str]  # sorted reference classes (normalised)
    classes: list[ClassScore]
    macro_f1: float
    matrix: list[list[int]]  # len(labels) rows x len(labels) (+1 for OTHER) columns
    columns: list[str]

    def to_dict(self) -> dict:
        return {
            "labels": self.labels,
            "macro_f1": self.macro_f1,
            "per_class": {c.label: {k: v for k, v in asdict(c).items() if k != "label"} for c in self.classes},
            "confusion_matrix": {"rows": self.labels, "columns": self.columns, "counts": self.matrix},
        }


def class_report(predictions: Sequence[str], references: Sequence[str]) -> ClassReport:
    """Treat normalised references as class labels; predictions outside them go to ``OTHER``."""
    refs = [normalize_answer(r) for r in references]
    preds = [normalize_answer(p) for p in predictions]
    labels = sorted(set(refs))
    columns = labels + ([OTHER] if any(p not in labels for p in preds) else [])
    col = {label: i for i, label in enumerate(columns)}
    matrix = [[0] * len(columns) for _ in labels]
    for r, p in zip(refs, preds):
        matrix[labels.index(r)][col.get(p, col.get(OTHER, 0))] += 1
    predicted = Counter(p for p in preds)
    classes = []
    for i, label in enumerate(labels):
        support, correct = sum(matrix[i]), matrix[i][i]
        recall = correct / support
        precision = correct / predicted[label] if predicted[label] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        classes.append(ClassScore(label, support, correct, recall, precision, f1))
    macro_f1 = sum(c.f1 for c in classes) / len(classes) if classes else float("nan")
    return ClassReport(labels, classes, macro_f1, matrix, columns)


def _mean(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return sum(values) / len(values) if values else None


def _answered(row: dict) -> str:
    """A row's answer for label metrics: the class it was judged to choose (records with 'class'), else its text."""
    if "options" in row and not row.get("lettered") and row.get("choice") is not None:
        return row["choice"]
    return row["prediction"]


def unscored_reason(row: dict) -> str | None:
    """Why a row is not scored (a media error and its reason; an ``unscored`` reason), or None: it is scored."""
    if row.get("error"):
        return f"media error: {row.get('reason') or row['error']}"
    return row.get("unscored")


def summarize(rows: Sequence[dict], task: str = "auto", corpus_bleu=None) -> dict:
    """Metrics of scored prediction rows; rows with an ``error`` (media) or ``unscored`` (e.g. no judge) are
    counted, with their reasons (``unscored``), never scored.

    ``task``: ``"classification"`` (closed answer set), ``"open"`` (free text) or ``"auto"`` (guess
    from the references). ``corpus_bleu(predictions, references)`` gives the corpus BLEU when set.
    """
    scored = [r for r in rows if unscored_reason(r) is None]
    preds = [_answered(r) for r in scored]
    refs = [r["reference"] for r in scored]
    closed = is_closed_set(refs) if task == "auto" else task == "classification"
    if any("options" in r and not r.get("lettered") and not r.get("kind") for r in scored):
        closed = True  # a class label set (records with 'class')
    lettered = bool(scored) and all(r.get("lettered") or r.get("kind") for r in scored)  # a benchmark: judged per row
    reasons = Counter(unscored_reason(r) for r in rows if unscored_reason(r) is not None)
    metrics: dict = {
        "num_samples": len(rows),
        "num_scored": len(scored),
        "num_errors": sum(bool(r.get("error")) for r in rows),  # unreadable media
        "num_unscored": len(rows) - len(scored),
        "unscored": dict(reasons.most_common()),
        "task": "classification" if closed else "open",
        "accuracy": accuracy(preds, refs) if scored else None,
    }
    if corpus_bleu is not None and scored and not lettered:
        metrics["bleu"] = round(corpus_bleu(preds, refs), 4)
    for name in ("rougeL", "meteor", "semantic_similarity"):
        value = _mean([r.get("scores", {}).get(name) for r in scored])
        if value is not None:
            metrics[name] = value
    if closed and scored and not lettered:
        report = class_report(preds, refs)
        metrics["macro_f1"] = report.macro_f1
        metrics["classes"] = report.to_dict()
    if not closed and scored and not lettered and sorted(len(r.split()) for r in refs)[len(refs) // 2] < 4:
        metrics["notes"] = ["most references are shorter than 4 words: BLEU (up to 4-grams) is near 0 for them; "
                            "read ROUGE-L and semantic similarity instead"]  # fmt: skip
    if any("options" in r for r in scored):  # closed answer sets (benchmarks, class labels): judged per row
        metrics.update(choice_metrics(scored, [r for r in rows if unscored_reason(r) is not None]))
    metrics["errors"] = [{"id": r["id"], "error": r["error"]} for r in rows if r.get("error")]
    return metrics


def choice_metrics(rows: Sequence[dict], unscored: Sequence[dict] = ()) -> dict:
    """Accuracy of judged choice rows (their ``exact_match``), per group (task, category, ...) and task mean.

    ``task_mean_accuracy`` is the mean of the per-task accuracies (what MVBench reports) over the tasks
    with at least one scored question (``task_mean_covers`` says how many of how many, and which are
    missing); ``accuracy`` is over all scored questions. An unparsed answer (``choice`` None) counts as
    wrong and is counted; so does a question whose answer is not among its options (``problems``).
    ``unscored`` rows (media errors, no judge) are counted per group with their reasons.
    """
    judged = [r for r in rows if "options" in r]
    out: dict = {"accuracy": sum(bool(r["exact_match"]) for r in judged) / len(judged),
                 "num_unparsed": sum(r.get("choice") is None and "judge_output" not in r for r in judged)}  # fmt: skip
    problems = [{"id": r["id"], "problem": r["problem"]} for r in judged if r.get("problem")]
    if problems:
        out["problems"] = problems
    if all(r.get("lettered") or r.get("kind") for r in judged):
        out["task"] = "multiple_choice"
    groups: dict[str, dict[str, dict]] = {}
    for r in judged:
        for key, name in r.get("groups", {}).items():
            cell = groups.setdefault(key, {}).setdefault(name, {"correct": 0, "num": 0, "unscored": 0})
            cell["correct"] += bool(r["exact_match"])
            cell["num"] += 1
    for r in unscored:
        for key, name in (r.get("groups") or {}).items():
            cell = groups.setdefault(key, {}).setdefault(name, {"correct": 0, "num": 0, "unscored": 0})
            cell["unscored"] += 1
            reasons = cell.setdefault("unscored_reasons", {})
            reason = unscored_reason(r)
            reasons[reason] = reasons.get(reason, 0) + 1
    out["by_group"] = {key: {name: {"accuracy": c["correct"] / c["num"] if c["num"] else None, **c} for name, c in sorted(names.items())}
                       for key, names in groups.items()}  # fmt: skip
    tasks = out["by_group"].get("task")
    if tasks:
        covered = {name: t for name, t in tasks.items() if t["num"]}
        out["task_mean_accuracy"] = sum(t["accuracy"] for t in covered.values()) / len(covered) if covered else None
        out["task_mean_covers"] = {"tasks": len(covered), "of": len(tasks), "missing": sorted(set(tasks) - set(covered))}
    return out
