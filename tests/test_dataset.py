"""Samples to tensors; broken media and over-long samples are skipped, logged and counted."""

import json
import logging

import pytest
import torch

from fastvlm_video.data.chat import ChatEncoder
from fastvlm_video.data.collate import Collator
from fastvlm_video.data.dataset import ConversationDataset
from fastvlm_video.data.records import load_samples
from fastvlm_video.errors import TooManySkippedSamples
from fastvlm_video.train.trainer import SkipCounter
from fastvlm_video.video_config import VideoConfig


def write_data(path, records):
    path.write_text(json.dumps(records))
    return path


def rec(i, media=None, answer="left"):
    r = {"id": f"s{i}", "conversations": [{"from": "human", "value": "Which way?"}, {"from": "gpt", "value": answer}]}
    if media:
        r["image"] = media
    return r


@pytest.fixture
def dataset_factory(tokenizer, media_folder, tmp_path):
    def make(records, max_length=None, num_frames=4):
        samples, _ = load_samples(write_data(tmp_path / "d.json", records), media_folder)
        video = VideoConfig(num_frames=num_frames, image_size=64)
        return ConversationDataset(samples, ChatEncoder(tokenizer, video.tokens_per_frame), video, max_length)

    return make


def test_mixed_items_and_batch(dataset_factory):
    ds = dataset_factory([rec(0, "left.mp4"), rec(1, "still.png"), rec(2), rec(3, "up.MOV")])
    items = [ds[i] for i in range(4)]
    assert [None if it["pixel_values"] is None else tuple(it["pixel_values"].shape) for it in items] == [
        (4, 3, 64, 64), (1, 3, 64, 64), None, (4, 3, 64, 64)
    ]  # fmt: skip
    assert len(items[0]["timestamps"][0]) == 4
    batch = Collator(pad_token_id=ds.encoder.tokenizer.pad_token_id)(items)
    assert batch["pixel_values"].shape == (9, 3, 64, 64)
    image_tokens = (batch["input_ids"] == ds.encoder.image_token_id).sum(1).tolist()
    assert image_tokens == [4, 1, 0, 4]  # K = 1 token per frame at 64 px


def test_corrupt_video_is_skipped_logged_and_counted(dataset_factory, caplog):
    ds = dataset_factory([rec(0, "corrupt.mp4"), rec(1, "left.mp4"), rec(2, "missing.mp4")])
    with caplog.at_level(logging.WARNING):
        item = ds[0]
        ds[0]
    assert item["id"] != "s0" and item["pixel_values"] is not None  # another sample drawn
    assert [s.kind for s in item["skipped"]] == ["media"]
    assert "corrupt.mp4" in item["skipped"][0].reason and "record 0 (id 's0')" in item["skipped"][0].where
    assert sum("corrupt.mp4" in r.message for r in caplog.records) == 1  # logged once


def test_too_long_sample_is_skipped_with_reason(dataset_factory):
    ds = dataset_factory([rec(0, "left.mp4"), rec(1)], max_length=30, num_frames=8)
    item = ds[0]
    assert item["id"] == "s1" and item["skipped"][0].kind == "too_long"
    assert "model_max_length=30" in item["skipped"][0].reason


def test_all_broken_raises(dataset_factory):
    ds = dataset_factory([rec(0, "corrupt.mp4"), rec(1, "notes.txt")])
    with pytest.raises(TooManySkippedSamples, match="could not be used"):
        ds[0]


def test_skip_counter_stops_past_threshold():
    from fastvlm_video.data.dataset import Skip

    counter = SkipCounter(max_fraction=0.05, min_samples=20)
    counter.update(19, [Skip("media", "a, record 1", "bad")])  # 1 of 20 = 5%: tolerated
    with pytest.raises(TooManySkippedSamples, match="2 of 21 samples"):
        counter.update(0, [Skip("media", "a, record 2", "bad")])
