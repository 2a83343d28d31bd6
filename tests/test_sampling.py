import numpy as np
import pytest

from fastvlm_video.media.sampling import fps_indices, uniform_indices, window


def test_uniform_indices_span_the_whole_clip():
    assert uniform_indices(100, 8)[0] == 0 and uniform_indices(100, 8)[-1] == 99
    assert uniform_indices(1, 1) == [0]


def test_uniform_indices_are_the_seeds_exactly():
    """The seed samples ``np.linspace(0, n-1, N, dtype=int)`` (truncated): a model fine-tuned with its code
    must see the same frames here, on every clip length (132 frames: 18, not 19, is the 2nd frame)."""
    assert uniform_indices(132, 8) == [0, 18, 37, 56, 74, 93, 112, 131]
    for n in range(1, 400):
        for frames in (1, 2, 3, 4, 8, 16, 32):
            assert uniform_indices(n, frames) == np.linspace(0, n - 1, frames, dtype=int).tolist(), (n, frames)


def test_short_clip_repeats_frames():
    assert uniform_indices(3, 8) == [0, 0, 0, 0, 1, 1, 1, 2]  # the seed's truncation, first frame favoured
    assert uniform_indices(1, 4) == [0, 0, 0, 0]


@pytest.mark.parametrize("bad", [(0, 8), (10, 0)])
def test_uniform_rejects_empty(bad):
    with pytest.raises(ValueError):
        uniform_indices(*bad)


def test_fps_indices_tick_and_cap():
    ts = [i / 30 for i in range(300)]  # 10 s at 30 fps
    assert fps_indices(ts, 1.0, 64) == [0, 30, 60, 90, 120, 150, 180, 210, 240, 270]
    capped = fps_indices(ts, 2.0, 5)  # 20 ticks, every 15 frames, thinned like uniform sampling of the ticks
    assert capped == [15 * i for i in uniform_indices(20, 5)] == [0, 60, 135, 210, 285]


def test_window_selects_segment():
    ts = [i * 0.5 for i in range(20)]  # 0 .. 9.5 s
    assert window(ts, 2.0, 4.0) == (4, 9)
    assert window(ts, None, None) == (0, 20)


def _index(n: int, keyframes: list[int], fps: float = 10.0):
    from fastvlm_video.media.video import VideoIndex

    return VideoIndex(path="x.mp4", timestamps=[i / fps for i in range(n)], keyframes=keyframes, width=64, height=48)


def test_keyframe_plan_snaps_back_and_falls_back_exactly():
    from fastvlm_video.media.video import plan_frames

    plan = plan_frames(_index(100, [0, 30, 60, 90]), num_frames=4, frame_sampling="keyframe")
    assert plan.indices == [0, 30, 60, 90] and plan.fallbacks == 0 and not plan.exact  # targets 0, 33, 66, 99
    single = plan_frames(_index(100, [0]), num_frames=4, frame_sampling="keyframe")
    assert single.indices == [0, 33, 66, 99] and single.fallbacks == 3  # never four copies of frame 0


def test_every_mode_returns_indices_inside_the_segment():
    from fastvlm_video.media.video import plan_frames

    index = _index(100, [0, 30, 60, 90])
    for mode in ("uniform", "fps", "keyframe"):
        plan = plan_frames(index, num_frames=4, frame_sampling=mode, fps=2.0, start=3.5, end=7.0)
        assert all(35 <= i <= 70 for i in plan.indices), mode
