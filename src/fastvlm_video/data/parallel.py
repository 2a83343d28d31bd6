"""Run one function over many media files: worker processes, a progress bar, bounded time per file.

Used by ``check`` and ``clean``. Each call yields ``(item, result, error)``: ``error`` is ``None``
on success, else the reason as text (a ``MediaError``'s message, a time-out, or an unexpected
exception). Results come back in completion order.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

from tqdm.auto import tqdm

from ..errors import MediaError

logger = logging.getLogger(__name__)

Outcome = tuple[Any, Any, "str | None"]
MIN_ITEMS_PER_WORKER = 8  # below this, starting worker processes costs more than it saves


class FileTimeout(Exception):
    """One file took longer than its time limit."""


def default_workers() -> int:
    """All CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parallel_map(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    workers: int = 1,
    timeout: float | None = 60.0,
    desc: str = "files",
    progress: bool = True,
) -> Iterator[Outcome]:
    """``fn(item)`` for every item, in up to ``workers`` processes; ``fn`` must be picklable.

    Few items (under ``MIN_ITEMS_PER_WORKER`` per worker) run in this process.
    """
    items = list(items)
    call = partial(_call, fn, timeout)
    bar = tqdm(total=len(items), desc=desc, unit="file", disable=not progress, leave=False)
    try:
        workers = min(workers, len(items) // MIN_ITEMS_PER_WORKER)
        if workers <= 1:
            yield from _advance(map(call, items), bar)
            return
        chunksize = max(1, min(8, len(items) // (workers * 8)))
        # spawn: workers start clean (no inherited OpenMP/tokenizer threads), the same on every OS
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            yield from _advance(pool.imap_unordered(call, items, chunksize), bar)
    finally:
        bar.close()


def _advance(outcomes: Iterable[Outcome], bar) -> Iterator[Outcome]:
    for outcome in outcomes:
        bar.update(1)
        yield outcome


def _call(fn: Callable[[Any], Any], timeout: float | None, item: Any) -> Outcome:
    """``fn(item)`` with a time limit (SIGALRM, where the platform has it) and errors turned into text."""
    try:
        with _time_limit(timeout):
            return item, fn(item), None
    except MediaError as exc:
        return item, None, str(exc)
    except FileTimeout:
        return item, None, f"{item}: timed out after {timeout:g} s (hung or very slow decode)"
    except Exception as exc:  # noqa: BLE001 - one broken file must not stop a scan of thousands
        logger.debug("unexpected error on %s", item, exc_info=True)
        return item, None, f"{item}: unexpected {exc.__class__.__name__}: {exc}"


class _time_limit:
    """Raise ``FileTimeout`` in the main thread after ``seconds`` (no-op where SIGALRM is missing)."""

    def __init__(self, seconds: float | None):
        usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
        self.seconds = seconds if (seconds and usable) else None

    def __enter__(self):
        if self.seconds:
            self.previous = signal.signal(signal.SIGALRM, self._expire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.seconds:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
        return False

    @staticmethod
    def _expire(signum, frame):
        raise FileTimeout()
