"""High-bit-depth images are scaled to 8 bit, never clipped (a 16-bit PNG used to turn white), by one
rule shared by images, animation frames and frame folders, and fed alike to train, predict and serve."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fastvlm_video.data.chat import ChatEncoder
from fastvlm_video.data.dataset import ConversationDataset
from fastvlm_video.data.records import MediaRef, Message, Sample
from fastvlm_video.media.image import load_image_tensor, to_rgb8


def picture(h=48, w=64) -> np.ndarray:
    """An 8-bit grey picture: a horizontal ramp with a bright disc (mean ~110, like the walk's depth map)."""
    y, x = np.mgrid[:h, :w]
    grey = (x * 255 // (w - 1)).astype(np.uint8) // 2
    grey[(y - h // 2) ** 2 + (x - w // 2) ** 2 < (h // 4) ** 2] = 230
    return grey


@pytest.fixture
def grey_pair(tmp_path):
    """The same picture as an 8-bit PNG and as a 16-bit PNG (v * 257, the exact widening)."""
    grey = picture()
    Image.fromarray(grey, mode="L").save(tmp_path / "grey.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "depth16.png")
    with Image.open(tmp_path / "depth16.png") as im:
        assert im.mode == "I;16"  # what Pillow makes of a 16-bit greyscale PNG
    return tmp_path / "grey.png", tmp_path / "depth16.png"


def test_a_16_bit_png_gives_the_pixels_of_the_same_8_bit_png(grey_pair):
    eight, sixteen = grey_pair
    for aspect in ("pad", "crop"):
        assert torch.equal(load_image_tensor(sixteen, 64, aspect), load_image_tensor(eight, 64, aspect))
    # the walk's numbers: the 16-bit file was a white image (mean 190 vs 80); now the same mean
    assert load_image_tensor(sixteen, 64).float().mean() == pytest.approx(load_image_tensor(eight, 64).float().mean())


def test_a_16_bit_png_widened_by_shifting_is_within_one_level(tmp_path):
    grey = picture()
    Image.fromarray(grey.astype(np.uint16) << 8).save(tmp_path / "shifted.png")  # v * 256, as some tools widen
    got = np.asarray(to_rgb8(Image.open(tmp_path / "shifted.png")))[..., 0].astype(int)
    assert np.abs(got - grey).max() <= 1


@pytest.mark.parametrize(
    "make,expected",
    [
        (lambda g: Image.fromarray(g.astype(">u2") * 257), "same"),  # I;16B
        (lambda g: Image.fromarray(g.astype("<u2") * 257).convert("I"), "same"),  # I holding 16-bit data
        (lambda g: Image.fromarray(g.astype(np.float32) / 255, mode="F"), "same"),  # F in [0, 1]
        (lambda g: Image.fromarray(g.astype(np.int32) * 1000 - 50_000, mode="I"), "stretch"),  # I beyond 0..65535
        (lambda g: Image.fromarray(g.astype(np.float32) * 7.5 - 3, mode="F"), "stretch"),  # F beyond [0, 1]
    ],
    ids=["I;16B", "I-16bit", "F-unit", "I-wide", "F-wide"],
)
def test_every_high_bit_depth_mode_is_scaled(make, expected):
    grey = picture()
    image = make(grey)
    got = np.asarray(to_rgb8(image))
    assert got.dtype == np.uint8 and got.shape == (*grey.shape, 3)
    assert (got[..., 0] == got[..., 1]).all() and (got[..., 1] == got[..., 2]).all()
    want = grey if expected == "same" else np.rint((grey - grey.min()) * 255.0 / (grey.max() - grey.min()))
    assert np.abs(got[..., 0].astype(int) - want).max() <= 1


def test_train_predict_evaluate_and_serve_see_the_same_16_bit_pixels(grey_pair, tokenizer, tiny_model_dir, tmp_path):
    """Training's dataset, predict (``prompt_for``), evaluate (``prepare`` on records) and the serve API
    (``parse_request`` -> ``prepare``) all feed the 16-bit file as its 8-bit copy."""
    from fastvlm_video.infer.predictor import Predictor
    from fastvlm_video.serve.media import MediaStore
    from fastvlm_video.serve.openai import parse_request

    eight, sixteen = grey_pair
    predictor = Predictor.from_pretrained(tiny_model_dir, device="cpu")
    video = predictor.video
    expected = load_image_tensor(eight, video.image_size, video.aspect)
    sample = Sample("s", [Message("user", "<image>\nWhat?"), Message("assistant", "a disc")], [MediaRef(str(sixteen), "image")])
    trained = ConversationDataset([sample], ChatEncoder(tokenizer, video.tokens_per_frame), video).build(sample)["pixel_values"]
    predicted = predictor.prompt_for(sixteen, "What?").pixel_values
    evaluated = predictor.prepare(sample.messages[:1], sample.media).pixel_values
    content = [{"type": "image_url", "image_url": {"url": sixteen.name}}, {"type": "text", "text": "What?"}]
    request = parse_request({"messages": [{"role": "user", "content": content}]}, MediaStore(sixteen.parent, tmp_path / "up", 10**6))
    served = predictor.prepare(request.messages, request.media).pixel_values
    for pixels in (trained, predicted, evaluated, served):
        assert torch.equal(pixels, expected)
