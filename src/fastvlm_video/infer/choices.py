"""Multiple-choice answers: read the chosen option out of generated text, or rank the options by likelihood.

``extract_choice`` (the rule, in order; the first that fires wins):

1. Drop a leading answer phrase ("The best answer is", "Answer:", "Best option:", ...), case-insensitive.
2. A valid option letter standing alone at the start: ``B``, ``B.``, ``B)``, ``(B)``, ``[B]``, ``B:``,
   ``B,`` or ``B`` followed by white space and an upper-case/non-letter character (``B. the cat``).
   ``A man walks`` is *not* the letter A: a capital letter followed by a lower-case word is an article.
   The whole answer being one lower-case valid letter (``c``, ``(c)``) is that letter; an answer phrase
   followed by a capital letter anywhere (``Both A and B are wrong, the answer is C``) names it (the last one).
3. The text equals one option's text (normalised: case, punctuation, articles), or contains exactly one
   option's text as a whole phrase.
4. A bracketed letter ``(C)`` anywhere, then one single upper-case valid letter as its own word anywhere
   (``I think C is right``) when exactly one such letter appears (``A`` before a lower-case word other
   than or/and/nor is an article; ``A or B`` names two letters: unparsed).
5. Otherwise ``None``: unparsed, counted wrong (and reported as unparsed).

``score_choices`` ranks candidate answers by the model's log-likelihood of each one as the complete
assistant answer: the candidate's tokens followed by ``<|im_end|>``, after exactly the prompt that
generation uses. The ranking uses the *sum* of the token log-probabilities (the log-probability that the
model's whole answer is that candidate) by default; ``norm="mean"`` divides by the token count (length
normalisation), which favours long candidates less harshly but is no longer a probability.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from .answer_rules import (
    RULES,
    caption_matching_choice,
    captioning_rating,
    judge_rating,
    mcq_letter,
    mvbench_letter,
    tempcompass_choice_letter,
    tempcompass_yes_no,
)
from ..errors import ConfigError
from .metrics import normalize_answer

LETTERS = string.ascii_uppercase
NORMS = ("sum", "mean")

_LEAD = re.compile(
    r"^\s*(?:the\s+)?(?:best|correct|right|final)?\s*(?:answer|option|choice)(?:\s+is)?\s*[:：]?\s*",
    re.IGNORECASE,
)


@dataclass
class ChoiceSpec:
    """The closed answer set of one record: candidate texts shown as ``labels`` (letters or class names)."""

    options: list[str]  # the texts scored / matched (option texts, or class answers)
    answer: int | None  # index of the right option (None: unknown)
    labels: list[str] = field(default_factory=list)  # what a prediction is reported as ("A".. or class names)
    lettered: bool = True  # the prompt lists the options under letters: extraction looks for letters
    groups: dict[str, str] = field(default_factory=dict)  # e.g. {"task": ..., "category": ...}
    kind: str = ""  # the benchmark question type ("mvbench", "videomme", "tempcompass/yes_no", ...): its answer rules
    extra: dict = field(default_factory=dict)  # what a published rule needs (TempCompass' raw question / answer)
    answer_prefix: str = ""  # the reply starts with this text (MVBench official: "Best option:(")

    def __post_init__(self):
        if not self.labels:
            self.labels = list(LETTERS[: len(self.options)]) if self.lettered else list(self.options)

    def to_row(self) -> dict:
        row = {"options": self.options, "labels": self.labels, "answer_index": self.answer, "lettered": self.lettered,
               "groups": self.groups}  # fmt: skip
        if self.kind:
            row["kind"] = self.kind
        if self.extra.get("problem"):
            row["problem"] = self.extra["problem"]  # e.g. the answer is not among the candidates: scored wrong
        return row


def format_options(options: Sequence[str], style: str = "{letter}. {text}") -> str:
    """``A. first\\nB. second`` (or any ``style`` with ``{letter}`` and ``{text}``)."""
    return "\n".join(style.format(letter=LETTERS[i], text=text) for i, text in enumerate(options))


def extract_choice(text: str | None, spec: ChoiceSpec) -> int | None:
    """The index of the option a generated answer names, or ``None`` (see the module docstring for the rule)."""
    if not text or not text.strip():
        return None
    n = len(spec.options)
    valid = LETTERS[:n]
    body = _LEAD.sub("", text.strip(), count=1).strip()
    if spec.lettered and n <= len(LETTERS):
        m = re.match(rf"^[(\[]?([{valid}])(?:[)\].:,]|$|\s+(?=[^a-z]|$))", body)
        if m:
            return valid.index(m.group(1))
        m = re.fullmatch(rf"[(\[]?([{valid.lower()}])[)\].:]?", body)  # a lone lower-case letter: "c", "(c)"
        if m:
            return valid.index(m.group(1).upper())
        named = re.findall(rf"(?i:answer|option|choice)\s*(?:is|:)\s*[(\[]?([{valid}])(?![\w'])", body)
        if named:  # "..., so the answer is C": the last answer phrase names it
            return valid.index(named[-1])
    norm = normalize_answer(body)
    exact = [i for i, o in enumerate(spec.options) if normalize_answer(o) == norm]
    if len(exact) == 1:
        return exact[0]
    contained = [i for i, o in enumerate(spec.options) if normalize_answer(o) and re.search(rf"\b{re.escape(normalize_answer(o))}\b", norm)]
    if len(contained) == 1:
        return contained[0]
    if spec.lettered:
        bracketed = set(re.findall(rf"[(\[]([{valid}])[)\]]", body))
        if len(bracketed) == 1:
            return valid.index(bracketed.pop())
        alone = set(re.findall(rf"(?<![\w'])([{valid}])(?![\w'])", body))
        if re.search(r"(?<![\w'])A\s+(?!(?:or|and|nor)\b)[a-z]", body):
            alone.discard("A")  # "A man ..." is an article, "A or B" names two letters
        if len(alone) == 1:
            return valid.index(alone.pop())
    return None


@dataclass
class ChoiceScores:
    """Per candidate: the summed log-probability of its answer tokens (with ``<|im_end|>``) and their count."""

    logprobs: list[float]
    num_tokens: list[int]
    greedy: list[bool] = field(default_factory=list)  # would greedy decoding produce exactly these tokens?

    def ranked(self, norm: str = "sum") -> list[float]:
        if norm == "sum":
            return list(self.logprobs)
        return [lp / n for lp, n in zip(self.logprobs, self.num_tokens)]

    def best(self, norm: str = "sum") -> int:
        scores = self.ranked(norm)
        return max(range(len(scores)), key=scores.__getitem__)


def candidate_ids(predictor, prompt_ids: Sequence[int], candidate: str, end: bool = True) -> tuple[list[int], int]:
    """The ids of ``prompt + candidate + <|im_end|>`` (as training encodes an answer) and where the answer starts."""
    answer = predictor.encoder.text_ids(candidate) + ([predictor.encoder.im_end_id] if end else [])
    return list(prompt_ids) + answer, len(prompt_ids)


@torch.inference_mode()
def score_choices(predictor, prompt, candidates: Sequence[str], end: bool = True) -> ChoiceScores:
    """Log-likelihood of each candidate as the assistant's whole answer to ``prompt`` (one forward pass).

    The frames go through the vision tower once; their features are reused for every candidate row.
    Rows are right-padded, so positions are those of an unpadded sequence. ``end=False`` scores the
    candidate as a continuation only (no ``<|im_end|>``), as lmms-eval's ``loglikelihood`` asks.
    """
    prompt_ids = prompt.input_ids.tolist()
    rows = [candidate_ids(predictor, prompt_ids, c, end) for c in candidates]
    if any(len(ids) == start for ids, start in rows):
        raise ValueError("an empty candidate has no tokens to score")
    width = max(len(ids) for ids, _ in rows)
    pad = predictor.tokenizer.pad_token_id or 0
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    for r, (ids, _) in enumerate(rows):
        input_ids[r, : len(ids)], mask[r, : len(ids)] = torch.tensor(ids), 1
    model, device = predictor.model, predictor.device
    kwargs = {}
    pixel_values = predictor._inputs([prompt]).get("pixel_values")  # scaled exactly as for generation
    if pixel_values is not None:
        features = predictor.encode_frames(pixel_values)
        features.pooler_output = features.pooler_output.repeat(len(rows), *([1] * (features.pooler_output.dim() - 1)))
        kwargs["mm_encoder_outputs"] = {"image": features}
    logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device), **kwargs).logits.float()
    logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
    targets = input_ids[:, 1:].to(device)
    token_lp = logprobs.gather(-1, targets[..., None])[..., 0]
    is_top = logprobs.argmax(-1) == targets
    sums, counts, greedy = [], [], []
    for r, (ids, start) in enumerate(rows):
        sums.append(float(token_lp[r, start - 1 : len(ids) - 1].sum()))
        counts.append(len(ids) - start)
        greedy.append(bool(is_top[r, start - 1 : len(ids) - 1].all()))
    return ChoiceScores(sums, counts, greedy)


def read_choice(text: str | None, spec: ChoiceSpec, rule: str = "default") -> int | None:
    """The index of the option an answer names under ``rule`` (``default``: ``extract_choice``; ``lmms-eval``:
    the benchmark's lmms-eval rule, see ``answer_rules``); may be past the options (a letter lmms-eval reads
    that is not an option: wrong). TempCompass yes/no and caption matching always use their published rule."""
    if rule not in RULES:
        raise ValueError(f"answer rule must be one of {RULES}, got {rule!r}")
    if text is None:
        return None
    if spec.kind == "tempcompass/yes_no":
        said = tempcompass_yes_no(text)
        return None if said is None else spec.options.index(said)
    if spec.kind == "tempcompass/caption_matching":
        return caption_matching_choice(text, spec.extra["question"])
    if rule == "default" or spec.kind not in ("mvbench", "videomme", "tempcompass"):
        return extract_choice(text, spec)
    if spec.kind == "mvbench":
        letter = mvbench_letter(text)
    elif spec.kind == "videomme":
        letter = mcq_letter(text, "ABCD")
    else:
        letter = tempcompass_choice_letter(text, spec.extra["answer"])
    return None if letter is None else LETTERS.index(letter)


def reply_text(spec: ChoiceSpec | None, generated: str) -> str:
    """The answer as the benchmark reads it: MVBench's official reply prefix ``Best option:(`` keeps its ``(``."""
    if spec is None or not spec.answer_prefix.endswith("("):
        return generated
    return "(" + generated


