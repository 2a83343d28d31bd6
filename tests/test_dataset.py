"""Samples to tensors; broken media and over-long samples are skipped, logged and counted."""

import json
import logging

import pytest
import torch

from fastvlm_video.data.chat import ChatEncoder
from fastvlm_video.data.collate import Collator
from fastvlm_video.data.dataset import ConversationDataset, Skip
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
    counter = SkipCounter(len(ds))
    with caplog.at_level(logging.WARNING):
        for _ in range(3):  # drawn in three epochs (each DataLoader worker process would log it again)
            item = ds[0]
            counter.update(1, item["skipped"])
    assert item["id"] != "s0" and item["pixel_values"] is not None  # another sample drawn
    assert [s.kind for s in item["skipped"]] == ["media"]
    assert "corrupt.mp4" in item["skipped"][0].reason and "record 0 (id 's0')" in item["skipped"][0].where
    assert sum("corrupt.mp4" in r.message for r in caplog.records) == 1  # logged once, by the main process
    assert counter.skipped_draws == 3 and len(counter.skipped) == 1


def test_too_long_sample_is_skipped_with_reason(dataset_factory):
    ds = dataset_factory([rec(0, "left.mp4"), rec(1)], max_length=30, num_frames=8)
    item = ds[0]
    assert item["id"] == "s1" and item["skipped"][0].kind == "too_long"
    assert "model_max_length=30" in item["skipped"][0].reason


def test_all_broken_raises(dataset_factory):
    ds = dataset_factory([rec(0, "corrupt.mp4"), rec(1, "notes.txt")])
    with pytest.raises(TooManySkippedSamples, match="could not be used"):
        ds[0]


def test_skip_counter_counts_distinct_samples_against_the_dataset():
    counter = SkipCounter(dataset_size=100, max_fraction=0.05)
    counter.update(1, [Skip("media", "a, record 1", "bad")] * 3)  # early draws of one broken file: no stop
    for i in range(2, 6):
        counter.update(20, [Skip("media", f"a, record {i}", "bad")] * 4)  # 5 of 100 = 5%: tolerated, whatever the draws
    assert counter.skipped_draws == 19 and len(counter.skipped) == 5
    with pytest.raises(TooManySkippedSamples, match="6 of 100 samples are unusable"):
        counter.update(0, [Skip("media", "a, record 6", "bad")])


def test_skip_counter_tolerates_one_broken_sample_in_a_small_dataset():
    counter = SkipCounter(dataset_size=16, max_fraction=0.05)  # 15 good clips + 1 broken: the run goes on
    for _ in range(8):
        counter.update(2, [Skip("media", "a, record 3", "bad")])
    with pytest.raises(TooManySkippedSamples):
        SkipCounter(dataset_size=16, max_fraction=0.0).update(1, [Skip("media", "a, record 3", "bad")])


def test_skip_report_round_trips_for_resume(tmp_path):
    counter = SkipCounter(dataset_size=10)
    counter.update(7, [Skip("media", "a, record 1", "bad")], [Skip("truncated", "a, record 2", "cut")])
    counter.write(tmp_path / "s.json")
    resumed = SkipCounter(dataset_size=10)
    resumed.load(tmp_path / "s.json")
    assert resumed.state() == counter.state()
    assert counter.state()["counts"] == {"media": 1, "truncated": 1}


def test_truncated_answer_is_reported_once(dataset_factory, caplog):
    long_answer = " ".join(["left"] * 200)
    ds = dataset_factory([rec(0, "left.mp4", answer=long_answer), rec(1)], max_length=60, num_frames=2)
    item = ds[0]
    assert item["id"] == "s0" and len(item["input_ids"]) == 60 and item["skipped"] == []
    assert [n.kind for n in item["truncated"]] == ["truncated"] and "model_max_length=60" in item["truncated"][0].reason
    assert "truncated" not in ds[1] or ds[1]["truncated"] == []
    batch = Collator(pad_token_id=0)([item, ds[1]])
    counter = SkipCounter(len(ds))
    with caplog.at_level(logging.WARNING):
        counter.update(2, batch["skipped"], batch["truncated"])
        counter.update(2, batch["skipped"], batch["truncated"])
    assert sum("record 0" in r.message and "model_max_length" in r.message for r in caplog.records) == 1
    assert counter.summary() == "1 truncated" and not counter.skipped  # trained, not a skip
