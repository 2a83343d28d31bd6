"""export --format apple: Apple's original ml-fastvlm layout, and back through convert with identical logits."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from fastvlm_video.cli import main
from fastvlm_video.constants import IMAGE_TOKEN
from fastvlm_video.errors import ConfigError
from fastvlm_video.model.convert import key_map, original_key_map
from fastvlm_video.model.export import save_checkpoint
from fastvlm_video.model.load import detect_format, load_model, load_tokenizer, video_config_of
from fastvlm_video.model.tiny import build_tiny_model
from fastvlm_video.ship.apple import HEAD_KEY, to_original_state_dict
from fastvlm_video.video_config import VideoConfig


def logits(model, image_id: int, frames: int = 3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, image_id, (1, 10), generator=gen)
    ids = torch.cat(
        [ids[:, :3], torch.full((1, 4 * frames), image_id), ids[:, 3:]], dim=1
    )  # 128 px: 2x2 tokens a frame
    with torch.no_grad():
        return model.eval()(input_ids=ids, pixel_values=torch.rand(frames, 3, 128, 128, generator=gen)).logits


@pytest.fixture(scope="module", params=[True, False], ids=["reparameterised", "train-time-tower"])
def standard(request, tmp_path_factory, tokenizer):
    path = tmp_path_factory.mktemp("std") / "ckpt"
    model = build_tiny_model(tokenizer, seed=3, inference_mode=request.param).eval()
    save_checkpoint(model, tokenizer, VideoConfig(image_size=128, num_frames=3, aspect="crop"), path)
    return path, model


def test_apple_export_round_trips_with_identical_weights_and_logits(standard, tmp_path, tokenizer, pinned_threads):
    src, model = standard
    apple = tmp_path / "apple"
    assert main(["export", str(src), str(apple), "--format", "apple"]) == 0
    assert detect_format(apple) == "llava_qwen2"
    config = json.loads((apple / "config.json").read_text())
    assert (
        config["architectures"] == ["LlavaQwen2ForCausalLM"]
        and config["mm_vision_tower"] == "mobileclip_l_128"
    )
    assert config["image_aspect_ratio"] == "crop" and config["mm_projector_type"] == "mlp2x_gelu"
    weights = load_file(str(apple / "model.safetensors"))
    assert "model.mm_projector.0.weight" in weights and "model.embed_tokens.weight" in weights
    assert all(
        k.startswith(
            (
                "model.vision_tower.vision_tower.model.",
                "model.layers.",
                "model.norm.",
                "model.embed_tokens.",
                "model.mm_projector.",
                "lm_head.",
            )
        )
        for k in weights
    )
    assert any(".network.1.proj.0.lkb_" in k for k in weights) and any(
        k.endswith(".layer_scale_1") for k in weights
    )
    # Apple's `fastvithd` is built reparameterised only: a train-time tower is reparameterised on export.
    assert not any(".rbr_conv." in k or ".lkb_origin." in k for k in weights)
    assert torch.count_nonzero(weights[HEAD_KEY]) == 0
    # Apple's tokenizer has no <image>: the prompt's "<image>" is plain text that Apple's code turns into -200.
    apple_tok = AutoTokenizer.from_pretrained(apple)
    assert IMAGE_TOKEN not in apple_tok.get_vocab() and len(apple_tok) == len(tokenizer) - 1
    assert apple_tok("hello <|im_end|>")["input_ids"] == tokenizer("hello <|im_end|>")["input_ids"]
    pre = json.loads((apple / "preprocessor_config.json").read_text())
    assert (pre["image_mean"], pre["image_std"], pre["crop_size"]["height"]) == ([0.0] * 3, [1.0] * 3, 128)
    assert video_config_of(apple) == video_config_of(src)
    # ...and back: convert gives the same model (a train-time tower comes back reparameterised).
    back = load_model(apple)
    image_id = load_tokenizer(apple).convert_tokens_to_ids(IMAGE_TOKEN)
    assert image_id == model.config.image_token_id
    if not model.config.vision_config.model_args.get("inference_mode"):
        import copy

        from fastvlm_video.ship.apple import reparameterise_tower

        # timm's reparameterisation folds BatchNorm into convs: the same function up to float32 rounding
        # (logits of size ~1; differences near 1e-6), far below what a wrong weight gives.
        assert torch.allclose(logits(back, image_id), logits(model, image_id), atol=1e-4, rtol=0)
        model = copy.deepcopy(model)
        reparameterise_tower(model)
    assert back.state_dict().keys() == model.state_dict().keys()
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in model.state_dict().items())
    # Weights are bitwise equal (above). The logits may still differ in the last bits: BLAS picks kernels by
    # memory alignment (tensors read from safetensors sit at 8 mod 64 bytes, freshly built ones at 0), which
    # reorders fp32 sums (measured: 1.9e-6 on logits of magnitude 3.7 with 1 thread, 0 with 2). A wrong key,
    # shape or config changes them by orders of magnitude more than 1e-5.
    torch.testing.assert_close(logits(back, image_id), logits(model, image_id), rtol=0, atol=1e-5)


def test_every_key_maps_both_ways(standard):
    _, model = standard
    names = original_key_map(list(model.state_dict()))
    assert len(names) == len(model.state_dict())
    assert {std: orig for orig, std in names.items()} == key_map(list(names))


def test_keys_the_layout_cannot_hold_are_named(standard):
    _, model = standard
    state = dict(model.state_dict())
    state["model.extra_adapter.weight"] = torch.zeros(1)
    with pytest.raises(ConfigError, match=r"no name rule knows: \['model\.extra_adapter\.weight'\]"):
        to_original_state_dict(state, (256, 768))


def test_convert_names_missing_and_unexpected_keys_of_an_apple_folder(standard, tmp_path):
    src, _ = standard
    apple = tmp_path / "apple"
    assert main(["export", str(src), str(apple), "--format", "apple"]) == 0
    weights = load_file(str(apple / "model.safetensors"))
    weights.pop("model.mm_projector.2.bias")
    weights["model.mystery.weight"] = torch.zeros(2)
    from safetensors.torch import save_file

    save_file(weights, str(apple / "model.safetensors"))
    with pytest.raises(ConfigError, match=r"Missing keys: \[.model\.mm_projector\.2\.bias.\]\. Unexpected keys: \[.model\.mystery\.weight.\]"):
        load_model(apple)
