"""The suite's own hygiene (issue 19 item 9): bitwise comparisons of computed floats run on one thread."""

from __future__ import annotations

import ast
from pathlib import Path

import torch

TESTS = Path(__file__).parent
# Names that mark a computed tensor (a forward pass), as opposed to stored weights or decoded pixels,
# which are bitwise-stable whatever the thread count.
COMPUTED = ("logits", "_out", "got", "want")


def _bitwise_on_computed(function: ast.FunctionDef) -> bool:
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.equal":
            if any(mark in ast.unparse(arg) for arg in node.args for mark in COMPUTED):
                return True
            if len(node.args) == 2 and {ast.unparse(a) for a in node.args} == {"a", "b"}:
                return True  # two forward passes named a and b
    return False


def _requests_pinned_threads(function: ast.FunctionDef) -> bool:
    if "pinned_threads" in [a.arg for a in function.args.args]:
        return True
    return any("pinned_threads" in ast.unparse(d) for d in function.decorator_list)


def test_bitwise_comparisons_of_computed_floats_pin_the_threads():
    offenders = []
    for path in sorted(TESTS.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                if _bitwise_on_computed(node) and not _requests_pinned_threads(node):
                    offenders.append(f"{path.name}::{node.name}")
    assert not offenders, f"torch.equal on computed tensors without the pinned_threads fixture: {offenders}"


def test_pinned_threads_runs_one_thread(pinned_threads):
    assert pinned_threads == 1 and torch.get_num_threads() == 1


def test_threads_are_reset_between_tests():
    from conftest import SUITE_THREADS

    assert torch.get_num_threads() == SUITE_THREADS
    torch.set_num_threads(1)  # leaked on purpose: the autouse fixture undoes it
