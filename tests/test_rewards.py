"""GRPO reward rules: the built-ins, custom functions by Python path, weights and None."""

import math
import sys

import pytest

from fastvlm_video.errors import ConfigError
from fastvlm_video.train.rewards import choice_reward, class_reward, exact_reward, format_reward, options_of, parse_rewards, score


def test_exact_normalises_and_reads_the_answer_tag():
    record = {"answer": "Left."}
    assert exact_reward(record, "left", []) == 1.0
    assert exact_reward(record, "<think>it moves</think><answer>the LEFT</answer>", []) == 1.0
    assert exact_reward(record, "right", []) == 0.0


def test_choice_uses_the_benchmark_letter_rule_with_options_from_the_prompt_or_the_record():
    record = {"answer": "B", "prompt": "What happens?\nA. it rises\nB. it falls\nC. nothing"}
    assert options_of(record) == ["it rises", "it falls", "nothing"]
    assert choice_reward(record, "B. it falls", []) == 1.0
    assert choice_reward(record, "The answer is (B)", []) == 1.0
    assert choice_reward(record, "it falls", []) == 1.0  # the option's text names it too
    assert choice_reward(record, "A", []) == 0.0
    assert choice_reward(record, "no idea", []) == 0.0
    assert choice_reward({"answer": "C", "options": ["A. x", "B. y", "C. z"]}, "C", []) == 1.0
    assert choice_reward({"answer": "left", "prompt": "Which way?"}, "left", []) is None  # not multiple choice


def test_class_matches_among_all_class_answers():
    record = {"answer": "A squat.", "class_answers": ["A push-up.", "A squat."], "class_answer": "A squat."}
    assert class_reward(record, "squat", []) == 1.0
    assert class_reward(record, "push-up", []) == 0.0
    assert class_reward({"answer": "x"}, "x", []) is None


def test_format():
    assert format_reward({}, "<think>frames 1-3 move left</think> <answer>left</answer>", []) == 1.0
    assert format_reward({}, "<answer>left</answer>", []) == 0.0
    assert format_reward({}, "left <think>x</think><answer>y</answer>", []) == 0.0


def test_parse_weights_custom_functions_and_errors(tmp_path, monkeypatch):
    (tmp_path / "my_rewards.py").write_text("def late(record, completion, times):\n    return None if not times else times[0][-1]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    rewards = parse_rewards("exact=1,format=0.5,my_rewards:late=2")
    assert [(r.name, r.weight) for r in rewards] == [("exact", 1.0), ("format", 0.5), ("my_rewards:late", 2.0)]
    total, table = score(rewards, [{"answer": "up"}] * 2, ["up", "<think>a</think><answer>down</answer>"], [[[0.0, 1.5]], []])
    assert total.tolist() == [1.0 + 0.0 + 2 * 1.5, 0.0 + 0.5 + 0.0]
    assert math.isnan(table[1, 2]) and table[0, 2] == 1.5  # None: left out, 0 in the sum
    with pytest.raises(ConfigError, match="not a built-in"):
        parse_rewards("accuracy")
    with pytest.raises(ConfigError, match="cannot import"):
        parse_rewards("no_such_module_xyz:fn")
    with pytest.raises(ConfigError, match="no function 'nope'"):
        parse_rewards("my_rewards:nope")
    with pytest.raises(ConfigError, match="not a number"):
        parse_rewards("exact=high")
    sys.modules.pop("my_rewards", None)
