"""Fidelity to Apple's original ml-fastvlm code, against golden files Apple's own code made.

tests/data/apple_golden/ is a tiny checkpoint that Apple's ``LlavaQwen2ForCausalLM`` (MCi FastViTHD tower,
shrunk; mlp2x_gelu projector; Qwen2) saved in its own layout, and apple_golden_logits.safetensors its
logits on 2 frames, computed by Apple's forward (``benchmarks/make_apple_golden.py`` documents how they were
made). Nothing here uses Apple's code, so a wrong name in the two-way table (``model/convert.py``) fails
these tests even though the round trip export -> convert (tests/test_ship_apple.py) would still pass.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fastvlm_video.cli import main
from fastvlm_video.constants import IMAGE_TOKEN
from fastvlm_video.model.load import detect_format, load_model, load_tokenizer
from fastvlm_video.ship.apple import HEAD_DIM, HEAD_KEY

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "apple_golden"
FACTS = json.loads((DATA / "apple_golden.json").read_text())
APPLE_IMAGE_INDEX = -200  # llava.constants.IMAGE_TOKEN_INDEX
# Apple's forward and ours run the same float32 weights through different implementations (Apple's MCi vs
# timm's FastViT, Apple's LLaVA splicing vs transformers'): the sums differ in order only. Logits are
# about 4 in size; float32 rounding over these few layers stays near 1e-6, so 1e-4 is loose for rounding and
# far below what a wrong weight, name or token order gives (differences of 0.1 and more).
ATOL = 1e-4


@pytest.fixture(scope="module")
def golden_inputs():
    return load_file(str(DATA / "apple_golden_logits.safetensors"))


@pytest.fixture(scope="module")
def converted():
    torch.manual_seed(0)
    return load_model(GOLDEN, dtype=torch.float32).eval()


def our_ids(apple_ids: torch.Tensor, image_id: int, tokens_per_frame: int) -> torch.Tensor:
    """Apple's ids mark a frame with one -200; ours repeat ``<image>`` once per visual token."""
    out = []
    for token in apple_ids.tolist():
        out += [image_id] * tokens_per_frame if token == APPLE_IMAGE_INDEX else [token]
    return torch.tensor([out])


def test_convert_gives_apples_logits(converted, golden_inputs):
    assert detect_format(GOLDEN) == "llava_qwen2"
    image_id = load_tokenizer(GOLDEN).convert_tokens_to_ids(IMAGE_TOKEN)
    ids = our_ids(golden_inputs["input_ids"][0], image_id, FACTS["tokens_per_frame"])
    pixels = golden_inputs["pixels_u8"].float() / 255
    with torch.no_grad():
        ours = converted(input_ids=ids, pixel_values=pixels).logits[0]
    want = golden_inputs["logits"]
    assert ours.shape[0] == want.shape[0]
    got = ours[:, : want.shape[1]]  # convert adds an <image> row to the vocabulary
    assert torch.allclose(got, want, atol=ATOL, rtol=0), (got - want).abs().max()
    assert got.argmax(-1).tolist() == want.argmax(-1).tolist()


def test_export_apple_writes_what_apples_code_saved(tmp_path):
    """convert, then export --format apple: the same names, shapes and values as Apple's own save."""
    assert main(["convert", str(GOLDEN), str(tmp_path / "std")]) == 0
    assert main(["export", str(tmp_path / "std"), str(tmp_path / "apple"), "--format", "apple"]) == 0
    golden = load_file(str(GOLDEN / "model.safetensors"))
    ours = load_file(str(tmp_path / "apple" / "model.safetensors"))
    assert sorted(ours) == sorted(golden)
    # The MobileCLIP head (unused by FastVLM) is the one shape the golden file shrinks: Apple's is 768 wide.
    assert FACTS["apple_head_out"] == HEAD_DIM and ours[HEAD_KEY].shape == (golden[HEAD_KEY].shape[0], HEAD_DIM)
    # convert gave <image> a row of its own (Apple's vocabulary had no spare one); export keeps it as the
    # last row, and Apple's loader trims the embeddings to its tokenizer (which has no <image>).
    rows = golden["lm_head.weight"].shape[0]
    for key, value in golden.items():
        mine = ours[key][:rows] if key in ("lm_head.weight", "model.embed_tokens.weight") else ours[key]
        if key != HEAD_KEY:
            assert mine.shape == value.shape and torch.equal(mine.to(value.dtype), value), key
    assert ours["lm_head.weight"].shape[0] == rows + 1
    mine, apples = (json.loads((p / "config.json").read_text()) for p in (tmp_path / "apple", GOLDEN))
    read_by_apple = (
        "architectures", "model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "vocab_size", "rms_norm_eps", "tie_word_embeddings", "hidden_act", "mm_vision_tower",
        "mm_hidden_size", "mm_projector_type", "mm_patch_merge_type", "mm_use_im_start_end", "mm_use_im_patch_token",
        "image_aspect_ratio", "use_mm_proj",
    )  # fmt: skip
    assert mine["vocab_size"] == apples["vocab_size"] + 1
    read_by_apple = [k for k in read_by_apple if k != "vocab_size"]
    assert {k: mine.get(k) for k in read_by_apple} == {k: apples[k] for k in read_by_apple}
    assert IMAGE_TOKEN not in json.loads((tmp_path / "apple" / "tokenizer.json").read_text())["model"]["vocab"]


def test_export_of_a_train_time_tower_is_reparameterised_as_apples_code_builds_it(tmp_path, tokenizer):
    """Apple's ``fastvithd`` is built with inference_mode=True only: train-time branches would be ignored."""
    from fastvlm_video.model.export import save_checkpoint
    from fastvlm_video.model.tiny import build_tiny_model
    from fastvlm_video.video_config import VideoConfig

    embed_dims = tuple(FACTS["tiny_tower"]["embed_dims"])
    model = build_tiny_model(tokenizer, seed=1, vision_embed_dims=embed_dims).eval()
    assert not model.config.vision_config.model_args.get("inference_mode")
    save_checkpoint(model, tokenizer, VideoConfig(image_size=128, num_frames=2), tmp_path / "std")
    assert main(["export", str(tmp_path / "std"), str(tmp_path / "apple"), "--format", "apple"]) == 0
    golden = load_file(str(GOLDEN / "model.safetensors"))
    ours = load_file(str(tmp_path / "apple" / "model.safetensors"))
    tower = "model.vision_tower.vision_tower.model."
    assert sorted(k for k in ours if k.startswith(tower)) == sorted(k for k in golden if k.startswith(tower))
