"""export --format mlx + ship.mlx_runtime: mlx-vlm gives PyTorch's answer for an image and a 2-frame video.

Runs when the `mlx` extra is installed (pip install -e '.[mlx]'; on Linux mlx[cpu]); skips otherwise.
The tiny tower loads in mlx-vlm through ``tower_shape`` (mlx-vlm fixes FastViTHD's shape in class attributes).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("mlx_vlm", reason="the mlx extra is not installed (pip install -e '.[mlx]')")
import mlx.core as mx

from fastvlm_video.cli import main
from fastvlm_video.infer.predictor import Predictor
from fastvlm_video.media.transforms import to_model_pixels
from fastvlm_video.model.export import save_checkpoint
from fastvlm_video.model.tiny import build_tiny_model
from fastvlm_video.ship import mlx_runtime
from fastvlm_video.video_config import VideoConfig

QUESTION = "Which direction does the red square move?"


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tokenizer):
    """A tiny model with the train-time tower (as training saves it), exported to MLX by the CLI."""
    root = tmp_path_factory.mktemp("mlx")
    save_checkpoint(
        build_tiny_model(tokenizer, seed=5),
        tokenizer,
        VideoConfig(image_size=128, num_frames=2),
        root / "std",
    )
    assert main(["export", str(root / "std"), str(root / "mlx"), "--format", "mlx"]) == 0
    return root / "std", root / "mlx"


@pytest.mark.parametrize("media", ["still.png", "left.mp4"], ids=["image", "2-frame-video"])
def test_mlx_matches_pytorch(exported, media_folder, media):
    std, mlx_dir = exported
    torch_side = Predictor.from_pretrained(std, device="cpu")
    prompt = torch_side.prompt_for(media_folder / media, QUESTION)
    model, tokenizer, video = mlx_runtime.load(mlx_dir)
    ids, pixels = mlx_runtime.prompt_inputs(tokenizer, video, QUESTION, media_folder / media)
    # The same prompt and the very same pixels (no skew from mlx-vlm's own image processing).
    frames = 2 if media.endswith(".mp4") else 1
    assert (ids == mlx_runtime.IMAGE_INDEX).sum() == frames == prompt.pixel_values.shape[0]
    assert np.array_equal(pixels, to_model_pixels(prompt.pixel_values).numpy())
    with torch.no_grad():
        want = (
            torch_side.model(
                input_ids=prompt.input_ids[None], pixel_values=to_model_pixels(prompt.pixel_values)
            )
            .logits[0]
            .numpy()
        )
    got = np.array(model(mx.array(ids)[None], mx.array(pixels), None).logits[0])
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 1e-4
    answer = torch_side.generate([prompt], max_new_tokens=8)[0]
    assert mlx_runtime.ask(mlx_dir, media_folder / media, QUESTION, max_tokens=8) == answer


def test_upstream_multi_image_merge_is_wrong_and_the_patch_fixes_it(exported, media_folder):
    """mlx-vlm 0.7.10 misplaces the text after the 2nd image; if this fails, upstream fixed it: drop patch_model."""
    _, mlx_dir = exported
    model, tokenizer, video = mlx_runtime.load(mlx_dir)
    ids, pixels = mlx_runtime.prompt_inputs(tokenizer, video, QUESTION, media_folder / "left.mp4")
    fixed = np.array(model(mx.array(ids)[None], mx.array(pixels), None).logits)
    del model.prepare_inputs_for_multimodal  # back to the class's (upstream) method
    upstream = np.array(model(mx.array(ids)[None], mx.array(pixels), None).logits)
    assert np.abs(fixed - upstream).max() > 1e-3


def test_to_apple_ids_marks_each_frame_once():
    ids = mlx_runtime.to_apple_ids(
        [1, 9, 9, 9, 9, 2, 9, 9, 9, 9, 9, 9, 9, 9, 3], image_token_id=9, tokens_per_frame=4
    )
    assert ids.tolist() == [1, -200, 2, -200, -200, 3]
    assert mlx_runtime.to_apple_ids([9, 9, 1], image_token_id=9, tokens_per_frame=1).tolist() == [
        -200,
        -200,
        1,
    ]


def test_quantized_export_loads_and_answers(exported, tmp_path, media_folder):
    std, _ = exported
    out = tmp_path / "q8"
    assert main(["export", str(std), str(out), "--format", "mlx", "--quantize", "8"]) == 0
    assert '"bits": 8' in (out / "config.json").read_text()
    assert isinstance(mlx_runtime.ask(out, media_folder / "left.mp4", QUESTION, max_tokens=4), str)
