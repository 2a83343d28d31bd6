"""GRPO's reward rules: built-in ones by name, custom ones by Python path, combined with weights.

``--reward exact`` (the default), ``--reward choice=1.0,format=0.2`` or ``--reward mypkg.rewards:temporal_iou=1``.
Every reward function is called once per generated answer as ``fn(record, completion, times)``:

- ``record``: the training record as written in the data file (every key: ``class``, ``options``, ``start``, ...)
  plus ``id``, ``answer`` (the reference: the record's last assistant message) and ``prompt`` (its last user
  message);
- ``completion``: the generated text (special tokens dropped);
- ``times``: per media item of the sample, the frame times in seconds (``None`` for an image);

and returns a float, or ``None`` where the rule does not apply to this record (no options, no class): a
``None`` is left out of that function's mean and counts 0 in the weighted sum.

Built-ins (1.0 right, 0.0 wrong):
``exact``: the answer equals the reference after normalisation (case, punctuation, articles; inside
``<answer>...</answer>`` when the text has one); ``choice``: multiple choice, the option the answer names
(``infer.choices.extract_choice``, the benchmark letter rule) is the reference's; options come from the
record's ``options`` / ``candidates`` list or from lettered lines (``A. ...``, ``(B) ...``) in the prompt;
``class``: records with a ``class`` (as ``prepare`` writes them), the answer names the right class among all
classes' answers; ``format``: the text is ``<think>...</think><answer>...</answer>``.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..infer.choices import LETTERS, ChoiceSpec, extract_choice
from ..infer.metrics import normalize_answer

RewardFn = Callable[[dict, str, list], "float | None"]

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_FORMAT = re.compile(r"\s*<think>.*?</think>\s*<answer>.*?</answer>\s*", re.DOTALL)
_OPTION_LINE = re.compile(r"^\s*[(\[]?([A-Z])[.):\]]\s*(.+?)\s*$")


def answer_text(text: str) -> str:
    """The answer part of a generated text: inside ``<answer>...</answer>`` when present, else all of it."""
    found = _ANSWER.search(text or "")
    return (found.group(1) if found else (text or "")).strip()


def exact_reward(record: dict, completion: str, times: list) -> float | None:
    return float(normalize_answer(answer_text(completion)) == normalize_answer(answer_text(record["answer"])))


def options_of(record: dict) -> list[str]:
    """The record's options: its ``options`` / ``candidates`` list, else consecutive lettered lines of the prompt."""
    listed = record.get("options") or record.get("candidates")
    if isinstance(listed, list) and listed:
        return [m.group(2) if (m := _OPTION_LINE.match(str(o))) else str(o) for o in listed]
    options = []
    for line in str(record.get("prompt", "")).splitlines():
        m = _OPTION_LINE.match(line)
        if m and m.group(1) == LETTERS[len(options)]:
            options.append(m.group(2))
    return options if len(options) >= 2 else []


def choice_reward(record: dict, completion: str, times: list) -> float | None:
    options = options_of(record)
    if not options:
        return None
    spec = ChoiceSpec(options, None)
    right = extract_choice(answer_text(record["answer"]), spec)
    if right is None:
        return None
    return float(extract_choice(answer_text(completion), spec) == right)


def class_reward(record: dict, completion: str, times: list) -> float | None:
    labels, answer = record.get("class_answers"), record.get("class_answer")
    if not labels or answer not in labels:
        return None
    spec = ChoiceSpec(labels, labels.index(answer), lettered=False)
    return float(extract_choice(answer_text(completion), spec) == spec.answer)


def format_reward(record: dict, completion: str, times: list) -> float | None:
    return float(_FORMAT.fullmatch(completion or "") is not None)


BUILTIN: dict[str, RewardFn] = {"exact": exact_reward, "choice": choice_reward, "class": class_reward, "format": format_reward}


@dataclass
class Reward:
    name: str
    fn: RewardFn
    weight: float = 1.0


def load_function(path: str) -> RewardFn:
    """``module:function`` (the module importable from the current directory or PYTHONPATH)."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"--reward {path}: cannot import {module_name!r} ({exc}); put it on PYTHONPATH or use a built-in: {', '.join(BUILTIN)}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"--reward {path}: {module_name} has no function {attr!r}")
    return fn


def parse_rewards(text: str) -> list[Reward]:
    """``name[=weight],...``: names are built-ins or ``module:function``; weights default to 1.0."""
    rewards = []
    for entry in filter(None, (e.strip() for e in text.split(","))):
        name, _, weight = entry.partition("=")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise ConfigError(f"--reward {entry}: the weight {weight!r} is not a number (e.g. --reward exact=1,format=0.2)") from None
        if name in BUILTIN:
            rewards.append(Reward(name, BUILTIN[name], value))
        elif ":" in name:
            rewards.append(Reward(name, load_function(name), value))
        else:
            raise ConfigError(f"--reward {name!r}: not a built-in ({', '.join(BUILTIN)}) nor a Python path module:function")
    if not rewards:
        raise ConfigError("--reward is empty: name at least one reward, e.g. --reward exact")
    if len({r.name for r in rewards}) != len(rewards):
        raise ConfigError(f"--reward {text}: a reward is named twice")
    return rewards


def score(rewards: Sequence[Reward], records: Sequence[dict], completions: Sequence[str], times: Sequence[list]) -> tuple[torch.Tensor, torch.Tensor]:
    """(total (N,), per function (N, F) with NaN where it returned None): the weighted sum skips the NaNs."""
    table = torch.full((len(completions), len(rewards)), float("nan"))
    for i, (record, completion, t) in enumerate(zip(records, completions, times)):
        for j, reward in enumerate(rewards):
            value = reward.fn(record, completion, t)
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                table[i, j] = float(value)
    weights = torch.tensor([r.weight for r in rewards])
    return torch.nansum(table * weights, dim=1), table
