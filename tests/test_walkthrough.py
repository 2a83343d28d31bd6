"""The README's walk-through (tiny-model -> prepare from class folders -> check -> train -> evaluate ->
predict), run as written on generated clips: the commands are read from README.md, so the README and
this test cannot drift apart. Also: the README's wrong-folder example is the error a user gets."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from fastvlm_video.cli import main
from fastvlm_video.demo.synthetic import moving_square_frames, write_video

README = Path(__file__).resolve().parents[1] / "README.md"
CLASSES = {"squat": "up", "pushup": "down"}  # class folder -> the motion its clips show


def walkthrough_commands() -> list[list[str]]:
    """The argv of each command of README's walk-through block (continuation lines joined)."""
    match = re.search(r"<!-- walkthrough -->\s*```bash\n(.*?)```", README.read_text(), re.S)
    assert match, "README.md lost its walk-through block"
    text = match.group(1).replace("\\\n", " ")
    commands = [shlex.split(line, comments=True) for line in text.splitlines()]
    commands = [c for c in commands if c]
    assert all(c[0] == "fastvlm-video" for c in commands), commands
    return [c[1:] for c in commands]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """clips/<class>/<class>_0N.mp4, as a user's folder per class (6 clips each, 64x48, 16 frames)."""
    root = tmp_path_factory.mktemp("walkthrough")
    rng = np.random.default_rng(0)
    for name, direction in CLASSES.items():
        for i in range(1, 7):
            write_video(root / "clips" / name / f"{name}_{i:02d}.mp4", moving_square_frames(direction, rng)[:, :48], fps=8, gop=8)
    return root


def test_readme_walkthrough_runs_as_written(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    commands = walkthrough_commands()
    assert [c[0] for c in commands] == ["tiny-model", "prepare", "check", "train", "evaluate", "predict"]
    for argv in commands:
        assert main(argv) == 0, (argv, capsys.readouterr().err[-2000:])
    assert (workdir / "runs/ft/model.safetensors").is_file()
    metrics = json.loads((workdir / "runs/ft/eval/metrics.json").read_text())
    assert metrics["num_scored"] >= 1 and metrics["num_errors"] == 0
    assert capsys.readouterr().out.strip()  # predict printed an answer (random model: any text)


def test_the_common_wrong_folder_is_one_error_before_the_model_loads(workdir, monkeypatch, capsys):
    """README: `--media_folder data` (the JSON's folder) names examples and the folder that works. The
    model path does not exist, so reaching the model would give another error: the check comes first."""
    monkeypatch.chdir(workdir)
    if not (workdir / "data/test.json").is_file():
        assert main(walkthrough_commands()[1]) == 0  # prepare
        capsys.readouterr()
    argv = ["evaluate", "--model", "no/such/model", "--data", "data/test.json", "--media_folder", "data", "--out", "runs/x"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "do not exist under --media_folder data, e.g. data/" in err
    assert err.rstrip().endswith("they exist under clips: pass --media_folder clips")
