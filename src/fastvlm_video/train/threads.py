"""Torch threads for CPU training: as many as there are cores actually free, re-checked while training.

Intra-op threads wait for each other at every op; when another process holds a core, the thread on it
is descheduled and all its siblings wait. Measured on the demo's model (benchmarks/bench_threads.py,
docs/performance.md): beside one CPU-bound process a step with 2 threads on 2 cores took 3x longer
than with 1 thread, while alone 2 threads were 1.5x faster. So the count follows the free cores: the
cores' busy time over the last window less this process tree's own CPU time (its DataLoader workers
included). The load average could not tell them apart: it counted our own workers, and our own load
of a minute ago, as a neighbour's, and dropped a quiet demo to 1 thread. ``OMP_NUM_THREADS`` set by
the user wins (nothing is changed).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import psutil
import torch
from transformers import TrainerCallback

from ..errors import ConfigError

logger = logging.getLogger(__name__)


def user_set_threads() -> bool:
    return "OMP_NUM_THREADS" in os.environ


@dataclass(frozen=True)
class CpuSample:
    """CPU-seconds at one moment: ``busy`` on the cores this process may use, ``own`` by its process tree."""

    wall: float
    busy: float
    own: float


def _tree_seconds(process: psutil.Process) -> float:
    """CPU-seconds of ``process`` and of its children that have exited (reaped)."""
    t = process.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def sample_cpu() -> CpuSample:
    """Busy CPU-seconds of our cores (``/proc/stat``) and of this process tree, now."""
    per_cpu = psutil.cpu_times(percpu=True)
    cpus = [per_cpu[i] for i in sorted(os.sched_getaffinity(0)) if i < len(per_cpu)]
    busy = sum(c.user + c.nice + c.system + getattr(c, "irq", 0) + getattr(c, "softirq", 0) + getattr(c, "steal", 0) for c in cpus)
    me, own = psutil.Process(), 0.0
    for process in [me, *me.children(recursive=True)]:
        try:
            own += _tree_seconds(process)
        except psutil.Error:  # exited meanwhile: counted with its parent's reaped children next time
            pass
    return CpuSample(time.monotonic(), busy, own)


def others_load(before: CpuSample, after: CpuSample) -> float:
    """Cores' worth of CPU that other processes used between two samples."""
    wall = max(after.wall - before.wall, 1e-9)
    return max(0.0, (after.busy - before.busy) - (after.own - before.own)) / wall


def choose_threads(others: float, cores: int | None = None) -> int:
    """The free cores (at least 1): usable cores less other processes' load.

    Model size does not enter: even the demo's 1M-parameter model ran 1.5x faster on 2 free cores.
    """
    cores = cores or len(os.sched_getaffinity(0))
    return max(1, min(cores, int(cores - others + 0.5)))


def cpu_thread_callbacks(pinned: int) -> list[TrainerCallback]:
    """``--cpu_threads``: ``pinned`` > 0 sets that many torch threads for the whole run (reproducible sums);
    0 returns ``AdaptiveThreads`` unless ``OMP_NUM_THREADS`` is set (the user's count is kept)."""
    if pinned < 0:
        raise ConfigError(f"--cpu_threads {pinned}: use 0 (follow the free cores) or a positive thread count")
    if pinned:
        torch.set_num_threads(pinned)
        return []
    return [] if user_set_threads() else [AdaptiveThreads()]


class AdaptiveThreads(TrainerCallback):
    """Sets torch's thread count from other processes' load: over ``probe`` seconds at the start, then
    over every ``every`` steps (CPU training only)."""

    def __init__(self, every: int = 50, probe: float = 0.5):
        self.every, self.probe = every, probe
        self.last: CpuSample | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        before = sample_cpu()
        time.sleep(self.probe)  # DataLoader workers start with the first batch: this window is the neighbours'
        self._set(before)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every == 0 and self.last is not None:
            self._set(self.last)

    def _set(self, since: CpuSample) -> None:
        self.last = sample_cpu()
        others = others_load(since, self.last)
        threads = choose_threads(others)
        if threads != torch.get_num_threads():
            logger.info("torch threads %d -> %d (other processes' load: %.1f cores)", torch.get_num_threads(), threads, others)
            torch.set_num_threads(threads)
