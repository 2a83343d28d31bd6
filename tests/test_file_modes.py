"""Every writer of a checkpoint leaves its weights as readable as its json files (file_modes.py):
safetensors creates them 0600, a plain new file gets ``0666 & ~umask``."""

from __future__ import annotations

import stat


def modes(folder) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir() if p.is_file()}


def test_the_demo_starting_checkpoint_is_readable_like_its_config(tmp_path, monkeypatch):
    import fastvlm_video.demo.run as demo

    monkeypatch.setattr(demo, "train", lambda *args: None)  # only the starting checkpoint is written
    demo.train_image_stage(tmp_path, tmp_path / "data", epochs=1)
    found = modes(tmp_path / "init")
    assert found["config.json"] & 0o044 and found["model.safetensors"] == found["config.json"], found
