"""Feature cache: training with it repeats the run without it (losses, gradients, weights), a hit skips
decoding and the tower, stale entries are never used, unsafe settings are refused, and the saved model
is the real one."""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from fastvlm_video.data import media_source as dataset_module  # the decoders live there
from fastvlm_video.data.chat import ChatEncoder
from fastvlm_video.data.collate import Collator
from fastvlm_video.data.dataset import ConversationDataset
from fastvlm_video.data.feature_cache import FeatureCache, TowerInput, tower_fingerprint
from fastvlm_video.data.records import load_samples
from fastvlm_video.errors import ConfigError
from fastvlm_video.model.load import load_model, load_tokenizer
from fastvlm_video.model.tiny import build_tiny_model
from fastvlm_video.video_config import VideoConfig

VIDEO = VideoConfig(num_frames=2, image_size=64)


def rec(id, media=None, answer="left"):
    record = {"id": id, "conversations": [{"from": "human", "value": "<image>\nWhat?" if media else "Hi"}, {"from": "gpt", "value": answer}]}
    return {**record, "image": media} if media else record


@pytest.fixture
def media(media_folder, tmp_path):
    """A private copy of the shared media folder (tests change files in it)."""
    return shutil.copytree(media_folder, tmp_path / "media")


@pytest.fixture
def data(media, tmp_path):
    records = [rec(f"r{i}", m, a) for i, (m, a) in enumerate([("left.mp4", "left"), ("up.MOV", "up"), ("still.png", "a still"), (None, "hi")] * 2)]
    path = tmp_path / "train.json"
    path.write_text(json.dumps(records))
    return path


def train_args(model_dir, data, media, out, *extra):
    from fastvlm_video.train.args import parse_train_args

    argv = [
        "--model_name_or_path", str(model_dir), "--data_path", str(data), "--image_folder", str(media),
        "--num_video_frames", "2", "--image_size", "64", "--output_dir", str(out), "--per_device_train_batch_size", "2",
        "--num_train_epochs", "3", "--logging_steps", "1", "--save_strategy", "no", "--eval_strategy", "no",
        "--report_to", "none", "--use_cpu", "--disable_tqdm", "true", "--dataloader_num_workers", "0", "--cpu_threads", "1", *extra,
    ]  # fmt: skip
    return parse_train_args(argv)


def losses(out: Path) -> list[float]:
    return [h["loss"] for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]


class Calls:
    """Counts decoded media and frames run through the tower's stem (every tower forward passes it)."""

    def __init__(self, monkeypatch):
        self.decoded, self.tower_frames = 0, 0
        for name in ("load_video_tensor", "load_image_tensor"):
            original = getattr(dataset_module, name)
            monkeypatch.setattr(dataset_module, name, self._counting(original))

    def _counting(self, fn):
        def wrapped(*args, **kwargs):
            self.decoded += 1
            return fn(*args, **kwargs)

        return wrapped

    def watch(self, model):
        def hook(module, inputs, output):
            self.tower_frames += inputs[0].shape[0]

        model.model.vision_tower.timm_model.stem.register_forward_hook(hook)


def test_training_with_the_feature_cache_repeats_the_run(tiny_model_dir, data, media, tmp_path, monkeypatch, caplog):
    """3 epochs: the same losses and final weights; epochs 2-3 decode nothing and run no frame through the tower.
    (With the time instruction: the stored frame times give the same prompts.)"""
    from fastvlm_video.train import run as run_module
    from fastvlm_video.train.run import train

    calls = Calls(monkeypatch)
    load = run_module.load_for_training
    monkeypatch.setattr(run_module, "load_for_training", lambda *a: (m := load(*a), calls.watch(m))[0])

    train(*train_args(tiny_model_dir, data, media, tmp_path / "plain", "--time_instruction", "true"))
    plain = (calls.decoded, calls.tower_frames)
    calls.decoded = calls.tower_frames = 0
    with caplog.at_level(logging.INFO, logger="fastvlm_video"):
        train(*train_args(tiny_model_dir, data, media, tmp_path / "cached", "--time_instruction", "true", "--feature_cache", str(tmp_path / "features")))

    assert losses(tmp_path / "cached") == pytest.approx(losses(tmp_path / "plain"), abs=1e-6)
    assert len(losses(tmp_path / "plain")) == 12
    trained = {name: load_file(tmp_path / name / "model.safetensors") for name in ("plain", "cached")}
    for key, value in trained["plain"].items():  # projector, LLM and (frozen) tower alike
        torch.testing.assert_close(trained["cached"][key], value, rtol=0, atol=1e-6, msg=key)
    # 6 media samples per epoch (4 videos of 2 frames, 2 images): decoded 3 times without the cache, once with it
    assert plain == (18, 30) and (calls.decoded, calls.tower_frames) == (6, 10)
    assert "0 media stored; 3 missing and 0 changed since" in caplog.text
    assert "epoch 1: feature cache: 0 media read from the cache, 6 decoded and run through the tower" in caplog.text
    assert "epoch 3: feature cache: 6 media read from the cache, 0 decoded and run through the tower" in caplog.text


