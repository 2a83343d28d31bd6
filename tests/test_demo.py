"""The demo end to end on a few clips: data, training, evaluation report and metrics.json."""

import json

from fastvlm_video.demo.run import run_demo
from fastvlm_video.demo.synthetic import DIRECTIONS, moving_square_frames


def test_no_single_frame_reveals_the_direction():
    """Start and end positions are uniform whatever the direction (wrap-around motion)."""
    import numpy as np

    rng = np.random.default_rng(0)
    for direction in DIRECTIONS:
        clip = moving_square_frames(direction, rng, num_frames=16, size=64, square=32)
        red = clip[..., 0] > 128
        # wrap-around over exactly one frame width: the last step returns next to the start
        assert red[0].sum() == red[-1].sum() == 32 * 32
    first = [np.argwhere(moving_square_frames("left", np.random.default_rng(s), 16, 64, 32)[0, ..., 0] > 128).min(0) for s in range(50)]
    assert len({tuple(p) for p in first}) > 30  # starts are spread, not fixed


def test_demo_runs_end_to_end(tmp_path):
    metrics = run_demo(tmp_path, num_video_frames=2, epochs=1, splits={"train": 8, "val": 4, "test": 4})
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == metrics
    assert {"test_accuracy", "chance", "num_video_frames", "train_seconds"} <= set(metrics)
    assert metrics["num_test"] == 4 and metrics["num_video_frames"] == 2 and 0 <= metrics["test_accuracy"] <= 1
    assert (tmp_path / "eval" / "report.html").is_file() and (tmp_path / "model" / "video_config.json").is_file()
    rows = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(len(r["timestamps"][0]) == 2 for r in rows)
