"""Micro-batching for the server: requests that wait together are answered by one ``generate``.

One worker thread owns the model. Each request is a ``Job`` (a prepared prompt, its token limit and
sampling settings); the worker takes the oldest waiting job plus every other waiting job with the same
sampling settings (up to ``max_batch``) and runs them as one left-padded batch. Each job streams its
own tokens through its own queue as they are generated; a job stops on its end-of-turn token, its own
``max_new_tokens``, its deadline, or when its client goes away (``cancel``), and the batch ends when
every row has stopped, so no compute is spent on answers nobody will read.

Why micro-batching, not continuous batching: ``transformers.generate`` runs a fixed batch to its end;
slotting new requests into a running batch needs a paged KV cache and a scheduler (vLLM's design).
Requests that arrive while a batch runs wait for it (on CPU a demo-model batch takes tens of ms), then
go together. The admission bound (``max_queue``) counts requests from arrival, before any decoding,
so a flood is refused cheaply with 429.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from ..infer.predictor import Predictor, Prompt

logger = logging.getLogger(__name__)

END = object()  # the last item a job's queue receives
TRIM_EVERY_S = 10.0  # at most this often (between batches), freed heap is handed back to the OS (glibc only)


def _heap_trimmer():
    """glibc's ``malloc_trim(0)`` (hands freed heap pages back to the OS), or a no-op elsewhere.

    Decoding a clip allocates and frees many buffers of varying sizes in several threads and glibc keeps
    freed pages; trimming now and then keeps a long-running server's RSS from creeping up with them.
    """
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    return getattr(libc, "malloc_trim", None) or (lambda _pad: 0)


class QueueFull(Exception):
    """More requests are waiting than ``max_queue``: answered with 429 and ``retry_after`` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"the server is busy ({retry_after} s until a slot is likely free): retry later")
        self.retry_after = retry_after


@dataclass(eq=False)  # jobs are compared by identity
class Job:
    """One request's generation: its prompt, limits, and the queue its text pieces arrive on."""

    prompt: Prompt
    max_new_tokens: int
    gen_kwargs: dict = field(default_factory=dict)
    deadline: float = math.inf  # time.monotonic() after which generation stops
    pieces: queue.Queue = field(default_factory=queue.Queue)  # anything with put(): text pieces, then END or an error
    cancelled: threading.Event = field(default_factory=threading.Event)
    new_tokens: int = 0
    finish_reason: str = "stop"  # stop | length | timeout | cancelled
    submitted: float = field(default_factory=time.monotonic)
    first_token_s: float | None = None  # seconds from submission to the first token

    @property
    def sampling_key(self) -> tuple:
        return tuple(sorted(self.gen_kwargs.items()))

    def cancel(self) -> None:
        self.cancelled.set()

    def stop_reason(self, now: float) -> str | None:
        if self.cancelled.is_set():
            return "cancelled"
        if now >= self.deadline:
            return "timeout"
        if self.new_tokens >= self.max_new_tokens:
            return "length"
        return None


class _BatchStreamer(BaseStreamer):
    """Splits each generated step (one token per row) into the rows' jobs, as text pieces."""

    def __init__(self, jobs: Sequence[Job], tokenizer, end_id: int, on_finish=lambda job: None):
        self.jobs, self.tokenizer, self.end_id, self.on_finish = jobs, tokenizer, end_id, on_finish
        self.ids: list[list[int]] = [[] for _ in jobs]
        self.sent = [0] * len(jobs)  # characters of each row's text already sent
        self.done = [False] * len(jobs)
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # generate first hands back the prompt
            self.prompt_seen = True
            return
        now = time.monotonic()
        for row, token in enumerate(value.reshape(-1).tolist()):
            job = self.jobs[row]
            if self.done[row]:
                continue
            if token == self.end_id:
                self._finish(row, "stop")
                continue
            if job.first_token_s is None:
                job.first_token_s = now - job.submitted
            self.ids[row].append(token)
            job.new_tokens += 1
            self._send(row, final=False)
            reason = job.stop_reason(now)
            if reason:
                self._finish(row, reason)

    def _send(self, row: int, final: bool) -> None:
        text = self.tokenizer.decode(self.ids[row], skip_special_tokens=True)
        if not final and text.endswith("\ufffd"):  # half of a multi-byte character: wait for the rest
            return
        if len(text) > self.sent[row]:
            self.jobs[row].pieces.put(text[self.sent[row] :])
            self.sent[row] = len(text)

    def _finish(self, row: int, reason: str) -> None:
        self._send(row, final=True)
        self.done[row] = True
        self.jobs[row].finish_reason = reason
        self.jobs[row].pieces.put(END)
        self.on_finish(self.jobs[row])

    def end(self) -> None:
        for row in range(len(self.jobs)):
            if not self.done[row]:
                self._finish(row, self.jobs[row].stop_reason(time.monotonic()) or "stop")


