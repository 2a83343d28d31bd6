"""Torch threads for CPU training follow the free cores (load average less our own threads)."""

from unittest import mock

import pytest
import torch

from fastvlm_video.train.threads import AdaptiveThreads, choose_threads


def test_threads_follow_the_free_cores():
    assert choose_threads(cores=2, load=0.1) == 2  # quiet: use both
    assert choose_threads(cores=2, load=1.0) == 1  # one busy neighbour: 1 thread, never waits on a descheduled sibling
    assert choose_threads(cores=2, load=14.0) == 1  # never below 1
    assert choose_threads(own_threads=2, cores=2, load=2.2) == 2  # the load is our own
    assert choose_threads(own_threads=2, cores=8, load=5.0) == 5


def test_callback_sets_torch_threads_and_rechecks(monkeypatch):
    before = torch.get_num_threads()
    callback = AdaptiveThreads(every=2)
    try:
        with mock.patch("os.getloadavg", return_value=(50.0, 0, 0)):
            callback.on_train_begin(None, None, None)
        assert torch.get_num_threads() == 1
        with mock.patch("os.getloadavg", return_value=(1.0, 0, 0)), mock.patch("os.sched_getaffinity", return_value={0, 1}):
            callback.on_step_end(None, mock.Mock(global_step=1), None)  # not a checking step
            assert torch.get_num_threads() == 1
            callback.on_step_end(None, mock.Mock(global_step=2), None)  # the load of 1 is our own thread
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_pinned_threads_are_set_once_and_never_adapted(monkeypatch):
    from fastvlm_video.errors import ConfigError
    from fastvlm_video.train.threads import cpu_thread_callbacks

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        assert cpu_thread_callbacks(1) == [] and torch.get_num_threads() == 1  # the demo's reproducible setting
        assert [type(c) for c in cpu_thread_callbacks(0)] == [AdaptiveThreads]
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert cpu_thread_callbacks(0) == []  # the user's count wins
        with pytest.raises(ConfigError, match="--cpu_threads -1"):
            cpu_thread_callbacks(-1)
    finally:
        torch.set_num_threads(before)
