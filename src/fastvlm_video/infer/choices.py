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

import inspect
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

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


def score_choices(predictor, prompt, candidates: Sequence[str], end: bool = True) -> ChoiceScores:
    """Log-likelihood of each candidate as the assistant's whole answer to ``prompt`` (see ``score_choices_batch``).

    ``end=False`` scores the candidate as a continuation only (no ``<|im_end|>``), as lmms-eval's
    ``loglikelihood`` asks.
    """
    return score_choices_batch(predictor, [prompt], [candidates], end)[0]


@torch.inference_mode()
def score_choices_batch(predictor, prompts: Sequence, candidates: Sequence[Sequence[str]], end: bool = True) -> list[ChoiceScores]:
    """``score_choices`` for a batch of questions at once: each prompt is read once, its options share it.

    Two forward passes for the whole batch: the prompts (left-padded, their frames through the vision
    tower in one batch, positions as unpadded) fill a KV cache and give each question's first-answer-token
    distribution; the cache is then repeated per (question, option) row and every option's remaining
    tokens are read in one right-padded pass. Only answer positions reach the LM head, so memory does not
    grow with the prompt (a 2,000-token video prompt x 32 options would otherwise need 40 GB of logits).
    Padding changes float summation order only: scores equal one question at a time within float
    rounding (tests/test_evaluate_scale.py).
    """
    rows = [(q, candidate_ids(predictor, [], c, end)[0]) for q, options in enumerate(candidates) for c in options]
    if any(not ids for _, ids in rows):
        raise ValueError("an empty candidate has no tokens to score")
    model = predictor.model
    inputs = predictor._inputs(prompts)  # left-padded, frames scaled exactly as for generation
    pixel_values = inputs.pop("pixel_values", None)
    if pixel_values is not None:
        inputs["mm_encoder_outputs"] = {"image": predictor.encode_frames(pixel_values)}
    mask = inputs["attention_mask"]
    cache = DynamicCache()
    first = model(**inputs, position_ids=(mask.cumsum(-1) - 1).clamp(min=0), logits_to_keep=1, use_cache=True,
                  **{_cache_kwarg(model): cache}).logits[:, -1].float().log_softmax(-1)  # fmt: skip
    owner = torch.tensor([q for q, _ in rows], device=mask.device)
    first = first[owner]  # (rows, vocab): the distribution of each row's first answer token
    width = max(len(ids) for _, ids in rows)
    answers = torch.full((len(rows), width), predictor.tokenizer.pad_token_id or 0, dtype=torch.long, device=mask.device)
    for r, (_, ids) in enumerate(rows):
        answers[r, : len(ids)] = torch.tensor(ids)
    lengths = torch.tensor([len(ids) for _, ids in rows], device=mask.device)
    token_lp = first.gather(-1, answers[:, :1])  # (rows, 1)
    is_top = first.argmax(-1, keepdim=True) == answers[:, :1]
    if width > 1:  # the rest of every answer, after its question's cached prompt
        cache.reorder_cache(owner)
        answer_mask = (torch.arange(width, device=mask.device) < lengths[:, None]).long()
        positions = mask.sum(-1)[owner][:, None] + torch.arange(width - 1, device=mask.device)
        logits = model(input_ids=answers[:, :-1], attention_mask=torch.cat([mask[owner], answer_mask[:, :-1]], 1),
                       position_ids=positions, use_cache=True, **{_cache_kwarg(model): cache}).logits.float()  # fmt: skip
        logprobs = logits.log_softmax(-1)
        token_lp = torch.cat([token_lp, logprobs.gather(-1, answers[:, 1:, None])[..., 0]], 1)
        is_top = torch.cat([is_top, logprobs.argmax(-1) == answers[:, 1:]], 1)
    valid = torch.arange(width, device=mask.device) < lengths[:, None]
    sums = torch.where(valid, token_lp, 0.0).sum(-1).tolist()
    greedy = (is_top | ~valid).all(-1).tolist()
    out, r = [], 0
    for options in candidates:
        n = len(options)
        out.append(ChoiceScores(sums[r : r + n], lengths[r : r + n].tolist(), greedy[r : r + n]))
        r += n
    return out


def _cache_kwarg(model) -> str:
    """The forward's KV-cache argument: ``cache`` since transformers 5.25, ``past_key_values`` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


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