class _RowsStopped(StoppingCriteria):
    """Per-row stop: a row whose job has ended (any reason) needs no more tokens."""

    def __init__(self, streamer: _BatchStreamer):
        self.streamer = streamer

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        now = time.monotonic()
        stopped = [done or job.stop_reason(now) is not None for done, job in zip(self.streamer.done, self.streamer.jobs)]
        return torch.tensor(stopped, dtype=torch.bool, device=input_ids.device)


class Batcher:
    """The server's model worker: admits jobs (bounded), batches the waiting ones, streams answers."""

    def __init__(self, predictor: Predictor, max_batch: int = 8, max_queue: int = 64):
        if max_batch < 1 or max_queue < 1:
            raise ValueError("max_batch and max_queue must be at least 1")
        self.predictor, self.max_batch, self.max_queue = predictor, max_batch, max_queue
        self._waiting: list[Job] = []
        self._admitted = 0  # requests from arrival until their job is taken by the worker
        self._lock = threading.Condition()
        self._batch_seconds = 1.0  # a running estimate of one batch's time, for Retry-After
        self._stop = False
        self.batches: deque[int] = deque(maxlen=1000)  # sizes of the recent batches run (for tests and logs)
        self.finished: deque[tuple[str, int]] = deque(maxlen=1000)  # (finish reason, tokens) of recent requests
        self._trim, self._trimmed = _heap_trimmer(), time.monotonic()
        self._thread = threading.Thread(target=self._run, name="fastvlm-batcher", daemon=True)
        self._thread.start()

    # --- admission: before any decoding, so a flood is refused cheaply
    def admit(self) -> None:
        """Reserve a place for a new request, or raise ``QueueFull``; pair with ``submit`` or ``release``."""
        with self._lock:
            if self._admitted >= self.max_queue:
                batches_ahead = math.ceil(self._admitted / self.max_batch)
                raise QueueFull(max(1, math.ceil(batches_ahead * self._batch_seconds)))
            self._admitted += 1

    def release(self) -> None:
        """Give back an admitted place whose request failed before ``submit`` (e.g. unreadable media)."""
        with self._lock:
            self._admitted -= 1

    def submit(self, job: Job) -> Job:
        with self._lock:
            self._waiting.append(job)
            self._lock.notify()
        return job

    def close(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify()
        self._thread.join(10)

    # --- the worker
    def _take_batch(self) -> list[Job]:
        with self._lock:
            while not self._waiting and not self._stop:
                self._lock.wait()
            if self._stop:
                return []
            first = self._waiting[0]
            batch = [j for j in self._waiting if j.sampling_key == first.sampling_key][: self.max_batch]
            self._waiting = [j for j in self._waiting if j not in batch]
            self._admitted -= len(batch)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                return
            live = []
            for job in batch:
                reason = job.stop_reason(time.monotonic())
                if reason:  # gave up or timed out while waiting
                    job.finish_reason = reason
                    job.pieces.put(END)
                    self._record(job)
                else:
                    live.append(job)
            if not live:
                continue
            started = time.monotonic()
            try:
                self._generate(live)
            except Exception as exc:  # a failed batch fails its requests, never the worker
                logger.exception("generation failed for a batch of %d", len(live))
                for job in live:
                    job.pieces.put(exc)
            self.batches.append(len(live))
            self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * (time.monotonic() - started)
            if time.monotonic() - self._trimmed > TRIM_EVERY_S:
                self._trim(0)
                self._trimmed = time.monotonic()

    def _record(self, job: Job) -> None:
        self.finished.append((job.finish_reason, job.new_tokens))

    @torch.inference_mode()
    def _generate(self, jobs: list[Job]) -> None:
        predictor = self.predictor
        inputs = predictor._inputs([job.prompt for job in jobs])
        streamer = _BatchStreamer(jobs, predictor.tokenizer, predictor.encoder.im_end_id, self._record)
        predictor.model.generate(
            **inputs,
            max_new_tokens=max(job.max_new_tokens for job in jobs),
            streamer=streamer,
            stopping_criteria=StoppingCriteriaList([_RowsStopped(streamer)]),
            **predictor._gen_defaults(dict(jobs[0].gen_kwargs)),
        )
