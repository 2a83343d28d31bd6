"""Work ahead of the model: ``prefetch(fn, items)`` yields ``fn(item)`` in order, computed in background threads.

Evaluation decodes the next batch's clips (``Predictor.prepare``: file -> frames -> prompt) while the
model answers the current one. Threads, not processes: decoding (FFmpeg, swscale, torch resizes and
frame-cache copies) runs outside the GIL, the predictor and its frame cache are shared as they are
(nothing is pickled, no worker re-imports torch), and results come back in input order.

At most ``ahead`` items are in flight or ready, so memory stays bounded (two batches of frames by
default); closing the iterator early (an exception, Ctrl-C) cancels what has not started.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def prefetch(fn: Callable[[T], R], items: Iterable[T], workers: int = 1, ahead: int = 16) -> Iterator[R]:
    """``fn(item)`` for each item, in order; ``workers`` threads keep up to ``ahead`` results ready.

    ``workers=0`` computes each item when it is asked for (no thread). An exception raised by ``fn``
    is raised here, when its item's turn comes.
    """
    if workers <= 0:
        yield from map(fn, items)
        return
    items = iter(items)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prefetch")
    pending: deque[Future] = deque(pool.submit(fn, item) for item in islice(items, max(1, ahead)))
    try:
        while pending:
            result = pending.popleft().result()
            for item in islice(items, 1):
                pending.append(pool.submit(fn, item))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # wait: no thread outlives its caller's data


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    items = iter(items)
    while batch := list(islice(items, size)):
        yield batch
