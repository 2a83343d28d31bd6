"""Answer normalisation and accuracy (exact match after normalising case, punctuation, articles)."""

from __future__ import annotations

import re
import string

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.IGNORECASE)
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and English articles, collapse white space."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCT))
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(reference)


def accuracy(predictions: list[str], references: list[str]) -> float:
    if not references:
        return float("nan")
    return sum(exact_match(p, r) for p, r in zip(predictions, references)) / len(references)
