"""vLLM serves the exported standard checkpoint (its transformers backend runs ``FastVlmForConditionalGeneration``)
and answers exactly like ``predict``: a video given as its frames (one ``<image>`` per frame), greedy.

vLLM lives in its own environment (its CPU build pins its own torch): set ``FASTVLM_VIDEO_VLLM_PYTHON`` to that
environment's python (``scripts/vllm_check.sh`` builds it and runs this test); without it the test skips."""

from __future__ import annotations

import os

import numpy as np
import pytest

from fastvlm_video.demo.synthetic import moving_square_frames, write_video
from fastvlm_video.infer.predictor import Predictor
from fastvlm_video.model.processor import make_processor
from fastvlm_video.model.tiny import build_tiny_model
from fastvlm_video.ship.vllm import vllm_inputs, vllm_token_ids

VLLM_PYTHON = os.environ.get("FASTVLM_VIDEO_VLLM_PYTHON")
QUESTION = "Which way does the square move?"


@pytest.mark.skipif(not VLLM_PYTHON, reason="vLLM in its own environment: set FASTVLM_VIDEO_VLLM_PYTHON (scripts/vllm_check.sh)")
def test_vllm_answers_like_predict(tokenizer, tmp_path):
    model = tmp_path / "model"  # vLLM's CPU attention needs a head size of 32 or more: 128 wide, 4 heads
    build_tiny_model(tokenizer, seed=0, text_hidden_size=128).save_pretrained(model)
    make_processor(tokenizer, 128).save_pretrained(model)
    predictor = Predictor.from_pretrained(model, device="cpu", num_frames=4)
    rng = np.random.default_rng(11)
    clips = [write_video(tmp_path / f"{d}.mp4", moving_square_frames(d, rng, num_frames=12), fps=8, gop=8) for d in ("left", "up")]
    items = vllm_inputs(predictor, [(clip, QUESTION) for clip in clips], tmp_path / "frames", max_tokens=24)
    expected = [predictor.ask(clip, QUESTION, max_new_tokens=24) for clip in clips]
    token_ids = vllm_token_ids(VLLM_PYTHON, model, items, tmp_path)
    assert [predictor.tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in token_ids] == expected
    assert all(len(ids) == 24 for ids in token_ids)  # the random model never ends its turn: 24 tokens compared
