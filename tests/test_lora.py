"""LoRA fine-tuning of the tiny model, merged export, QLoRA's error without CUDA, learning-rate groups,
gradient checkpointing."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForImageTextToText

from fastvlm_video.cli import main
from fastvlm_video.errors import ConfigError
from fastvlm_video.model.load import detect_format, load_model, load_tokenizer
from fastvlm_video.model.lora import LoraSettings, apply_lora, target_regex
from fastvlm_video.model.processor import make_processor
from fastvlm_video.model.tiny import build_tiny_model
from fastvlm_video.train.args import parse_train_args
from fastvlm_video.train.run import choose_trainable, train
from fastvlm_video.train.trainer import VideoTrainer


def write_data(root) -> str:
    """Images and text (videos take the same path; test_train covers them): 2 steps per epoch."""
    image = {"image": "still.png", "conversations": [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "a still image"}]}
    text = {"conversations": [{"from": "human", "value": "Say hi"}, {"from": "gpt", "value": "hi there"}]}
    path = root / "train.json"
    path.write_text(json.dumps([image, text] * 3))
    return str(path)


@pytest.fixture(scope="module")
def confident_model_dir(tmp_path_factory, tokenizer):
    """The tiny model with a sharper lm_head, as a pretrained LM has: with the head and final norm frozen,
    LoRA on a near-uniform random head could barely move the loss."""
    path = tmp_path_factory.mktemp("confident")
    model = build_tiny_model(tokenizer, seed=0)
    model.lm_head.weight.data *= 20
    model.save_pretrained(path)
    make_processor(tokenizer, 128).save_pretrained(path)
    return path


def args_for(model_dir, data, media_folder, out, *extra):
    return parse_train_args(
        [
            "--model_name_or_path", str(model_dir), "--data_path", data, "--image_folder", str(media_folder),
            "--num_video_frames", "2", "--image_size", "64", "--output_dir", str(out),
            "--per_device_train_batch_size", "3", "--learning_rate", "1e-2", "--num_train_epochs", "4",
            "--logging_steps", "1", "--save_strategy", "no", "--report_to", "none", "--use_cpu", "--seed", "0",
            "--disable_tqdm", "true", *extra,
        ]
    )  # fmt: skip


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, confident_model_dir, media_folder):
    root = tmp_path_factory.mktemp("lora")
    data = write_data(root)
    extra = ["--lora_enable", "--lora_r", "8", "--lora_alpha", "16", "--lora_dropout", "0.0", "--gradient_checkpointing", "true"]
    result = train(*args_for(confident_model_dir, data, media_folder, root / "out", *extra))
    return result, root


def test_lora_training_loss_falls_and_saves_an_adapter(lora_run, confident_model_dir):
    result, root = lora_run
    out = root / "out"
    state = json.loads((out / "trainer_state.json").read_text())
    losses = [e["loss"] for e in state["log_history"] if "loss" in e]
    assert sum(losses[-3:]) / 3 < 0.3 * sum(losses[:3]) / 3
    assert detect_format(out) == "lora"
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(confident_model_dir.resolve())
    assert (out / "video_config.json").is_file()


def test_merged_export_equals_the_adapter_model(lora_run, tmp_path):
    _, root = lora_run
    adapter_dir, merged_dir = root / "out", tmp_path / "merged"
    assert main(["export", str(adapter_dir), str(merged_dir)]) == 1  # an adapter needs --merge_lora
    assert main(["export", str(adapter_dir), str(merged_dir), "--merge_lora"]) == 0
    assert detect_format(merged_dir) == "fast_vlm"
    adapter_model = load_model(adapter_dir).eval()
    assert type(adapter_model).__name__.startswith("Peft")
    merged = AutoModelForImageTextToText.from_pretrained(merged_dir).eval()
    image_id = merged.config.image_token_id
    ids = torch.tensor([[5, 9, image_id, image_id, 17, 30, 2, 11]])
    pixels = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = adapter_model(input_ids=ids, pixel_values=pixels).logits
        b = merged(input_ids=ids, pixel_values=pixels).logits
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * a.abs().max().item())  # float32 rounding of the merge
    assert load_tokenizer(merged_dir).convert_tokens_to_ids("<image>") == image_id


def test_lora_targets_only_the_llm_and_trains_the_projector(tiny_model_dir):
    model = load_model(tiny_model_dir)
    assert target_regex(model, "all-linear").endswith("(down_proj|gate_proj|k_proj|o_proj|q_proj|up_proj|v_proj)")
    peft_model = apply_lora(model, LoraSettings(r=4, target_modules="q_proj,v_proj"))
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert any("language_model" in n and "q_proj.lora_A" in n for n in trainable)
    assert not any("k_proj" in n or "vision_tower" in n for n in trainable)
    assert any("multi_modal_projector" in n for n in trainable)
    with pytest.raises(ConfigError, match="not linear layers of the LLM"):
        target_regex(model, "qkv")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on machines without CUDA")
def test_qlora_without_cuda_fails_with_a_clear_error(tiny_model_dir, media_folder, tmp_path):
    data = write_data(tmp_path)
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        train(*args_for(tiny_model_dir, data, media_folder, tmp_path / "o", "--lora_enable", "--bits", "4"))


def test_gradient_checkpointing_keeps_gradients_flowing_to_lora(tiny_model_dir, media_folder, tmp_path):
    model_args, _, training_args = args_for(tiny_model_dir, "x.json", media_folder, tmp_path, "--lora_enable", "--gradient_checkpointing", "true")
    model = choose_trainable(load_model(tiny_model_dir), model_args, training_args)
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": True})  # the strictest kind
    model.train()
    ids = torch.tensor([[5, 9, 17, 30, 2, 11]])
    model(input_ids=ids, labels=ids).loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None for g in grads)


def test_projector_and_tower_get_their_own_learning_rates(tiny_model_dir, media_folder, tmp_path):
    model_args, _, training_args = args_for(
        tiny_model_dir, "x.json", media_folder, tmp_path, "--mm_projector_lr", "1e-4", "--vision_tower_lr", "1e-5",
        "--unfreeze_mm_vision_tower", "--weight_decay", "0.1",
    )  # fmt: skip
    model = choose_trainable(load_model(tiny_model_dir), model_args, training_args)
    trainer = VideoTrainer(model=model, args=training_args)
    optimizer = trainer.create_optimizer()
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    decay_of = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    params = dict(model.named_parameters())
    assert lr_of[id(params["model.multi_modal_projector.linear_1.weight"])] == 1e-4
    assert lr_of[id(params["model.vision_tower.timm_model.stem.0.conv_kxk.0.conv.weight"])] == 1e-5
    assert lr_of[id(params["model.language_model.layers.0.self_attn.q_proj.weight"])] == 1e-2
    assert decay_of[id(params["model.multi_modal_projector.linear_1.weight"])] == 0.1
    assert decay_of[id(params["model.multi_modal_projector.linear_1.bias"])] == 0.0
    assert sum(len(g["params"]) for g in optimizer.param_groups) == sum(p.requires_grad for p in model.parameters())
