"""The demo end to end on a few clips: data, training, evaluation report and metrics.json."""

import json

from fastvlm_video.demo.run import run_demo
from fastvlm_video.demo.synthetic import DIRECTIONS
from fastvlm_video.demo.task import CLIP_FRAMES, motion_clip
from fastvlm_video.media.sampling import uniform_indices


def test_no_single_frame_reveals_the_direction():
    """Where the square starts and ends is spread the same way for every direction."""
    import numpy as np

    def corner(frame):
        mask = frame[..., 0] > 128
        return np.argwhere(mask).mean(0)  # centre of the red pixels (wrap aside, a position summary)

    summaries = {}
    for direction in DIRECTIONS:
        rng = np.random.default_rng(1)
        clips = [motion_clip(direction, rng) for _ in range(300)]
        first = np.array([corner(c[0]) for c in clips])
        last = np.array([corner(c[-1]) for c in clips])
        summaries[direction] = np.concatenate([first.mean(0), last.mean(0)])
        assert first.std(0).min() > 8  # starts spread over the frame, not fixed
    spread = np.ptp(np.array(list(summaries.values())), axis=0)
    assert spread.max() < 6, summaries  # no direction has its own typical first/last frame


def test_default_frames_are_evenly_spaced_in_a_demo_clip():
    """8 uniform samples of a demo clip land on every 2nd frame: the square moves the same between them."""
    assert list(uniform_indices(CLIP_FRAMES, 8)) == list(range(0, CLIP_FRAMES, 2))


def test_demo_runs_end_to_end(tmp_path):
    metrics = run_demo(tmp_path, num_video_frames=2, epochs=1, splits={"train": 8, "val": 4, "test": 4})
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == metrics
    assert {"test_accuracy", "chance", "num_video_frames", "train_seconds"} <= set(metrics)
    assert metrics["num_test"] == 4 and metrics["num_video_frames"] == 2 and 0 <= metrics["test_accuracy"] <= 1
    assert (tmp_path / "eval" / "report.html").is_file() and (tmp_path / "model" / "video_config.json").is_file()
    rows = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(len(r["timestamps"][0]) == 2 for r in rows)


def test_tiny_model_initialises_at_one_over_sqrt_width():
    """HF's 0.02 is for ~2,500-wide models; the demo's 128-wide LLM needs ~0.088 to learn frame order in time."""
    from fastvlm_video.model.tiny import build_tiny_model, build_tiny_tokenizer

    model = build_tiny_model(build_tiny_tokenizer(), text_hidden_size=128)
    assert model.config.text_config.initializer_range == 128**-0.5
    q_proj = model.model.language_model.layers[0].self_attn.q_proj.weight
    projector = model.model.multi_modal_projector.linear_1.weight
    for weights in (q_proj, projector):
        assert abs(weights.std().item() - 128**-0.5) < 0.01
