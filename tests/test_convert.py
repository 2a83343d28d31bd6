"""Original ml-fastvlm checkpoints: a tiny one is written in the original layout (by the inverse key map of
``export --format apple``, whose original-side names mlx-vlm's strict loader checks in test_ship_mlx), then
converted back; logits must be identical."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoModelForImageTextToText, AutoProcessor, FastVlmForConditionalGeneration

from fastvlm_video.cli import main
from fastvlm_video.constants import IMAGE_TOKEN
from fastvlm_video.errors import ConfigError
from fastvlm_video.model.convert import original_key_map
from fastvlm_video.model.load import detect_format, load_model, load_tokenizer, video_config_of
from fastvlm_video.model.tiny import build_tiny_tokenizer, tiny_fastvlm_config


def to_original_layout(model: FastVlmForConditionalGeneration) -> dict[str, torch.Tensor]:
    """The standard model's weights under original ml-fastvlm names (plus the unused CLIP head)."""
    state = model.state_dict()
    out = {name: state[standard].clone().contiguous() for name, standard in original_key_map(list(state)).items()}
    out["model.vision_tower.vision_tower.model.head.proj"] = torch.randn(model.config.vision_config.hidden_size, 16)
    return out


def original_config(model: FastVlmForConditionalGeneration, vocab_size: int) -> dict:
    text = model.config.text_config
    return {
        "architectures": ["LlavaQwen2ForCausalLM"], "model_type": "llava_qwen2", "hidden_act": "silu",
        "hidden_size": text.hidden_size, "intermediate_size": text.intermediate_size,
        "num_hidden_layers": text.num_hidden_layers, "num_attention_heads": text.num_attention_heads,
        "num_key_value_heads": text.num_key_value_heads, "max_position_embeddings": text.max_position_embeddings,
        "rms_norm_eps": text.rms_norm_eps, "rope_theta": text.rope_parameters["rope_theta"], "vocab_size": vocab_size,
        "tie_word_embeddings": False, "torch_dtype": "float32", "use_cache": True,
        "mm_hidden_size": model.config.vision_config.hidden_size, "mm_projector_type": "mlp2x_gelu",
        "mm_vision_tower": "mobileclip_l_128", "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch",
        "mm_use_im_start_end": False, "mm_use_im_patch_token": False, "mm_patch_merge_type": "flat",
        "image_aspect_ratio": "pad", "tokenizer_model_max_length": 2048, "tokenizer_padding_side": "right",
        "tune_mm_mlp_adapter": False, "unfreeze_mm_vision_tower": True, "use_mm_proj": True,
    }  # fmt: skip


def write_original(path, reparameterised: bool, padded_vocab: bool):
    """A tiny original checkpoint; returns the standard model it was made from (the reference)."""
    tokenizer = build_tiny_tokenizer(image_token=False)  # the original vocabulary has no <image>
    image_id = len(tokenizer)  # where conversion will add it
    vocab = image_id + 8 if padded_vocab else image_id + 1  # Qwen2 pads its embeddings; else conversion grows them
    torch.manual_seed(0)
    reference = FastVlmForConditionalGeneration(tiny_fastvlm_config(vocab, image_id, inference_mode=reparameterised)).eval()
    weights = to_original_layout(reference)
    if not padded_vocab:  # drop the <image> row: the original never had it
        for key in ("model.embed_tokens.weight", "lm_head.weight"):
            weights[key] = weights[key][:image_id].clone()
    path.mkdir(parents=True)
    save_file(weights, str(path / "model.safetensors"))
    (path / "config.json").write_text(json.dumps(original_config(reference, vocab if padded_vocab else image_id)))
    tokenizer.save_pretrained(path)
    return reference


def logits(model, image_id: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, image_id, (1, 12), generator=gen)
    ids = torch.cat([ids[:, :3], torch.full((1, 4), image_id), ids[:, 3:]], dim=1)  # 64 px frame -> 1x1 tokens x 4 frames
    pixels = torch.rand(4, 3, 64, 64, generator=gen)
    with torch.no_grad():
        return model.eval()(input_ids=ids, pixel_values=pixels).logits


@pytest.fixture(scope="module", params=[(True, True), (False, False)], ids=["released-reparameterised", "train-time-tower"])
def original(request, tmp_path_factory):
    reparameterised, padded = request.param
    path = tmp_path_factory.mktemp("original") / "ckpt"
    return path, write_original(path, reparameterised, padded), reparameterised


def test_original_converts_on_load_with_identical_logits(original, pinned_threads):
    path, reference, reparameterised = original
    assert detect_format(path) == "llava_qwen2"
    model = load_model(path)
    tokenizer = load_tokenizer(path)
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    assert image_id == reference.config.image_token_id == model.config.image_token_id
    assert model.config.vision_config.model_args["inference_mode"] is reparameterised
    assert model.config.vision_config.model_args["layers"] == [1, 1, 1, 1, 1]
    got, want = logits(model, image_id), logits(reference, image_id)
    # Weights are bitwise equal (the reference was built from them). The logits may still differ in the last bits: BLAS picks kernels by
    # memory alignment (tensors read from safetensors sit at 8 mod 64 bytes, freshly built ones at 0), which
    # reorders fp32 sums (measured: 1.9e-6 on logits of magnitude 3.7 with 1 thread, 0 with 2). A wrong key,
    # shape or config changes them by orders of magnitude more than 1e-5.
    torch.testing.assert_close(got[..., :image_id], want[..., :image_id], rtol=0, atol=1e-5)  # the <image> row is new when grown
    assert "<|im_start|>assistant" in tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    video = video_config_of(path)
    assert (video.image_size, video.aspect) == (128, "pad")


