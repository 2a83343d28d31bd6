"""Published answer-matching rules, reproduced so that scores compare with published numbers.

``--answer_rule lmms-eval`` reads a generated answer the way lmms-eval's task code does (behaviour
re-implemented from lmms-eval @ 75571cf and tested on its edge cases, no code copied):

- MVBench (``mvbench/utils.py::mcq_acc``): ``X. text`` at the start (X in A-E, any case) is X; otherwise
  newlines/tabs become spaces, VQA-style punctuation is stripped, quotes and brackets are trimmed, the text
  is lower-cased and the first standalone ``a``-``e`` is the letter. ``"a man walks"`` is therefore A.
- Video-MME (``_task_utils/mcq_extract.py::extract_mcq_answer`` with choices A-D): candidates in several
  formats (``(X)``, ``X.``, ``X:``, ``X)``, ``X `` , after an answer phrase, at the start, at the end, else
  anywhere); the highest-priority format wins, the last occurrence within it.
- TempCompass (``tempcompass/utils.py``, identical to the benchmark's own ``eval_*.py``): multi-choice:
  the exact answer, a bare letter A-D, or ``X.`` / ``X)`` at the start; yes/no: the answer starts with
  "yes" or "no" (any case); caption matching: the answer is an option line, its sentence, its label
  ("Sentence A") or the label's short form ("A"). Anything else goes to a ChatGPT judge there; here to
  ``--judge`` when given, else it is unparsed and counted wrong (TempCompass's ``--disable_llm``).

Every function returns the chosen letter / option index (possibly one that is not an option: lmms-eval
reads an ``E`` for four options, which is then simply wrong), or ``None`` when the rule reads nothing.
"""

from __future__ import annotations

import re

RULES = ("default", "lmms-eval")

# --- MVBench (lmms-eval mcq_acc) -------------------------------------------------------------------------

_MVB_OPTION = re.compile(r"^([A-E])\.\s*(.+)$", re.IGNORECASE)
_MVB_LETTER = re.compile(r"\b([A-E])\b", re.IGNORECASE)
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")  # sic: as lmms-eval writes it (a lookahead, not a lookbehind)
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")
_PUNCT = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]


def _vqa_punctuation(text: str) -> str:
    """lmms-eval's VQA punctuation pass: a mark next to a space (or any mark when the text has a digit
    comma) is deleted, otherwise replaced by a space; then periods not next to digits are removed (at most
    32 of them: lmms-eval passes ``re.UNICODE`` as the count)."""
    out = text
    for p in _PUNCT:
        if p + " " in text or " " + p in text or _COMMA_STRIP.search(text):
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out, count=int(re.UNICODE))


def mvbench_letter(text: str) -> str | None:
    """The letter lmms-eval's MVBench ``mcq_acc`` reads from an answer, or None (it keeps the text)."""
    m = _MVB_OPTION.match(text.strip())
    if m:
        return m.group(1).upper()
    body = _vqa_punctuation(text.replace("\n", " ").replace("\t", " ").strip())
    body = body.strip("'").strip('"').strip(")").strip("(").strip().lower()
    m = _MVB_LETTER.search(body)
    return m.group(1).upper() if m else None


# --- Video-MME (lmms-eval extract_mcq_answer) -------------------------------------------------------------

_PHRASES = (
    "the answer is", "answer is", "the correct answer is", "correct answer is", "the best answer is", "best answer is",
    "the correct option is", "correct option is", "the best option is", "best option is", "the choice is", "choice is",
    "the correct choice is", "correct choice is", "i choose", "i select", "i pick", "my answer is", "my choice is",
    "옵션", "정답은", "답은", "답:", "答案是", "答案为", "选", "答えは",
)  # fmt: skip
_PRIORITY = {"start": 10, "end": 9, "phrase": 7, "parentheses": 6, "period": 5, "colon": 4, "right_paren": 3, "space": 2, "fallback": 0}


