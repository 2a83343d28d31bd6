"""Is B really better than A? Paired tests over the samples both runs scored.

- Accuracy (right/wrong per sample): McNemar's exact test. Only the discordant samples count (``b``: A
  right and B wrong, ``c``: A wrong and B right); under "no difference" each is a fair coin, so the
  two-sided p-value is ``min(1, 2 * P(X <= min(b, c)))`` for ``X ~ Binomial(b + c, 1/2)`` (exact, integers).
- Per-sample scores (ROUGE-L, METEOR, semantic similarity, ...): a paired bootstrap 95% confidence
  interval of the mean difference B - A (samples resampled with replacement, the same draw for A and B).

A difference is "within noise" when p >= ``alpha`` or the interval contains 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05
SCORE_KEYS = {"rougeL": "ROUGE-L", "meteor": "METEOR", "semantic_similarity": "semantic similarity", "bleu": "sentence BLEU"}


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (1.0 when there are none)."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2**n)  # int / int: exact big-integer arithmetic, then one rounding


def paired_bootstrap(a: Sequence[float], b: Sequence[float], resamples: int = 2000, seed: int = 0, level: float = 0.95):
    """Mean of B - A and its percentile bootstrap interval ``(delta, low, high)``."""
    diff = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if diff.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, size=(resamples, diff.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(diff.mean()), float(low), float(high)


@dataclass
class PairedTest:
    metric: str
    n: int  # paired samples
    delta: float  # B - A (a fraction for accuracy)
    p_value: float | None = None  # McNemar
    low: float | None = None  # bootstrap interval of delta
    high: float | None = None
    detail: str = ""

    @property
    def within_noise(self) -> bool:
        if self.p_value is not None:
            return self.p_value >= ALPHA
        return self.low is None or self.low <= 0 <= self.high

    def verdict(self) -> str:
        if self.n == 0:
            return "no paired samples"
        if self.within_noise:
            return "within noise"
        return "B better" if self.delta > 0 else "B worse"

    def describe(self) -> str:
        stat = f"p = {self.p_value:.3g}" if self.p_value is not None else f"95% CI [{self.low:+.4f}, {self.high:+.4f}]"
        return f"{self.metric}: B - A = {self.delta:+.4f} ({stat}, n = {self.n}{', ' + self.detail if self.detail else ''}) -> {self.verdict()}"


def paired_tests(rows_a: dict[str, dict], rows_b: dict[str, dict], resamples: int = 2000) -> list[PairedTest]:
    """McNemar on exact match / judged choice, bootstrap on each per-sample score both runs have."""
    common = [i for i in rows_a if i in rows_b and not rows_a[i].get("error") and not rows_b[i].get("error")]
    right_a = [bool(rows_a[i].get("exact_match")) for i in common]
    right_b = [bool(rows_b[i].get("exact_match")) for i in common]
    broke = sum(x and not y for x, y in zip(right_a, right_b))
    fixed = sum(y and not x for x, y in zip(right_a, right_b))
    delta = (fixed - broke) / len(common) if common else 0.0
    tests = [PairedTest("accuracy", len(common), delta, p_value=mcnemar_exact(broke, fixed), detail=f"B fixed {fixed}, broke {broke}")]
    for key, label in SCORE_KEYS.items():
        ids = [i for i in common if key in rows_a[i].get("scores", {}) and key in rows_b[i].get("scores", {})]
        if ids:
            a = [rows_a[i]["scores"][key] for i in ids]
            b = [rows_b[i]["scores"][key] for i in ids]
            d, low, high = paired_bootstrap(a, b, resamples)
            tests.append(PairedTest(label, len(ids), d, low=low, high=high))
    return tests
