"""Batch evaluation: generate an answer for every sample of a data file and score it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from tqdm import tqdm

from ..data.records import Sample
from ..errors import MediaError
from .metrics import exact_match
from .predictor import Predictor

logger = logging.getLogger(__name__)


def split_question(sample: Sample):
    """The conversation up to its last user turn, and the reference answer that follows it."""
    last = max(i for i, m in enumerate(sample.messages) if m.role == "assistant")
    return sample.messages[:last], sample.messages[last].content


def predict_samples(predictor: Predictor, samples: list[Sample], batch_size: int = 8, max_new_tokens: int = 32) -> Iterator[dict]:
    """Yield one result row per sample (broken media -> a row with ``error`` instead of a prediction)."""
    for start in tqdm(range(0, len(samples), batch_size), desc="evaluating", unit="batch"):
        prompts, rows = [], []
        for sample in samples[start : start + batch_size]:
            messages, reference = split_question(sample)
            row = {
                "id": sample.id,
                "media": [ref.path for ref in sample.media],
                "question": messages[-1].content,
                "reference": reference,
            }
            try:
                prompt = predictor.prepare(messages, sample.media)
            except MediaError as exc:
                logger.warning("%s: %s", sample.where, exc)
                yield {**row, "prediction": None, "error": str(exc)}
                continue
            row["timestamps"] = prompt.timestamps
            prompts.append(prompt)
            rows.append(row)
        if not prompts:
            continue
        for row, answer in zip(rows, predictor.generate(prompts, max_new_tokens=max_new_tokens)):
            yield {**row, "prediction": answer, "exact_match": exact_match(answer, row["reference"])}
