"""The demo end to end on a few clips: data, training, evaluation report and metrics.json."""

import json

from fastvlm_video.demo.run import run_demo
from fastvlm_video.demo.synthetic import DIRECTIONS, moving_square_frames


def test_no_single_frame_reveals_the_direction():
    """Where the square starts and ends is spread the same way for every direction."""
    import numpy as np

    def corner(frame):
        mask = frame[..., 0] > 128
        return np.argwhere(mask).mean(0)  # centre of the red pixels (wrap aside, a position summary)

    summaries = {}
    for direction in DIRECTIONS:
        rng = np.random.default_rng(1)
        clips = [moving_square_frames(direction, rng, 16, 64, 32, travel=1.0) for _ in range(300)]
        first = np.array([corner(c[0]) for c in clips])
        last = np.array([corner(c[-1]) for c in clips])
        summaries[direction] = np.concatenate([first.mean(0), last.mean(0)])
        assert first.std(0).min() > 8  # starts spread over the frame, not fixed
    spread = np.ptp(np.array(list(summaries.values())), axis=0)
    assert spread.max() < 6, summaries  # no direction has its own typical first/last frame


def test_demo_runs_end_to_end(tmp_path):
    metrics = run_demo(tmp_path, num_video_frames=2, epochs=1, splits={"train": 8, "val": 4, "test": 4})
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == metrics
    assert {"test_accuracy", "chance", "num_video_frames", "train_seconds"} <= set(metrics)
    assert metrics["num_test"] == 4 and metrics["num_video_frames"] == 2 and 0 <= metrics["test_accuracy"] <= 1
    assert (tmp_path / "eval" / "report.html").is_file() and (tmp_path / "model" / "video_config.json").is_file()
    rows = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(len(r["timestamps"][0]) == 2 for r in rows)
