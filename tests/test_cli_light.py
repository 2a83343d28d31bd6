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


def run_case(*argv: str, flag_cache: Path | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]), "COLUMNS": "100"}
    env["FASTVLM_VIDEO_FLAG_CACHE"] = str(flag_cache) if flag_cache else "off"
    proc = subprocess.run([sys.executable, "-c", WRAPPER, *argv], capture_output=True, text=True, env=env, timeout=300)
    lines = proc.stdout.splitlines()
    heavy = next((line for line in reversed(lines) if line.startswith(MARK)), None)
    out = "\n".join(line for line in lines if not line.startswith(MARK))
    return {"rc": proc.returncode, "out": out, "err": proc.stderr, "heavy": None if heavy is None else heavy[len(MARK):].strip()}


@pytest.fixture(scope="module")
def flag_cache(tmp_path_factory) -> Path:
    """A train-flags cache for the subprocesses; filled here when the packaged snapshot is for another
    transformers version (as the first `train` run on such an install fills the user's)."""
    from fastvlm_video.train import flag_snapshot

    folder = tmp_path_factory.mktemp("flag_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(flag_snapshot.CACHE_ENV, str(folder))
        if flag_snapshot.load() is None:
            from fastvlm_video.train.args import build_parser as train_parser

            flag_snapshot.remember(train_parser())
    return folder


@pytest.fixture(scope="module")
def results(flag_cache) -> dict:
    """Every (command, flag) case, run in parallel once for the whole module."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(CASES, pool.map(lambda case: run_case(*case, flag_cache=flag_cache), CASES)))


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


def test_a_mistyped_train_flag_among_valid_ones_is_named_with_the_closest(flag_cache):
    argv = ["train", "--model_name_or_path=m", "--learning_rate", "1e-4", "--lerning_rate", "1", "--freeze_llm", "true"]
    r = run_case(*argv, flag_cache=flag_cache)
    assert r["rc"] == 2 and r["heavy"] == "[]", r
    assert r["err"].strip() == ("fastvlm-video train: error: unrecognized argument --lerning_rate; did you mean --learning_rate? "
                                "(see fastvlm-video train --help)"), r["err"]


def test_a_mistyped_flag_wins_over_a_missing_required_argument():
    r = run_case("evaluate", "--model", "m", "--no_such_flag")
    assert r["rc"] == 2 and "--no_such_flag" in r["err"] and "required" not in r["err"], r


def test_the_packaged_train_flags_are_the_real_parsers(monkeypatch):
    """train_flags.json matches train/args.py and, for the transformers it names, the real parser flag for
    flag and in --help (regenerate: python -m fastvlm_video.train.flag_snapshot)."""
    from fastvlm_video.train import flag_snapshot
    from fastvlm_video.train.args import build_parser as train_parser

    packaged, stamp = json.loads(flag_snapshot.SNAPSHOT.read_text()), flag_snapshot.fingerprint()
    assert packaged["args_sha256"] == stamp["args_sha256"], "train/args.py changed: python -m fastvlm_video.train.flag_snapshot"
    if packaged["transformers"] != stamp["transformers"]:
        pytest.skip(f"train_flags.json is for transformers {packaged['transformers']}, {stamp['transformers']} is installed")
    real = train_parser()
    assert packaged == json.loads(json.dumps(flag_snapshot.describe(real))), "python -m fastvlm_video.train.flag_snapshot"
    monkeypatch.setenv("COLUMNS", "100")
    assert flag_snapshot.load().format_help() == real.format_help()


def test_another_install_uses_the_real_parser_once_then_its_cached_flags(tmp_path, monkeypatch, capsys):
    """A packaged snapshot for another transformers is not used: the first train run parses with the real
    parser (same one-line error) and caches the flags; the next runs use them."""
    from fastvlm_video.cli import main
    from fastvlm_video.train import flag_snapshot

    stale = json.loads(flag_snapshot.SNAPSHOT.read_text()) | {"transformers": "0.0.1"}
    (tmp_path / "train_flags.json").write_text(json.dumps(stale))
    monkeypatch.setattr(flag_snapshot, "SNAPSHOT", tmp_path / "train_flags.json")
    monkeypatch.setenv(flag_snapshot.CACHE_ENV, str(tmp_path / "cache"))
    assert flag_snapshot.load() is None
    assert main(["train", "--model_name_or_path", "m", "--lerning_rate", "1"]) == 2
    assert capsys.readouterr().err.strip() == ("fastvlm-video train: error: unrecognized argument --lerning_rate; did you mean "
                                               "--learning_rate? (see fastvlm-video train --help)")  # fmt: skip
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1
    assert "--learning_rate" in flag_snapshot.known_flags(flag_snapshot.load())
    (next((tmp_path / "cache").glob("*.json"))).write_text("{damaged")
    assert flag_snapshot.load() is None
    monkeypatch.setenv(flag_snapshot.CACHE_ENV, "off")
    assert main(["train", "--help"]) == 0 and "--learning_rate" in capsys.readouterr().out
    assert not (tmp_path / "cache" / "off").exists()
