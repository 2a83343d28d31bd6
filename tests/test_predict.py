"""predict: a tiny model trained a few steps streams its answers for a video and an image (CLI and Python
API); the streamed path (frames encoded first, then generate) equals batched generation; --verbose shows
the split of the time to first token."""

from __future__ import annotations

import json

import pytest

import fastvlm_video
from fastvlm_video.cli import main
from fastvlm_video.infer.predictor import STEPS, Predictor, Timings
from fastvlm_video.model.processor import make_processor
from fastvlm_video.model.tiny import build_tiny_model
from fastvlm_video.train.args import parse_train_args
from fastvlm_video.train.run import train

ANSWERS = {"left.mp4": "left", "still.png": "a still image"}
QUESTIONS = {"left.mp4": "Which way?", "still.png": "What is it?"}  # distinct, so a few steps teach both


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory, tokenizer, media_folder):
    root = tmp_path_factory.mktemp("predict")
    base = build_tiny_model(tokenizer, seed=0)
    base.lm_head.weight.data *= 20  # a sharper head, as a pretrained LM has: a few steps then teach answers
    base.save_pretrained(root / "base")
    make_processor(tokenizer, 128).save_pretrained(root / "base")
    rows = [
        {"image": name, "conversations": [{"from": "human", "value": f"<image>\n{QUESTIONS[name]}"}, {"from": "gpt", "value": answer}]}
        for name, answer in ANSWERS.items()
    ]
    (root / "train.json").write_text(json.dumps(rows))
    args = parse_train_args(
        [
            "--model_name_or_path", str(root / "base"), "--data_path", str(root / "train.json"),
            "--image_folder", str(media_folder), "--num_video_frames", "2", "--image_size", "64",
            "--output_dir", str(root / "out"), "--per_device_train_batch_size", "2", "--learning_rate", "3e-3",
            "--num_train_epochs", "10", "--save_strategy", "no", "--report_to", "none", "--use_cpu", "--seed", "0",
            "--disable_tqdm", "true",
        ]
    )  # fmt: skip
    return train(*args).output_dir


@pytest.mark.parametrize("name", list(ANSWERS))
def test_predict_streams_an_answer_for_a_video_and_an_image(trained_dir, media_folder, name, capsys):
    args = ["predict", "--model", str(trained_dir), "--input", str(media_folder / name), "--prompt", QUESTIONS[name], "--device", "cpu", "--max_new_tokens", "8"]
    assert main(args) == 0
    answer = capsys.readouterr().out.strip()
    predictor = Predictor.from_pretrained(trained_dir, device="cpu")
    assert answer and answer == predictor.generate([predictor.prompt_for(media_folder / name, QUESTIONS[name])], 8)[0]
    if name == "left.mp4":
        assert answer == "left"  # learned (the image's longer answer needs more steps than a test should take)


def test_verbose_prints_the_time_to_first_token_split(trained_dir, media_folder, capsys):
    args = ["predict", "--model", str(trained_dir), "--input", str(media_folder / "left.mp4"), "--prompt", "Which way?", "--device", "cpu", "--verbose"]
    assert main(args) == 0
    err = capsys.readouterr().err
    for words in ("time to first token", "decode", "preprocess", "vision encode", "prefill", "2 frames", "tokens/s"):
        assert words in err


def test_python_api_and_streaming_agree_with_batched_generation(trained_dir, media_folder):
    predictor = fastvlm_video.load(trained_dir, device="cpu")
    assert predictor.ask(media_folder / "left.mp4", "Which way?") == "left"
    prompts = [predictor.prompt_for(media_folder / name, QUESTIONS[name]) for name in ANSWERS]
    timings = Timings()
    streamed = ["".join(predictor.stream(p, 8, timings)).strip() for p in prompts]
    assert streamed == predictor.generate(prompts, 8)  # batched, left-padded, pixel_values through generate
    assert timings.new_tokens >= 1 and all(timings.seconds[s] > 0 for s in STEPS if s != "decode")


def test_frames_encoded_one_by_one_equal_one_batch(trained_dir, media_folder):
    predictor = Predictor.from_pretrained(trained_dir, device="cpu", num_frames=4)
    pixels = predictor._inputs([predictor.prompt_for(media_folder / "left.mp4", "What?")])["pixel_values"]
    batched = predictor.encode_frames(pixels).pooler_output
    single = predictor.encode_frames(pixels, one_by_one=True).pooler_output
    assert batched.shape[0] == 4 and (batched - single).abs().max() < 1e-5