EMPTY_MVBENCH = "an empty answer (lmms-eval's MVBench leaves it out of the average)"
NO_JUDGE = "TempCompass captioning is scored by an LLM judge: pass --judge module:function"


def judge(row: dict, spec: ChoiceSpec, scores: ChoiceScores | None = None, norm: str = "sum", rule: str = "default",
          llm_judge: Callable[[dict], str] | None = None) -> dict:  # fmt: skip
    """Fill a prediction row's choice fields: from likelihood ``scores`` when given, else from its generated text.

    Adds ``options``/``labels``/``answer_index``/``groups``, ``choice`` (the chosen label, None when
    unparsed), ``exact_match`` (chosen == right) and, for likelihood, ``choice_scores`` per label.
    ``llm_judge`` (``request dict -> text``) scores TempCompass captioning and, as TempCompass does, the
    TempCompass answers its rules cannot read; without it captioning rows get ``unscored`` (the reason).
    """
    row.update(spec.to_row())
    if spec.kind == "tempcompass/captioning":
        return _judge_caption(row, spec, llm_judge)
    if scores is not None:
        index = scores.best(norm)
        ranked = scores.ranked(norm)
        row["choice_scores"] = {label: {"score": s, "logprob": lp, "tokens": n}
                                for label, s, lp, n in zip(spec.labels, ranked, scores.logprobs, scores.num_tokens)}  # fmt: skip
        row["prediction"] = spec.labels[index]
    else:
        index = read_choice(row.get("prediction"), spec, rule)
        if rule == "lmms-eval" and spec.kind == "mvbench" and row.get("prediction") == "":
            row["unscored"] = EMPTY_MVBENCH  # lmms-eval's MVBench average leaves empty answers out
    row["choice"] = None if index is None else spec.labels[index] if index < len(spec.labels) else LETTERS[index]
    row["exact_match"] = index is not None and index == spec.answer
    if index is None and llm_judge is not None and spec.kind.startswith("tempcompass") and row.get("prediction") is not None:
        output = llm_judge({"task": spec.kind.split("/")[-1], "question": spec.extra.get("question", ""),
                            "answer": spec.extra.get("answer", ""), "prediction": row["prediction"]})  # fmt: skip
        row["judge_output"] = output
        row["exact_match"] = bool(judge_rating(output or ""))
    return row


