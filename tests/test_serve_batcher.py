"""The server's micro-batcher: requests waiting together run as one batch and answer exactly like ``predict``;
cancelled, timed-out and over-limit requests stop without costing the others anything."""

import time

import numpy as np
import pytest

from fastvlm_video.demo.synthetic import moving_square_frames, write_video
from fastvlm_video.infer.predictor import Predictor
from fastvlm_video.serve.batcher import END, Batcher, Job, QueueFull

QUESTION = "Which way does the square move?"


@pytest.fixture(scope="module")
def predictor(tiny_model_dir):
    return Predictor.from_pretrained(tiny_model_dir, device="cpu", num_frames=3)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("batcher")
    rng = np.random.default_rng(5)
    return [write_video(root / f"{d}.mp4", moving_square_frames(d, rng, num_frames=10), fps=8, gop=8)
            for d in ("left", "right", "up", "down")]  # fmt: skip


def drain(job: Job, timeout: float = 120) -> str:
    pieces = []
    while (item := job.pieces.get(timeout=timeout)) is not END:
        assert not isinstance(item, Exception), item
        pieces.append(item)
    return "".join(pieces)


def submit_together(batcher: Batcher, jobs: list[Job]) -> None:
    """Submit while the worker cannot take any, so it finds them all waiting."""
    with batcher._lock:
        for job in jobs:
            batcher.admit()
            batcher.submit(job)


def test_waiting_requests_run_as_one_batch_and_answer_like_predict(predictor, clips):
    limits = [5, 9, 3, 7]  # each row stops at its own limit inside one generate
    expected = [predictor.ask(clip, QUESTION, max_new_tokens=n) for clip, n in zip(clips, limits)]
    batcher = Batcher(predictor, max_batch=8)
    try:
        jobs = [Job(predictor.prompt_for(clip, QUESTION), n) for clip, n in zip(clips, limits)]
        submit_together(batcher, jobs)
        answers = [drain(job).strip() for job in jobs]
    finally:
        batcher.close()
    assert answers == expected
    assert list(batcher.batches) == [4]
    assert [job.new_tokens for job in jobs] == limits and {job.finish_reason for job in jobs} == {"length"}
    assert all(job.first_token_s is not None for job in jobs)


def test_batches_hold_at_most_max_batch_and_only_one_sampling_setting(predictor, clips):
    batcher = Batcher(predictor, max_batch=2)
    try:
        greedy = [Job(predictor.prompt_for(c, QUESTION), 2) for c in clips[:3]]
        sampled = Job(predictor.prompt_for(clips[3], QUESTION), 2, {"temperature": 0.7})
        submit_together(batcher, [greedy[0], sampled, greedy[1], greedy[2]])
        for job in [*greedy, sampled]:
            drain(job)
    finally:
        batcher.close()
    assert list(batcher.batches) == [2, 1, 1]  # greedy 0+1, then sampled (the oldest left), then greedy 2


def test_a_cancelled_request_stops_and_the_rest_of_its_batch_is_unchanged(predictor, clips):
    expected = predictor.ask(clips[1], QUESTION, max_new_tokens=6)
    batcher = Batcher(predictor)
    try:
        long = Job(predictor.prompt_for(clips[0], QUESTION), 4000)
        short = Job(predictor.prompt_for(clips[1], QUESTION), 6)
        waiting_gone = Job(predictor.prompt_for(clips[2], QUESTION), 6)
        waiting_gone.cancel()  # its client left while it waited
        submit_together(batcher, [long, short, waiting_gone])
        assert long.pieces.get(timeout=120) is not END
        long.cancel()  # the client goes away after the first piece
        drain(long)
        assert drain(short).strip() == expected
        assert drain(waiting_gone) == ""
    finally:
        batcher.close()
    assert long.finish_reason == "cancelled" and long.new_tokens < 4000
    assert waiting_gone.finish_reason == "cancelled" and waiting_gone.new_tokens == 0
    assert list(batcher.batches) == [2]


def test_a_request_past_its_deadline_stops_with_timeout(predictor, clips):
    batcher = Batcher(predictor)
    try:
        late = Job(predictor.prompt_for(clips[0], QUESTION), 4000, deadline=time.monotonic() + 0.5)
        submit_together(batcher, [late])
        drain(late)
    finally:
        batcher.close()
    assert late.finish_reason == "timeout" and late.new_tokens < 4000


def test_admission_is_bounded_and_says_when_to_retry(predictor):
    batcher = Batcher(predictor, max_batch=2, max_queue=3)
    try:
        for _ in range(3):
            batcher.admit()
        with pytest.raises(QueueFull) as full:
            batcher.admit()
        assert full.value.retry_after >= 1 and "retry" in str(full.value)
        batcher.release()
        batcher.admit()  # a released place can be taken again
    finally:
        batcher.close()


def test_a_failing_batch_fails_its_requests_and_the_worker_keeps_going(predictor, clips, monkeypatch):
    batcher = Batcher(predictor)
    try:
        calls = []
        original = batcher._generate

        def flaky(jobs):
            calls.append(len(jobs))
            if len(calls) == 1:
                raise RuntimeError("boom")
            return original(jobs)

        monkeypatch.setattr(batcher, "_generate", flaky)
        bad = Job(predictor.prompt_for(clips[0], QUESTION), 2)
        submit_together(batcher, [bad])
        assert isinstance(bad.pieces.get(timeout=60), RuntimeError)
        good = Job(predictor.prompt_for(clips[0], QUESTION), 2)
        submit_together(batcher, [good])
        assert drain(good).strip() == predictor.ask(clips[0], QUESTION, max_new_tokens=2)
    finally:
        batcher.close()


def test_a_batched_answer_streams_piece_by_piece(predictor, clips):
    batcher = Batcher(predictor)
    try:
        jobs = [Job(predictor.prompt_for(clip, QUESTION), 12) for clip in clips[:2]]
        submit_together(batcher, jobs)
        pieces = []
        while (item := jobs[0].pieces.get(timeout=120)) is not END:
            pieces.append(item)
        drain(jobs[1])
    finally:
        batcher.close()
    assert len(pieces) >= 3 and "".join(pieces).strip() == predictor.ask(clips[0], QUESTION, max_new_tokens=12)


def test_freed_heap_is_handed_back_between_batches(predictor, clips, monkeypatch):
    """A long-running server trims the heap (glibc ``malloc_trim``) between batches, at most every
    ``TRIM_EVERY_S``: without it RSS creeps up with every decoded clip (bench_serve.py's soak)."""
    from fastvlm_video.serve import batcher as batcher_module

    assert batcher_module._heap_trimmer()(0) in (0, 1)  # the real call works here (glibc) or is a no-op
    monkeypatch.setattr(batcher_module, "TRIM_EVERY_S", 0.0)
    batcher = Batcher(predictor, max_batch=8)
    calls = []
    batcher._trim = calls.append
    try:
        for clip in clips[:2]:
            job = Job(predictor.prompt_for(clip, QUESTION), 2)
            submit_together(batcher, [job])
            drain(job)
            time.sleep(0.01)
    finally:
        batcher.close()
    assert calls == [0, 0]