def test_convert_command_writes_a_plain_transformers_checkpoint(original, tmp_path, pinned_threads):
    path, reference, _ = original
    out = tmp_path / "converted"
    assert main(["convert", str(path), str(out)]) == 0
    assert detect_format(out) == "fast_vlm"
    plain = AutoModelForImageTextToText.from_pretrained(out)
    processor = AutoProcessor.from_pretrained(out)
    image_id = plain.config.image_token_id
    # tolerance: see test_original_converts_on_load_with_identical_logits
    torch.testing.assert_close(logits(plain, image_id)[..., :image_id], logits(reference, image_id)[..., :image_id], rtol=0, atol=1e-5)
    assert processor.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN) == image_id
    assert list(processor.image_processor.image_mean) == [0.0] * 3 and list(processor.image_processor.image_std) == [1.0] * 3
    assert processor.image_processor.size["height"] == 128 and processor.image_processor.do_pad
    assert json.loads((out / "video_config.json").read_text())["aspect"] == "pad"


def test_conversion_names_missing_and_unexpected_keys(original, tmp_path):
    from safetensors.torch import load_file

    path, _, _ = original
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (broken / name).write_bytes((path / name).read_bytes())
    weights = load_file(str(path / "model.safetensors"))
    weights.pop("model.layers.1.mlp.up_proj.weight")
    weights["model.vision_tower.vision_tower.model.network.0.0.mystery.weight"] = torch.zeros(2)
    save_file(weights, str(broken / "model.safetensors"))
    with pytest.raises(ConfigError) as err:
        load_model(broken)
    assert "model.layers.1.mlp.up_proj.weight" in str(err.value)  # the original name of what is missing
    assert "model.language_model.layers" not in str(err.value)
    assert "model.vision_tower.vision_tower.model.network.0.0.mystery.weight" in str(err.value)


def test_unknown_format_says_what_was_found_and_what_is_supported(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llava_llama"}))
    with pytest.raises(ConfigError, match="found model_type 'llava_llama'.*'fast_vlm'.*'llava_qwen2'.*adapter_config.json"):
        detect_format(tmp_path)
    with pytest.raises(ConfigError, match="no config.json"):
        detect_format(tmp_path / "missing")


def test_convert_rejects_a_standard_checkpoint(tiny_model_dir, tmp_path, capsys):
    assert main(["convert", str(tiny_model_dir), str(tmp_path / "x")]) == 1
    assert "already" in capsys.readouterr().err


def copy_original(path, dst, skip=()):
    dst.mkdir()
    for file in path.iterdir():
        if file.name not in skip:
            (dst / file.name).write_bytes(file.read_bytes())
    return dst


def convert_error(src, tmp_path, capsys) -> str:
    """`convert` fails with one line (no traceback) naming the problem."""
    assert main(["convert", str(src), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "Traceback" not in err and "\n" not in err
    return err


def test_convert_names_a_tensor_of_the_wrong_shape(original, tmp_path, capsys):
    from safetensors.torch import load_file

    broken = copy_original(original[0], tmp_path / "broken")
    weights = load_file(str(broken / "model.safetensors"))
    weights["model.mm_projector.2.weight"] = torch.zeros(3, 5)
    save_file(weights, str(broken / "model.safetensors"))
    err = convert_error(broken, tmp_path, capsys)
    assert "model.mm_projector.2.weight (3, 5) (expected (" in err


def test_convert_names_a_truncated_weights_file(original, tmp_path, capsys):
    broken = copy_original(original[0], tmp_path / "broken")
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    err = convert_error(broken, tmp_path, capsys)
    assert str(broken / "model.safetensors") in err and "damaged or incomplete" in err


def test_convert_recognises_a_git_lfs_pointer(original, tmp_path, capsys):
    broken = copy_original(original[0], tmp_path / "broken")
    (broken / "model.safetensors").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 1207\n"
    )
    err = convert_error(broken, tmp_path, capsys)
    assert "Git-LFS pointer" in err and "git lfs pull" in err


def test_convert_without_a_tokenizer_says_so(original, tmp_path, capsys):
    broken = copy_original(original[0], tmp_path / "broken", skip=("tokenizer.json", "tokenizer_config.json"))
    err = convert_error(broken, tmp_path, capsys)
    assert "no tokenizer" in err and str(broken) in err


def test_convert_without_mm_vision_tower_says_it_is_missing(original, tmp_path, capsys):
    broken = copy_original(original[0], tmp_path / "broken")
    config = json.loads((broken / "config.json").read_text())
    del config["mm_vision_tower"]
    (broken / "config.json").write_text(json.dumps(config))
    assert "no 'mm_vision_tower'" in convert_error(broken, tmp_path, capsys)


def test_convert_and_export_refuse_an_existing_output(original, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["convert", str(original[0]), str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err and (out / "keep.txt").read_text() == "mine"
    assert main(["convert", str(original[0]), str(out), "--overwrite"]) == 0