def _judge_caption(row: dict, spec: ChoiceSpec, llm_judge: Callable[[dict], str] | None) -> dict:
    row["choice"], row["exact_match"] = None, False
    if row.get("prediction") is None:
        return row
    if llm_judge is None:
        row["unscored"] = NO_JUDGE
        return row
    request = {"task": "captioning", "question": spec.extra["question"], "answer": spec.extra["answer"],
               "prediction": row["prediction"], "mc_question": spec.extra["mc_question"], "mc_answer": spec.extra["mc_answer"]}  # fmt: skip
    output = llm_judge(request)
    row["judge_output"] = output
    if not output:
        row["unscored"] = "the LLM judge gave no answer"
    else:
        row["exact_match"] = captioning_rating(output, spec.extra["mc_answer"])
    return row


def load_judge(spec: str) -> Callable[[dict], str]:
    """``module:function`` (importable, e.g. ``my_judges:gpt4``) -> the function."""
    import importlib

    module, _, name = spec.partition(":")
    if not module or not name:
        raise ConfigError(f"--judge must be module:function, got {spec!r}")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"--judge {spec}: cannot import it ({exc}); is the module on PYTHONPATH?") from None
    if not callable(fn):
        raise ConfigError(f"--judge {spec}: not a function")
    return fn