def test_projector_and_llm_gradients_equal_from_stored_features(tokenizer, data, media, tmp_path):
    model = build_tiny_model(tokenizer, seed=1)
    model.requires_grad_(True).model.vision_tower.requires_grad_(False).eval()
    cache = FeatureCache(tmp_path / "features", tower_fingerprint(model.model.vision_tower, torch.float32, "cpu"))
    cache.attach(model.model.vision_tower)
    samples = load_samples(data, media)[0][:4]
    encoder, collate = ChatEncoder(tokenizer, VIDEO.tokens_per_frame), Collator(pad_token_id=tokenizer.pad_token_id)

    def grads(feature_cache):
        batch = collate([ConversationDataset(samples, encoder, VIDEO, feature_cache=feature_cache)[i] for i in range(4)])
        model.zero_grad()
        model(**{k: v for k, v in batch.items() if k not in ("skipped", "truncated")}).loss.backward()
        return batch["pixel_values"], {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    pixels, plain = grads(None)
    filling, first = grads(cache)  # nothing stored yet: frames run through the tower and are stored
    cache.flush()
    stored, second = grads(cache)
    assert isinstance(pixels, torch.Tensor) and filling["hits"] == 0 and len(filling["slots"]) == 3
    assert stored["pixels"] is None and stored["hits"] == 3 and stored["features"].shape == (5, 256, 1, 1)
    assert any("multi_modal_projector" in n for n in plain) and any("language_model" in n for n in plain)
    assert not any("vision_tower" in n for n in plain)
    for name, grad in plain.items():
        torch.testing.assert_close(first[name], grad, rtol=0, atol=1e-7, msg=name)
        torch.testing.assert_close(second[name], grad, rtol=0, atol=1e-7, msg=name)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--unfreeze_mm_vision_tower", "true"], "drop --unfreeze_mm_vision_tower"),
        (["--vision_tower_batchnorm", "batch"], "use --vision_tower_batchnorm frozen"),
    ],
)
def test_unsafe_settings_are_refused(tiny_model_dir, tokenizer, data, media, tmp_path, flags, message):
    from fastvlm_video.train.run import train

    with pytest.raises(ConfigError, match=message):
        train(*train_args(tiny_model_dir, data, media, tmp_path / "out", "--feature_cache", str(tmp_path / "f"), *flags))
    with pytest.raises(ConfigError, match="frozen tower in eval mode"):
        FeatureCache(tmp_path / "f", {"tower": "x"}).attach(build_tiny_model(tokenizer).model.vision_tower)  # trains, train mode


def filled(root, tower, samples, video=VIDEO):
    """A cache of ``tower`` holding every media item of ``samples`` at ``video``."""
    cache = FeatureCache(root, tower_fingerprint(tower, torch.float32, "cpu"))
    for sample in samples:
        for ref in sample.media:
            cache.store(cache.slot(ref, video), torch.randn(2, 256, 1, 1), None, None)
    cache.flush()
    return FeatureCache(root, tower_fingerprint(tower, torch.float32, "cpu"))


def test_stale_entries_are_never_used(tokenizer, data, media, tmp_path, caplog):
    """A changed file, other video settings, other tower weights or dtype: computed again, never read."""
    tower = build_tiny_model(tokenizer).model.vision_tower
    samples = load_samples(data, media)[0][:2]  # left.mp4, up.MOV
    left, up = samples[0].media[0], samples[1].media[0]
    cache = filled(tmp_path / "f", tower, samples)
    assert cache.get(left, VIDEO) is not None and cache.get(up, VIDEO).features.shape == (2, 256, 1, 1)

    os.utime(media / "up.MOV", ns=(1, 1))  # touched: mtime differs
    with caplog.at_level(logging.WARNING):
        assert cache.get(up, VIDEO) is None
    assert "up.MOV changed since it was cached" in caplog.text
    assert cache.get(left, VideoConfig(num_frames=3, image_size=64)) is None
    assert cache.counts == Counter(hit=2, stale=1, missing=1)

    other = build_tiny_model(tokenizer, seed=5).model.vision_tower
    assert FeatureCache(tmp_path / "f", tower_fingerprint(other, torch.float32, "cpu")).get(left, VIDEO) is None
    assert FeatureCache(tmp_path / "f", tower_fingerprint(tower, torch.bfloat16, "cpu")).get(left, VIDEO) is None
    with torch.no_grad():
        next(tower.parameters()).view(-1)[0] += 1e-3  # one weight changed: another fingerprint
    assert FeatureCache(tmp_path / "f", tower_fingerprint(tower, torch.float32, "cpu")).get(left, VIDEO) is None
    assert len(list((tmp_path / "f").iterdir())) == 4  # one directory per fingerprint


