"""Token and memory budget: counts from records, auto max length, the start-up check, the visual budget,
the time instruction (identical in training and predict, never trained)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from fastvlm_video.budget.memory import ModelShape, Setting, estimate, parse_size
from fastvlm_video.budget.tokens import check_fit, fit_frame_size, measure, plan_lengths, resolve_max_length, sample_length
from fastvlm_video.constants import IGNORE_INDEX
from fastvlm_video.data.chat import ChatEncoder
from fastvlm_video.data.dataset import ConversationDataset
from fastvlm_video.data.records import MediaRef, Message, Sample, load_samples
from fastvlm_video.data.time_prompt import time_instruction
from fastvlm_video.errors import ConfigError
from fastvlm_video.video_config import VideoConfig

VIDEO = VideoConfig(num_frames=3, image_size=64)  # K = 1 token per frame: cheap decoding


def write_records(path, records):
    path.write_text(json.dumps(records))
    return path


def qa(media_key, media, question="What happens?", answer="It moves left.", **extra):
    return {media_key: media, "conversations": [{"from": "human", "value": f"<image>\n{question}"}, {"from": "gpt", "value": answer}], **extra}


@pytest.fixture(scope="module")
def samples(tmp_path_factory, media_folder, numbered_video):
    data = write_records(tmp_path_factory.mktemp("budget") / "data.json", [
        qa("video", "left.mp4"),
        qa("video", "up.MOV", question="Which way?\nOne word."),
        qa("image", "still.png"),
        qa("video", "left.mp4", start=0.5, end=1.4),
        {"video": ["left.mp4", "up.MOV"], "image": "still.png",
         "conversations": [{"from": "human", "value": "Compare."}, {"from": "gpt", "value": "Two clips."}]},
        {"conversations": [{"from": "human", "value": "Say hi"}, {"from": "gpt", "value": "hi"}]},
    ])  # fmt: skip
    from PIL import Image

    from fastvlm_video.demo.synthetic import numbered_frames

    gif = tmp_path_factory.mktemp("anim") / "anim.gif"  # an animation is sampled like a video
    frames = [Image.fromarray(f) for f in numbered_frames(12)]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    data_gif = write_records(data.with_name("gif.json"), [qa("image", str(gif), question="Which way?")])
    found, _ = load_samples([data, data_gif], media_folder, allow_outside_media_folder=True)
    return found


@pytest.mark.parametrize(
    "video",
    [VIDEO, replace(VIDEO, frame_sampling="fps", fps=3.0, max_frames=5, min_frames=2), replace(VIDEO, frame_sampling="keyframe"),
     replace(VIDEO, time_instruction=True), replace(VIDEO, frame_sampling="fps", fps=2.0, time_instruction=True), replace(VIDEO, max_visual_tokens=4)],
    ids=["uniform", "fps", "keyframe", "time", "fps+time", "visual-budget"],
)
def test_token_counts_from_records_equal_the_encoders(samples, tokenizer, video):
    encoder = ChatEncoder(tokenizer, video.tokens_per_frame)
    dataset = ConversationDataset(samples, encoder, video)
    for sample in samples:
        counted = sample_length(sample, encoder, video)
        item = dataset.build(sample)
        assert counted.total == len(item["input_ids"]), sample.where
        frames = 0 if item["pixel_values"] is None else item["pixel_values"].shape[0]
        assert counted.image_tokens == frames * video.tokens_per_frame


def test_auto_max_length_is_the_longest_sample_capped_by_the_context(samples, tokenizer):
    report = measure(samples, ChatEncoder(tokenizer, 1), VIDEO)
    longest = max(s.total for s in report.lengths)
    assert resolve_max_length("auto", report, None) == longest
    assert resolve_max_length("auto", report, 40) == 40
    assert resolve_max_length("77", report, 40) == 77
    with pytest.raises(ConfigError, match="'auto'"):
        resolve_max_length("long", report, None)


def test_a_run_that_cannot_fit_stops_with_the_numbers_and_the_fix(samples, tokenizer):
    video = VideoConfig(num_frames=8, image_size=256)  # 16 tokens per frame
    encoder = ChatEncoder(tokenizer, video.tokens_per_frame)
    samples = samples[:4]  # one media item each, no animation
    report = measure(samples, encoder, video)
    check_fit(report, report.longest, 0.0, video, None)  # auto never fails below the model's context
    with pytest.raises(ConfigError) as failure:
        plan_lengths(samples, encoder, video, 60, None, 0.05)
    message = str(failure.value)
    too_long = len(report.too_long(60))
    assert f"{too_long} of {len(samples)} samples" in message and "model_max_length=60" in message
    assert "8 frames of 256 px (16 tokens each)" in message
    assert "fewer frames (--num_video_frames 1)" in message and "smaller frames (--image_size 64" in message
    assert f"a larger --model_max_length ({report.longest}, or 'auto')" in message


def test_train_defaults_fit_8_frames_at_1024_px_and_a_misfit_fails_before_the_model_loads(tmp_path, tokenizer, media_folder, monkeypatch):
    """Only the four required flags on 8-frame 1024 px videos: auto max length, nothing too long.
    The old default (2048) cannot hold 8 x 256 image tokens + text: it stops at start-up, model never loaded."""
    from fastvlm_video.model.processor import make_processor
    from fastvlm_video.model.tiny import build_tiny_model
    from fastvlm_video.train import run
    from fastvlm_video.train.args import parse_train_args

    model_dir = tmp_path / "model"
    build_tiny_model(tokenizer).save_pretrained(model_dir)
    make_processor(tokenizer, 1024).save_pretrained(model_dir)
    data = write_records(tmp_path / "train.json", [qa("video", "left.mp4"), qa("video", "up.MOV")])
    required = ["--model_name_or_path", str(model_dir), "--data_path", str(data), "--image_folder", str(media_folder), "--output_dir", str(tmp_path / "out")]
    model_args, data_args, training_args = parse_train_args(required)
    assert training_args.model_max_length == "auto"
    samples, _ = load_samples([data], media_folder)
    plan = plan_lengths(samples, ChatEncoder(tokenizer, 256), run.video_config_of(model_dir), "auto", 4096, data_args.max_skip_fraction)
    assert plan.video.num_frames == 8 and plan.video.image_size == 1024
    assert plan.max_length == plan.report.longest > 2048 and not plan.report.too_long(plan.max_length)
    # What training then draws: every sample whole at 8 x 1024 px, none skipped. (A full one-step run,
    # `train` with the four flags + --max_steps 1, takes ~45 s on this CPU: see docs/video.md.)
    dataset = ConversationDataset(samples, ChatEncoder(tokenizer, 256), plan.video, plan.max_length)
    for i in range(len(samples)):
        item = dataset[i]
        assert not item["skipped"] and item["pixel_values"].shape == (8, 3, 1024, 1024)

    def no_model(*_):
        raise AssertionError("the model was loaded before the fit check")

    monkeypatch.setattr(run, "load_for_training", no_model)
    with pytest.raises(ConfigError, match="2 of 2 samples .*model_max_length=2048"):
        run.train(*parse_train_args([*required, "--model_max_length", "2048"]))


def test_visual_budget_lowers_frames_first_then_the_frame_size():
    video = VideoConfig(num_frames=8, image_size=256, max_visual_tokens=64)  # 16 tokens per frame: 4 frames
    assert video.for_sample(["video"]).num_frames == 4
    assert video.for_sample(["video", "image"]).num_frames == 3
    assert video.for_sample(["video", "video"]).num_frames == 2
    unbudgeted = replace(video, max_visual_tokens=0)
    assert video.for_sample(["image"]) is video and unbudgeted.for_sample(["video"]) is unbudgeted
    fps = replace(video, frame_sampling="fps", max_frames=30, min_frames=2)
    assert fps.for_sample(["video"]).max_frames == 4
    assert fps.for_sample(["video"] * 5).max_frames == 2  # never below min_frames...
    many = [Sample("m", [Message("user", "<image>" * 5), Message("assistant", "x")], [MediaRef("v.mp4", "video")] * 5)]
    smaller = fit_frame_size(fps, many)  # ...so the run's frame size shrinks until 5 x 2 frames fit 64 tokens
    assert smaller.image_size == 128 and 10 * smaller.tokens_per_frame <= 64
    assert fit_frame_size(video, many[:0]) is video


def test_visual_budget_and_time_settings_travel_in_video_config_json(tmp_path):
    video = VideoConfig(frame_sampling="fps", min_frames=4, max_visual_tokens=1024, time_instruction=True)
    video.save(tmp_path)
    assert VideoConfig.load(tmp_path) == video


def test_time_instruction_and_visual_budget_are_identical_in_training_and_predict_and_never_trained(tiny_model_dir, tokenizer, media_folder):
    from fastvlm_video.infer.predictor import Predictor
    from fastvlm_video.model.load import load_model

    video = replace(VIDEO, time_instruction=True, max_visual_tokens=2)  # the budget cuts 3 frames to 2, in both
    ref = MediaRef(str(media_folder / "left.mp4"), "video")
    question = Message("user", "<image>\nWhat happens?")
    sample = Sample("t", [question, Message("assistant", "It moves left.")], [ref])
    item = ConversationDataset([sample], ChatEncoder(tokenizer, 1), video).build(sample)
    prompt = Predictor(load_model(tiny_model_dir), tokenizer, video, torch.device("cpu")).prepare([question], [ref])

    assert prompt.pixel_values.shape[0] == item["pixel_values"].shape[0] == 2
    ids, labels = item["input_ids"].tolist(), item["labels"].tolist()
    prompt_ids = prompt.input_ids.tolist()
    assert ids[: len(prompt_ids)] == prompt_ids  # the same prompt, instruction included
    assert all(label == IGNORE_INDEX for label in labels[: len(prompt_ids)])  # never trained
    timestamps = item["timestamps"][0]
    text = tokenizer.decode(prompt_ids)
    expected = time_instruction(timestamps, (0.0, 2.0))  # left.mp4: 16 frames at 8 fps
    assert f"<image>\n{expected}\nWhat happens?" in text
    assert expected.startswith("The video lasts for 2.00 seconds, and 2 frames are uniformly sampled from it. These frames are located at 0.00s, 1.88s.")


def test_memory_model_counts_qwen2_0_5b_and_orders_the_settings():
    shape = ModelShape.from_config({
        "text_config": {"vocab_size": 151936, "hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14,
                        "num_key_value_heads": 2, "intermediate_size": 4864, "tie_word_embeddings": True},
        "vision_config": {"architecture": "fastvit_mci3", "hidden_size": 3072, "model_args": {"layers": [1, 1, 1, 1, 1], "embed_dims": [8, 16, 32, 64, 128]}},
    })  # fmt: skip
    assert shape.llm_params == 494_032_768  # Qwen2-0.5B's published count
    full = estimate(shape, Setting(seq_len=2200, frames=8))
    assert full.optimizer == 2 * full.gradients and full.weights > full.gradients
    cheaper = [
        Setting(seq_len=2200, frames=8, gradient_checkpointing=True),
        Setting(seq_len=2200, frames=8, train="lora"),
        Setting(seq_len=2200, frames=8, zero_stage=3, num_gpus=8),
        Setting(seq_len=1200, frames=4),
    ]
    assert all(estimate(shape, s).total < full.total for s in cheaper)
    qlora = estimate(shape, Setting(seq_len=2200, frames=8, train="qlora"))
    assert qlora.weights < estimate(shape, Setting(seq_len=2200, frames=8, train="lora")).weights
    assert parse_size("24GB") == parse_size("24") == 24 * 1024**3


def test_budget_command_prints_the_three_tables(tiny_model_dir, media_folder, tmp_path, capsys):
    from fastvlm_video.cli import main

    data = write_records(tmp_path / "data.json", [qa("video", "left.mp4"), qa("image", "still.png")])
    args = ["budget", "--model", str(tiny_model_dir / "config.json"), "--data", str(data), "--media_folder", str(media_folder),
            "--num_video_frames", "8", "--gpu_memory", "24GB", "--precision", "fp32"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "tokens per sample (2 samples; 8 frames x 4 tokens at 128 px" in out
    assert "0 sample(s) cannot fit" in out and "optimizer states" in out and "what fits 24.0 GiB" in out


def test_fps_sampling_gives_short_clips_min_frames_and_caps_long_ones(numbered_video):
    from fastvlm_video.media.sampling import fps_indices
    from fastvlm_video.media.video import load_video_tensor

    ts = [i / 10 for i in range(50)]  # 5 s at 10 fps
    assert len(fps_indices(ts, 1.0, 64)) == 5
    assert fps_indices(ts, 1.0, 64, min_frames=8) == [0, 7, 14, 21, 28, 35, 42, 49]
    assert len(fps_indices(ts, 1.0, 3, min_frames=8)) == 3  # the cap wins
    clip = load_video_tensor(numbered_video, image_size=64, frame_sampling="fps", fps=1.0, min_frames=8)
    assert clip.indices == [0, 7, 14, 21, 28, 35, 42, 49] and clip.window == (0.0, 5.0)


def test_check_uses_the_same_auto_rule(tiny_model_dir):
    from fastvlm_video.budget.tokens import context_limit

    assert context_limit("auto", str(tiny_model_dir)) == 4096  # the model's context, as training's auto caps it
    assert context_limit("300", None) == 300