def mcq_letter(text: str, choices: str = "ABCD") -> str | None:
    """The letter lmms-eval's ``extract_mcq_answer`` picks (Video-MME passes choices A-D), or None."""
    if not text or not text.strip():
        return None
    body = text.strip()
    for char in ",.!?;:'\"":  # one after the other, as lmms-eval does
        body = body.strip(char)
    body = f" {body} "
    found: list[tuple[int, int, str]] = []  # (priority, position, letter)
    for fmt, pattern in (("parentheses", "({})"), ("period", "{}."), ("colon", "{}:"), ("right_paren", "{})"), ("space", "{} ")):
        found += [(_PRIORITY[fmt], body.rfind(pattern.format(c)), c) for c in choices if pattern.format(c) in body]
    lower = body.lower()
    for phrase in _PHRASES:
        at = lower.find(phrase)
        if at != -1:
            after = at + len(phrase)
            found += [(_PRIORITY["phrase"], body.find(c, after), c) for c in choices if body.find(c, after) != -1]
    stripped = body.strip()
    for c in choices:
        if stripped.startswith(c) and (len(stripped) == 1 or not stripped[1].isalpha()):
            found.append((_PRIORITY["start"], 0, c))
        if stripped.endswith(c) and (len(stripped) == 1 or not stripped[-2].isalpha()):
            found.append((_PRIORITY["end"], len(body) - 1, c))
    if not found:
        found = [(_PRIORITY["fallback"], body.rfind(c), c) for c in choices if c in body]
    if not found:
        return None
    return max(found, key=lambda f: (f[0], f[1]))[2]  # the first of equals, as a stable reverse sort keeps it


# --- TempCompass (official eval_*.py = lmms-eval tempcompass/utils.py) --------------------------------------


def tempcompass_choice_letter(text: str, answer: str) -> str | None:
    """Multi-choice: the letter the published rule reads (the whole answer string counts as its letter)."""
    if text == answer:
        return answer[:1]
    if text in ("A", "B", "C", "D"):
        return text
    if any(text.startswith(f"{c}.") for c in "ABCD"):
        return text.split(".")[0]
    if any(text.startswith(f"{c})") for c in "ABCD"):
        return text.split(")")[0]
    return None


def tempcompass_yes_no(text: str) -> str | None:
    """Yes/no: "yes" or "no" when the answer starts with it (any case), else None."""
    lower = text.lower()
    return "yes" if lower.startswith("yes") else "no" if lower.startswith("no") else None


def caption_matching_choice(text: str, question: str) -> int | None:
    """Caption matching: the index of the option the answer names by the published rule, or None.

    The options are the question's lines after the first (``Sentence A: ...``, ``Caption B: ...``,
    ``Option 1: ...``). Later matches override earlier ones, as the published loop does: a whole option
    line, then its sentence (also after a ``) ``), then its label or the label's short form.
    """
    lines = question.split("\n")[1:]
    sentences = [line.split(": ")[1] if ": " in line else "" for line in lines]
    labels = [line.split(": ")[0] for line in lines]
    short = [label.replace("Sentence ", "").replace("Option ", "").replace("Caption ", "") for label in labels]
    chosen = None
    for i, line in enumerate(lines):
        if line == text:
            chosen = i
    for i, sentence in enumerate(sentences):
        if sentence == text or (") " in text and sentence == text.split(") ")[1]):
            chosen = i
    for i, label in enumerate(labels + short):
        if label == text or label == text.replace(".", ""):
            chosen = i % len(lines)
    return chosen


def judge_rating(output: str) -> bool | None:
    """A judge's "Correct" / "Incorrect" verdict, read as TempCompass does (None: neither word)."""
    if output.startswith("Correct"):
        return True
    if output.startswith("Incorrect"):
        return False
    if "Correct" in output and "Incorrect" not in output:
        return True
    return False if "Incorrect" in output else None


def captioning_rating(output: str, mc_answer: str) -> bool:
    """TempCompass captioning: the judge answered the multiple-choice question from the caption; right when
    its ``Answer:`` line starts with the right ``X.`` and names exactly one ``X.`` option."""
    answer = output
    for line in output.split("\n"):
        if "Answer" in line:
            answer = line.strip().replace("Answer:", "").strip()
    named = sum(answer.count(f"{c}.") for c in "ABCD")
    return answer.split(". ")[0] == mc_answer.split(". ")[0] and named == 1