def test_dataloader_workers_see_entries_stored_after_they_were_opened(tokenizer, data, media, tmp_path):
    """The dataset's cache was opened empty; entries published later (epoch end) are read by new workers."""
    tower = build_tiny_model(tokenizer).model.vision_tower
    samples = load_samples(data, media)[0][:4]
    empty = FeatureCache(tmp_path / "f", tower_fingerprint(tower, torch.float32, "cpu"))
    filled(tmp_path / "f", tower, samples[:2])  # left.mp4 and up.MOV stored; still.png missing
    dataset = ConversationDataset(samples, ChatEncoder(tokenizer, 1), VIDEO, feature_cache=empty)
    gc.collect()  # free this process's PyAV decoders here: freed in a forked worker, a threaded one deadlocks
    batches = list(DataLoader(dataset, batch_size=2, num_workers=2, collate_fn=Collator(pad_token_id=0)))
    first, second = (b["pixel_values"] for b in batches)
    assert isinstance(first, TowerInput) and first["hits"] == 2 and first["pixels"] is None
    assert second["hits"] == 0 and second["pixels"].shape == (1, 3, 64, 64)  # still.png decoded, text sample none
    assert second["slots"][0]["key"] == empty.slot(samples[2].media[0], VIDEO)["key"]


def test_the_saved_model_is_the_real_one(tiny_model_dir, data, media, tmp_path):
    """The checkpoint keeps the original tower weights, loads normally, and its loss without the cache is the run's eval loss."""
    from fastvlm_video.train.run import train

    out = tmp_path / "out"
    result = train(*train_args(tiny_model_dir, data, media, out, "--feature_cache", str(tmp_path / "f"), "--num_train_epochs", "1",
                               "--validation_data_path", str(data), "--per_device_eval_batch_size", "8"))  # fmt: skip
    original, saved = load_model(tiny_model_dir), load_model(out)
    for key, value in original.model.vision_tower.state_dict().items():
        assert torch.equal(saved.model.vision_tower.state_dict()[key], value), key
    assert not any(torch.equal(p, original.state_dict()[n]) for n, p in saved.named_parameters() if "multi_modal_projector" in n)

    samples, tok = load_samples(data, media)[0], load_tokenizer(out)
    dataset = ConversationDataset(samples, ChatEncoder(tok, VIDEO.tokens_per_frame), VIDEO)
    batch = Collator(pad_token_id=tok.pad_token_id)([dataset[i] for i in range(len(samples))])
    saved.eval()
    with torch.no_grad():
        loss = saved(**{k: v for k, v in batch.items() if k not in ("skipped", "truncated")}).loss
    assert loss.item() == pytest.approx(result.eval_loss, abs=1e-6)


def test_resume_checks_the_checkpoints_tower(tiny_model_dir, data, media, tmp_path):
    """Resuming with the cache works when the checkpoint's tower is the original; a checkpoint whose tower
    differs (loaded by the Trainer after the cache was opened) is refused."""
    from safetensors.torch import save_file

    from fastvlm_video.train.run import train

    def run(out, *extra):
        save = ["--save_strategy", "steps", "--save_steps", "2", "--feature_cache", str(tmp_path / "f")]
        return train(*train_args(tiny_model_dir, data, media, out, *save, *extra))

    run(tmp_path / "a", "--max_steps", "2")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert run(tmp_path / "a", "--max_steps", "3", "--resume_from_checkpoint", "latest").skipped == 0
    weights = tmp_path / "b" / "checkpoint-2" / "model.safetensors"
    state = load_file(weights)
    key = next(k for k in state if "vision_tower" in k and k.endswith("weight"))
    state[key] += 0.01
    save_file(state, weights, metadata={"format": "pt"})
    with pytest.raises(ConfigError, match="resumed checkpoint's vision tower differs"):
        run(tmp_path / "b", "--max_steps", "3", "--resume_from_checkpoint", "latest")
