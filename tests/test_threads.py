"""Torch threads for CPU training follow the free cores: CPU time of other processes over the last
window, our own process tree (DataLoader workers included) left out."""

import subprocess
import sys
from unittest import mock

import pytest
import torch

from fastvlm_video.train import threads
from fastvlm_video.train.threads import AdaptiveThreads, CpuSample, choose_threads, others_load, sample_cpu


def test_threads_follow_the_free_cores():
    assert choose_threads(others=0.1, cores=2) == 2  # quiet: use both
    assert choose_threads(others=1.0, cores=2) == 1  # one busy neighbour: 1 thread, never waits on a descheduled sibling
    assert choose_threads(others=14.0, cores=2) == 1  # never below 1
    assert choose_threads(others=3.0, cores=8) == 5


def test_other_processes_load_is_the_machines_less_our_own():
    # 10 s: the cores were busy 14 CPU-s, 10 of them ours (training threads + DataLoader workers)
    assert others_load(CpuSample(wall=0, busy=10, own=4), CpuSample(wall=10, busy=24, own=14)) == pytest.approx(0.4)
    assert others_load(CpuSample(0, 0, 0), CpuSample(1, 1.0, 1.2)) == 0  # accounting skew is not negative load


def test_own_cpu_time_counts_worker_processes():
    """A child's CPU time (a DataLoader worker's decoding) is ours, not a neighbour's: the load average
    counted it as another process's and dropped a quiet demo to 1 thread."""
    work = "import time\nwhile time.process_time() < 0.3: pass\nprint('done', flush=True)\nimport sys; sys.stdin.read()"
    before = sample_cpu()
    child = subprocess.Popen([sys.executable, "-c", work], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "done"  # alive, 0.3 CPU-s spent
        alive = sample_cpu()
    finally:
        child.communicate("")
    reaped = sample_cpu()
    assert alive.own - before.own >= 0.25  # (/proc counts 10 ms ticks)
    assert reaped.own - before.own >= 0.25  # still counted once the worker has exited


def test_callback_sets_torch_threads_from_each_window(monkeypatch):
    before = torch.get_num_threads()
    samples = iter([
        CpuSample(0, 0, 0), CpuSample(1, 1.0, 0),  # start: a neighbour holds a core -> 1 thread
        CpuSample(11, 21.0, 10),  # steps 1-2: 20 busy CPU-s, 10 ours -> still 1 thread
        CpuSample(21, 32.0, 29),  # steps 3-4: the neighbour left, our 19 CPU-s (threads + workers) fill the cores -> 2
    ])  # fmt: skip
    monkeypatch.setattr(threads, "sample_cpu", lambda: next(samples))
    monkeypatch.setattr(threads.time, "sleep", lambda s: None)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1})
    callback = AdaptiveThreads(every=2)
    try:
        callback.on_train_begin(None, None, None)
        assert torch.get_num_threads() == 1
        callback.on_step_end(None, mock.Mock(global_step=1), None)  # not a checking step: no sample taken
        callback.on_step_end(None, mock.Mock(global_step=2), None)
        assert torch.get_num_threads() == 1
        callback.on_step_end(None, mock.Mock(global_step=4), None)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_pinned_threads_are_set_once_and_never_adapted(monkeypatch):
    from fastvlm_video.errors import ConfigError
    from fastvlm_video.train.threads import cpu_thread_callbacks

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        assert cpu_thread_callbacks(1) == [] and torch.get_num_threads() == 1  # a reproducible setting
        assert [type(c) for c in cpu_thread_callbacks(0)] == [AdaptiveThreads]
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert cpu_thread_callbacks(0) == []  # the user's count wins
        with pytest.raises(ConfigError, match="--cpu_threads -1"):
            cpu_thread_callbacks(-1)
    finally:
        torch.set_num_threads(before)
