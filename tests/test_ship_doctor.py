"""doctor: every line OK/WARN/FAIL; decoders checked on a real clip; a broken decoder is a FAIL with its fix."""

from __future__ import annotations

import re

from fastvlm_video.cli import main
from fastvlm_video.ship import doctor


def test_doctor_on_this_machine(capsys, tmp_path):
    assert main(["doctor", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    checks = lines[:-2]
    assert all(re.match(r"^(OK|WARN|FAIL) ", line) for line in checks)
    names = {line.split()[1] for line in checks}
    assert {
        "python",
        "torch",
        "transformers",
        "timm",
        "av",
        "decord",
        "mlx",
        "decode/pyav",
        "cpu",
        "disk",
        "smoke",
    } <= names
    assert any(re.match(r"OK\s+decode/pyav\s+frames \[\d+, \d+, \d+, \d+\]", line) for line in checks)
    assert any(re.match(r"OK\s+smoke run\s+tiny model: decode \+ train step", line) for line in checks)
    assert lines[-1].endswith("ready")


def test_a_broken_decoder_fails_with_a_fix(monkeypatch, tmp_path):
    from fastvlm_video.media import video

    def broken(*args, **kwargs):
        raise RuntimeError("codec missing")

    monkeypatch.setattr(video, "load_video_tensor", broken)
    checks = list(doctor.check_decoders(tmp_path / "clip.mp4"))
    assert checks and all(
        c.status == "FAIL" and "codec missing" in c.detail and "--force-reinstall" in c.fix for c in checks
    )


def test_disk_and_versions_say_what_to_do(monkeypatch, tmp_path):
    assert doctor.check_disk(tmp_path / "not" / "yet").status in ("OK", "WARN")
    monkeypatch.setattr(doctor, "_version", lambda dist: "0.1" if dist == "timm" else "99.0")
    timm = next(c for c in doctor.check_versions() if c.name == "timm")
    assert timm.status == "FAIL" and "timm>=1.0.20" in timm.fix
