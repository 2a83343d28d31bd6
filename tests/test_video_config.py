"""VideoConfig validates every setting at start-up with a message naming the flag and what to use."""

from __future__ import annotations

import math

import pytest

from fastvlm_video.cli import main
from fastvlm_video.errors import ConfigError
from fastvlm_video.video_config import VideoConfig


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"image_size": 0}, "image_size .* positive multiple of 64.*got 0"),
        ({"image_size": -64}, "image_size .* positive multiple of 64.*got -64"),
        ({"image_size": 100}, "image_size .* positive multiple of 64.*got 100"),
        ({"image_size": 64.0}, "image_size .* whole number.*got 64.0"),
        ({"num_frames": 0}, "num_frames .*--num_video_frames.* >= 1, got 0"),
        ({"num_frames": 2.5}, "num_frames .* whole number"),
        ({"max_frames": 0}, "max_frames .* >= 1, got 0"),
        ({"fps": 0}, "fps .*--video_fps.* > 0"),
        ({"fps": -1.0}, "fps .* > 0"),
        ({"fps": math.nan}, "fps .* finite"),
        ({"fps": math.inf}, "fps .* finite"),
        ({"num_frames": True}, "num_frames .* whole number"),
    ],
)
def test_bad_settings_fail_validation_with_a_clear_message(settings, message):
    with pytest.raises(ConfigError, match=message):
        VideoConfig(**settings)
    with pytest.raises(ValueError):  # a ConfigError is a ValueError too (callers that caught ValueError still do)
        VideoConfig(**settings)


def test_good_settings_pass():
    assert VideoConfig(image_size=64, num_frames=1, fps=0.5, max_frames=1).tokens_per_frame == 1


@pytest.mark.parametrize("flag,value", [("--image_size", "0"), ("--image_size", "-64"), ("--num_video_frames", "0")])
def test_check_refuses_bad_frame_settings_in_one_line(tmp_path, capsys, flag, value):
    data = tmp_path / "d.json"
    data.write_text("[]")
    assert main(["check", "--data", str(data), "--media_folder", str(tmp_path), flag, value]) != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and flag.lstrip("-").replace("num_video_frames", "num_frames") in err
