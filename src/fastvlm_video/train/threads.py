"""Torch threads for CPU training: as many as there are cores actually free, re-checked while training.

Intra-op threads wait for each other at every op; when another process holds a core, the thread on it
is descheduled and all its siblings wait. Measured on the demo's model (benchmarks/bench_threads.py,
docs/performance.md): beside one CPU-bound process a step with 2 threads on 2 cores took 3x longer
than with 1 thread, while alone 2 threads were 1.5x faster. So the count follows the free cores,
from the 1-minute load average less this process's own threads. ``OMP_NUM_THREADS`` set by the
user wins (nothing is changed).
"""

from __future__ import annotations

import logging
import os

import torch
from transformers import TrainerCallback

from ..errors import ConfigError

logger = logging.getLogger(__name__)


def user_set_threads() -> bool:
    return "OMP_NUM_THREADS" in os.environ


def choose_threads(own_threads: int = 0, cores: int | None = None, load: float | None = None) -> int:
    """The free cores (at least 1): usable cores less the 1-minute load of other processes.

    ``own_threads``: this process's busy threads already counted in ``load`` (0 before training starts).
    Model size does not enter: even the demo's 1M-parameter model ran 1.5x faster on 2 free cores.
    """
    cores = cores or len(os.sched_getaffinity(0))
    load = os.getloadavg()[0] if load is None else load
    free = cores - max(0.0, load - own_threads)
    return max(1, min(cores, int(free + 0.5)))


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
    """Every ``every`` steps, sets torch's thread count to ``choose_threads`` (CPU training only)."""

    def __init__(self, every: int = 50):
        self.every = every

    def on_train_begin(self, args, state, control, **kwargs):
        self._set(own=0)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every == 0:
            self._set(own=torch.get_num_threads())

    def _set(self, own: int) -> None:
        threads = choose_threads(own_threads=own)
        if threads != torch.get_num_threads():
            logger.info("torch threads %d -> %d (load average %.1f)", torch.get_num_threads(), threads, os.getloadavg()[0])
            torch.set_num_threads(threads)
