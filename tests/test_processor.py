"""The processor saved with a checkpoint reproduces training's pixels (pad to a black square, resize to S,
[0, 1]), so plain `transformers` (AutoProcessor + AutoModelForImageTextToText, no fastvlm_video import)
gives the same pixels and the same logits as our `predict`. The docs/models.md snippet is run as written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoProcessor

from fastvlm_video.demo.synthetic import moving_square_frames, write_video
from fastvlm_video.infer.predictor import Predictor
from fastvlm_video.media.transforms import image_to_tensor, to_model_pixels
from fastvlm_video.model.processor import image_size_of, make_processor
from fastvlm_video.model.tiny import build_tiny_model
from fastvlm_video.video_config import VideoConfig

DOCS = Path(__file__).resolve().parents[1] / "docs" / "models.md"
SIZE = 128


def smooth_image(width: int, height: int, seed: int = 0) -> Image.Image:
    """A picture with detail at every scale: random blocks, bilinearly enlarged."""
    blocks = np.random.default_rng(seed).integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    return Image.fromarray(blocks).resize((width, height), Image.Resampling.BILINEAR)


@pytest.fixture(scope="module")
def saved_processor(tmp_path_factory, tokenizer):
    path = tmp_path_factory.mktemp("processor")
    make_processor(tokenizer, SIZE).save_pretrained(path)
    return path


@pytest.mark.parametrize("size", [(640, 480), (360, 640), (1920, 1080), (61, 37)], ids=["landscape", "portrait", "1080p", "small"])
def test_pil_backend_gives_trainings_pixels_exactly(saved_processor, size):
    image = smooth_image(*size)
    ours = to_model_pixels(image_to_tensor(image, SIZE))[0]
    theirs = AutoImageProcessor.from_pretrained(saved_processor, backend="pil")(images=image, return_tensors="pt")["pixel_values"][0]
    assert torch.equal(ours, theirs)
    h, w = image_to_tensor(image, SIZE).shape[-2:]
    if size[0] != size[1]:  # the black bars are there (a centre crop would have none)
        bar = ours[:, :2, :] if size[0] > size[1] else ours[:, :, :2]
        assert bar.abs().max() == 0


@pytest.mark.parametrize("size", [(640, 480), (360, 640)], ids=["landscape", "portrait"])
def test_default_backend_is_within_one_uint8_level(saved_processor, size):
    """AutoProcessor's default (torchvision) resizes with torch's bicubic: at most 1/255 off, mean < 0.01/255."""
    image = smooth_image(*size, seed=1)
    ours = to_model_pixels(image_to_tensor(image, SIZE))[0]
    theirs = AutoProcessor.from_pretrained(saved_processor).image_processor(images=image, return_tensors="pt")["pixel_values"][0]
    diff = (ours - theirs).abs() * 255
    assert diff.max() <= 1.0 + 1e-4 and diff.mean() < 0.01  # measured max 1.0, mean 0.003 (landscape)


def test_processor_follows_the_aspect_setting(tokenizer, tmp_path):
    """crop: CLIP truncates the resized long side where we round, so only sizes that scale to whole pixels
    (here 768x512 -> 192x128) match exactly; pad and resize match for any size."""
    image = smooth_image(768, 512)
    for aspect in ("pad", "crop", "resize"):
        make_processor(tokenizer, SIZE, aspect=aspect).save_pretrained(tmp_path / aspect)
        processor = AutoImageProcessor.from_pretrained(tmp_path / aspect, backend="pil")
        ours = to_model_pixels(image_to_tensor(image, SIZE, aspect))[0]
        theirs = processor(images=image, return_tensors="pt")["pixel_values"][0]
        assert torch.equal(ours, theirs), aspect
        assert image_size_of(tmp_path / aspect) == SIZE


def docs_snippet() -> str:
    """The plain-transformers video snippet of docs/models.md (the python block after the marker)."""
    text = DOCS.read_text()
    match = re.search(r"<!-- plain-transformers-video -->\s*```python\n(.*?)```", text, re.S)
    assert match, "docs/models.md lost its plain-transformers video snippet"
    return match.group(1)


def test_docs_snippet_gives_predicts_logits_for_a_two_frame_video(tokenizer, tmp_path):
    """Run docs/models.md's snippet in a fresh interpreter (no fastvlm_video import) on a tiny checkpoint."""
    model_dir = tmp_path / "ft"
    build_tiny_model(tokenizer, seed=0).save_pretrained(model_dir)
    make_processor(tokenizer, SIZE).save_pretrained(model_dir)
    VideoConfig(num_frames=2, image_size=SIZE).save(model_dir)
    frames = np.pad(moving_square_frames("left", np.random.default_rng(0)), ((0, 0), (0, 0), (16, 16), (0, 0)))  # 96x64: pads
    clip = write_video(tmp_path / "clip.mp4", frames, fps=8, gop=8)
    snippet = docs_snippet().replace('"runs/ft"', repr(str(model_dir))).replace('"clip.mp4"', repr(str(clip)))
    snippet += f"\ntorch.save({{'inputs': dict(inputs), 'logits': logits}}, {str(tmp_path / 'plain.pt')!r})\n"
    code = "import sys; sys.modules['fastvlm_video'] = None\n" + snippet  # the package cannot be imported
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, capture_output=True, text=True)
    plain = torch.load(tmp_path / "plain.pt")

    predictor = Predictor.from_pretrained(model_dir, device="cpu")
    inputs = predictor._inputs([predictor.prompt_for(clip, "What happens?")])
    assert inputs["input_ids"].tolist() == plain["inputs"]["input_ids"].tolist()
    assert torch.equal(inputs["pixel_values"], plain["inputs"]["pixel_values"])
    with torch.no_grad():
        ours = predictor.model(**inputs).logits
    torch.testing.assert_close(ours, plain["logits"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("aspect", ["pad", "crop", "resize"])
def test_the_saved_processor_counts_k_image_tokens_per_frame(saved_processor, tokenizer, tmp_path, aspect):
    """vLLM (its transformers backend) asks the LlavaProcessor how many tokens an image takes; it reads
    ``crop_size``, which the pad processor does not use for pixels but must carry (else a TypeError)."""
    make_processor(tokenizer, SIZE, aspect).save_pretrained(tmp_path)
    processor = AutoProcessor.from_pretrained(tmp_path)
    counts = processor._get_num_multimodal_tokens(image_sizes=[[480, 640], [61, 37]])
    assert counts["num_image_tokens"] == [(SIZE // 64) ** 2] * 2
