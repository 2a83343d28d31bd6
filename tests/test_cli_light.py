"""Cheap answers first: for every subcommand of the real parser, a mistyped flag gets a one-line usage error
naming it (exit 2) and ``--help`` its text with an example (exit 0), both without importing torch,
transformers, timm, av or PIL. Each case is one ``python -m fastvlm_video`` subprocess whose exit hook
reports the heavy modules loaded; all of them run once, a few at a time, before the checks."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fastvlm_video.cli import build_parser, load_commands

HEAVY = ("torch", "transformers", "timm", "av", "PIL")
MARK = "HEAVY-MODULES:"
# Runs ``python -m fastvlm_video ARGS``; at exit, prints which heavy modules were imported (last stdout line).
WRAPPER = f"""
import atexit, runpy, sys
atexit.register(lambda: print({MARK!r}, [m for m in {HEAVY!r} if m in sys.modules], flush=True))
sys.argv[0] = "fastvlm_video"
runpy.run_module("fastvlm_video", run_name="__main__", alter_sys=True)
"""
SRC = Path(__file__).resolve().parents[1] / "src"


def subcommands() -> list[str]:
    """The subcommands as the real top-level parser lists them."""
    parser = build_parser(load_commands())
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(action.choices)


COMMANDS = subcommands()
CASES = [(command, flag) for command in COMMANDS for flag in ("--no_such_flag", "--help")]


def run_case(*argv: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]), "COLUMNS": "100"}
    proc = subprocess.run([sys.executable, "-c", WRAPPER, *argv], capture_output=True, text=True, env=env, timeout=300)
    lines = proc.stdout.splitlines()
    heavy = next((line for line in reversed(lines) if line.startswith(MARK)), None)
    out = "\n".join(line for line in lines if not line.startswith(MARK))
    return {"rc": proc.returncode, "out": out, "err": proc.stderr, "heavy": None if heavy is None else heavy[len(MARK):].strip()}


@pytest.fixture(scope="module")
def results() -> dict:
    """Every (command, flag) case, run in parallel once for the whole module."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(CASES, pool.map(lambda case: run_case(*case), CASES)))


def test_the_commands_are_found():
    assert {"train", "predict", "evaluate", "budget", "cache", "check", "clean", "frames"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_mistyped_flag_is_one_line_exit_2_without_heavy_imports(command, results):
    r = results[(command, "--no_such_flag")]
    assert r["rc"] == 2, r
    lines = r["err"].strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0] and "--no_such_flag" in lines[0], r["err"]
    assert r["heavy"] == "[]", f"{command} --no_such_flag imported {r['heavy']}"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_an_example_without_heavy_imports(command, results):
    r = results[(command, "--help")]
    assert r["rc"] == 0, r
    assert "examples:" in r["out"] and f"fastvlm-video {command} " in r["out"].split("examples:", 1)[1], r["out"]
    assert "Traceback" not in r["err"]
    assert r["heavy"] == "[]", f"{command} --help imported {r['heavy']}"


@pytest.mark.parametrize("flag, code", [("--no_such_flag", 2), ("--help", 0)])
def test_the_top_level_answers_without_heavy_imports(flag, code):
    r = run_case(flag)
    assert r["rc"] == code and r["heavy"] == "[]", r
    assert ("--no_such_flag" in r["err"]) if code else ("examples:" in r["out"])


def test_a_mistyped_train_flag_among_valid_ones_is_named_with_the_closest():
    r = run_case("train", "--model_name_or_path=m", "--learning_rate", "1e-4", "--lerning_rate", "1", "--freeze_llm", "true")
    assert r["rc"] == 2 and r["heavy"] == "[]", r
    assert r["err"].strip() == ("fastvlm-video train: error: unrecognized argument --lerning_rate; did you mean --learning_rate? "
                                "(see fastvlm-video train --help)"), r["err"]


def test_a_mistyped_flag_wins_over_a_missing_required_argument():
    r = run_case("evaluate", "--model", "m", "--no_such_flag")
    assert r["rc"] == 2 and "--no_such_flag" in r["err"] and "required" not in r["err"], r


def test_the_saved_train_flags_are_the_real_parsers(monkeypatch):
    """train_flags.json matches the installed transformers and train/args.py, flag for flag and in --help
    (regenerate: python -m fastvlm_video.train.flag_snapshot)."""
    from fastvlm_video.train import flag_snapshot
    from fastvlm_video.train.args import build_parser

    real = build_parser()
    assert json.loads(flag_snapshot.SNAPSHOT.read_text()) == json.loads(json.dumps(flag_snapshot.describe(real))), (
        "train_flags.json is stale: python -m fastvlm_video.train.flag_snapshot")
    monkeypatch.setenv("COLUMNS", "100")
    assert flag_snapshot.load().format_help() == real.format_help()


def test_a_snapshot_for_another_install_is_not_used(tmp_path, monkeypatch):
    from fastvlm_video.train import flag_snapshot

    stale = json.loads(flag_snapshot.SNAPSHOT.read_text()) | {"transformers": "0.0.1"}
    (tmp_path / "train_flags.json").write_text(json.dumps(stale))
    monkeypatch.setattr(flag_snapshot, "SNAPSHOT", tmp_path / "train_flags.json")
    assert flag_snapshot.load() is None
    monkeypatch.setattr(flag_snapshot, "SNAPSHOT", tmp_path / "missing.json")
    assert flag_snapshot.load() is None
