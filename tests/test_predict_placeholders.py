"""predict's prompt treats a <video> placeholder as training does: it becomes the clip's frame tokens."""

from __future__ import annotations

import torch

from fastvlm_video.infer.predictor import Predictor
from fastvlm_video.model.tiny import build_tiny_model
from fastvlm_video.video_config import VideoConfig


def test_a_video_placeholder_in_the_question_is_the_clips_place(tokenizer, media_folder):
    predictor = Predictor(build_tiny_model(tokenizer), tokenizer, VideoConfig(num_frames=2, image_size=64), torch.device("cpu"))
    clip = media_folder / "left.mp4"
    as_image = predictor.prompt_for(clip, "<image>\nWhich way?").input_ids
    assert predictor.prompt_for(clip, "<video>\nWhich way?").input_ids.equal(as_image)
    assert predictor.prompt_for(clip, "Which way?").input_ids.equal(as_image)  # prepended when absent
