"""The CLI as a person meets it: argument mistakes are reported before torch is imported (fast), and
doctor / predict print no progress bars or library warnings."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fastvlm_video.cli import load_commands

CHECK = """
import sys
from fastvlm_video.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as exc:  # argparse: a missing required argument
    rc = exc.code
print("RESULT", rc, sorted(m for m in ("torch", "transformers", "av", "numpy") if m in sys.modules))
"""


def cli(*argv: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHECK, *argv], capture_output=True, text=True, cwd=cwd, timeout=300)


def result(proc: subprocess.CompletedProcess) -> str:
    return next(line for line in proc.stdout.splitlines() if line.startswith("RESULT"))


# Every command, train included (its flags come from train/train_flags.json; tests/test_cli_light.py).
@pytest.mark.parametrize("command", sorted(load_commands()))
def test_a_mistyped_flag_fails_before_torch_is_imported(command):
    proc = cli(command, "--bogus")
    assert result(proc) == "RESULT 2 []", proc.stderr
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr


def test_an_existing_output_folder_fails_before_torch_is_imported(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    for argv in (["tiny-model", str(tmp_path / "taken")], ["export", str(tmp_path), str(tmp_path / "taken")]):
        proc = cli(*argv)
        assert result(proc) == "RESULT 1 []" and "exists and is not empty" in proc.stderr, (argv, proc.stderr)


def test_predict_prints_the_answer_only(tiny_model_dir, media_folder, tmp_path):
    """On an Apple-layout folder too (transformers warns about llava_qwen2 there, and shows loading bars)."""
    from fastvlm_video.cli import main

    assert main(["export", str(tiny_model_dir), str(tmp_path / "apple"), "--format", "apple"]) == 0
    for model in (tiny_model_dir, tmp_path / "apple"):
        proc = cli("predict", "--model", str(model), "--input", str(media_folder / "left.mp4"), "--prompt", "Where?", "--max_new_tokens", "3")
        assert result(proc).startswith("RESULT 0"), proc.stderr
        noise = [line for line in proc.stderr.splitlines() if "%|" in line or "Warning" in line or "You are using" in line]
        assert not noise, proc.stderr


def test_doctor_prints_no_progress_bars(tmp_path):
    proc = cli("doctor", "--out", str(tmp_path))
    assert result(proc).startswith("RESULT"), proc.stderr
    output = proc.stdout + proc.stderr
    assert "smoke" in output.lower() and "%|" not in output and "Warning" not in output, output
