"""Frame cache: lossless == decoded, stale and mismatched entries never used, broken media counted as
training skips them, resume after an interruption, DataLoader workers, and a training run from it."""

from __future__ import annotations

import gc
import json
import logging
import os
import pickle
import shutil
from collections import Counter
from dataclasses import replace

import pytest
import torch
from torch.utils.data import DataLoader

from fastvlm_video.cli import main
from fastvlm_video.data import cache_build
from fastvlm_video.data.cache_build import build_cache
from fastvlm_video.data.chat import ChatEncoder
from fastvlm_video.data.collate import Collator
from fastvlm_video.data.dataset import ConversationDataset, load_media
from fastvlm_video.data.frame_cache import FrameCache, load_index
from fastvlm_video.data.records import MediaRef, load_samples
from fastvlm_video.errors import ConfigError, MediaError
from fastvlm_video.video_config import VideoConfig

VIDEO = VideoConfig(num_frames=3, image_size=64)


def rec(id, media=None, answer="left", **segment):
    record = {"id": id, "conversations": [{"from": "human", "value": "<image>\nWhat?" if media else "Hi"}, {"from": "gpt", "value": answer}]}
    if media:
        record.update(image=media, **segment)
    return record


def write(path, records):
    path.write_text(json.dumps(records))
    return path


@pytest.fixture
def media(media_folder, tmp_path):
    """A private copy of the shared media folder (tests change files in it)."""
    return shutil.copytree(media_folder, tmp_path / "media")


@pytest.fixture
def samples(media, tmp_path):
    records = [rec("a", "left.mp4"), rec("b", "up.MOV"), rec("c", "still.png"), rec("d"), rec("e", "left.mp4", start=0.5, end=1.5),
               rec("f", "corrupt.mp4"), rec("g", "missing.mp4"), rec("h", "corrupt.mp4")]  # fmt: skip
    return load_samples(write(tmp_path / "train.json", records), media)[0]


def refs(samples):
    return list(dict.fromkeys(r for s in samples for r in s.media))


@pytest.mark.parametrize("codec", ["raw", "png"])
def test_lossless_cache_returns_the_decoded_tensors_exactly(samples, tmp_path, codec):
    report = build_cache(samples, VIDEO, tmp_path / "cache", codec=codec, progress=False)
    assert (report.media, report.built, report.reused, report.broken) == (6, 6, 0, 2)
    cache = FrameCache(tmp_path / "cache", VIDEO)
    for ref in refs(samples):
        if "corrupt" in ref.path or "missing" in ref.path:
            continue
        item = cache.get(ref, VIDEO)
        frames, timestamps = item.frames, item.timestamps
        expected, expected_ts = load_media(ref, VIDEO)
        assert frames.dtype == torch.uint8 and frames.shape == expected.shape
        assert torch.equal(frames, expected) and timestamps == expected_ts
    assert cache.counts == Counter(hit=4)


def test_jpeg_cache_is_close_but_lossy(samples, tmp_path):
    build_cache(samples[:1], VIDEO, tmp_path / "cache", codec="jpeg", quality=90, progress=False)
    ref = samples[0].media[0]
    frames = FrameCache(tmp_path / "cache", VIDEO).get(ref, VIDEO).frames
    diff = (frames.int() - load_media(ref, VIDEO)[0].int()).abs().float()
    assert 0 < diff.mean() < 4


def test_same_size_same_mtime_edit_is_detected(samples, media, tmp_path):
    """``cp -p`` of an edited file of the same length: size and mtime are those cached, the content is not."""
    build_cache(samples, VIDEO, tmp_path / "cache", progress=False)
    path = media / "left.mp4"
    ref = MediaRef(str(path), "video")
    assert FrameCache(tmp_path / "cache", VIDEO).get(ref, VIDEO) is not None
    st, data = os.stat(path), bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # one byte near the end (frame data), same size
    edited = tmp_path / "edited.mp4"
    edited.write_bytes(bytes(data))
    os.utime(edited, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(edited, path)  # as `cp -p edited.mp4 left.mp4` leaves it: same size, same mtime
    assert (os.stat(path).st_size, os.stat(path).st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    cache = FrameCache(tmp_path / "cache", VIDEO)
    try:
        assert cache.get(ref, VIDEO) is None and cache.counts == Counter(stale=1)
    finally:
        data[-100] ^= 0xFF
        path.write_bytes(bytes(data))  # the module's clip as it was, for the tests after this one


def test_changed_file_is_detected_counted_and_decoded_again(samples, media, tmp_path, caplog, encoder):
    build_cache(samples, VIDEO, tmp_path / "cache", progress=False)
    left = MediaRef(str(media / "left.mp4"), "video")
    st = os.stat(left.path)
    os.utime(left.path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # touched: same size, new mtime
    with open(media / "up.MOV", "ab") as f:
        f.write(b"\0")  # grown: new size
    cache = FrameCache(tmp_path / "cache", VIDEO)
    with caplog.at_level(logging.WARNING):
        assert cache.get(left, VIDEO) is None
        assert cache.get(MediaRef(str(media / "up.MOV"), "video"), VIDEO) is None
        assert cache.get(MediaRef(str(media / "left.mp4"), "video", 0.0, 1.0), VIDEO) is None  # never cached
    assert cache.counts == Counter(stale=2, missing=1)
    assert "left.mp4 changed since it was cached" in caplog.text
    assert cache.coverage(samples) == {"hit": 1, "broken": 2, "missing": 0, "stale": 3}  # the clip segment too
    # a dataset reading through the cache decodes the changed files: the fresh pixels, not the stale ones
    item = ConversationDataset(samples[:1], encoder, VIDEO, frame_cache=cache).build(samples[0])
    assert torch.equal(item["pixel_values"], load_media(left, VIDEO)[0])
    again = build_cache(samples, VIDEO, tmp_path / "cache", progress=False)  # rebuild: only the changed ones
    assert (again.built, again.reused) == (3, 3)
    assert FrameCache(tmp_path / "cache", VIDEO).coverage(samples)["hit"] == 4


def test_other_video_settings_are_refused(samples, tmp_path):
    build_cache(samples[:1], VIDEO, tmp_path / "cache", progress=False)
    with pytest.raises(ConfigError, match=r"num_frames: cache 3 vs run 4.*rebuild"):
        FrameCache(tmp_path / "cache", replace(VIDEO, num_frames=4))
    with pytest.raises(ConfigError, match="aspect"):
        build_cache(samples[:1], replace(VIDEO, aspect="crop"), tmp_path / "cache", progress=False)
    with pytest.raises(ConfigError, match="not a frame cache"):
        FrameCache(tmp_path, VIDEO)


def test_broken_media_are_counted_as_training_skips_them(samples, tmp_path, encoder):
    report = build_cache(samples, VIDEO, tmp_path / "cache", progress=False)
    built = Counter((p.file, p.record, p.reason) for p in report.skipped_records)
    assert len(report.skipped_records) == 3  # f, h (corrupt.mp4) and g (missing.mp4)

    def training_skips(frame_cache):
        dataset = ConversationDataset(samples, encoder, VIDEO, frame_cache=frame_cache)
        skips = Counter()
        for sample in samples:
            try:
                dataset.build(sample)
            except MediaError as exc:
                skips[(sample.source, sample.index, str(exc))] += 1
        return skips

    assert training_skips(None) == built
    cache = FrameCache(tmp_path / "cache", VIDEO)
    assert training_skips(cache) == built  # from the stored reasons, without decoding
    assert cache.counts["broken"] == 3 and cache.counts["missing"] == 0
    saved = json.loads((tmp_path / "cache" / "build_report.json").read_text())
    assert sum(saved["skipped_by_reason"].values()) == 3


def test_an_interrupted_build_resumes_keeping_finished_entries(samples, tmp_path, monkeypatch):
    encode, calls = cache_build.encode_media, []

    def interrupted(job, **kwargs):
        calls.append(job)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return encode(job, **kwargs)

    monkeypatch.setattr(cache_build, "encode_media", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_cache(samples, VIDEO, tmp_path / "cache", progress=False, shard_entries=1)
    assert len(load_index(tmp_path / "cache")) == 2
    (tmp_path / "cache" / "shard-orphan.bin").write_bytes(b"half a shard")  # killed mid-shard: no index
    monkeypatch.setattr(cache_build, "encode_media", encode)
    report = build_cache(samples, VIDEO, tmp_path / "cache", progress=False)
    assert (report.reused, report.built) == (2, 4)
    assert not (tmp_path / "cache" / "shard-orphan.bin").exists()
    assert FrameCache(tmp_path / "cache", VIDEO).coverage(samples) == {"hit": 4, "broken": 2, "missing": 0, "stale": 0}


def test_dataloader_workers_read_the_cache(samples, tmp_path, encoder):
    build_cache(samples[:3], VIDEO, tmp_path / "cache", progress=False)
    cache = FrameCache(tmp_path / "cache", VIDEO)
    cache.get(samples[0].media[0], VIDEO)  # mapped in the parent before the workers start
    assert torch.equal(pickle.loads(pickle.dumps(cache)).get(samples[1].media[0], VIDEO).frames, load_media(samples[1].media[0], VIDEO)[0])

    def batches(frame_cache, workers):
        dataset = ConversationDataset(samples[:4], encoder, VIDEO, frame_cache=frame_cache)
        loader = DataLoader(dataset, batch_size=2, num_workers=workers, collate_fn=Collator(pad_token_id=0))
        return [b["pixel_values"] for b in loader]

    gc.collect()  # free this process's PyAV decoders here: freed in a forked worker, a threaded one deadlocks
    for cached, decoded in zip(batches(cache, 2), batches(None, 0), strict=True):
        assert torch.equal(cached, decoded)


def test_cache_and_check_commands(samples, media, tmp_path, capsys):
    data = tmp_path / "train.json"
    args = ["--data", str(data), "--media_folder", str(media), "--num_video_frames", "3", "--image_size", "64"]
    assert main(["cache", *args, "--out", str(tmp_path / "c"), "--workers", "1", "--no_progress"]) == 0
    out = capsys.readouterr().out
    assert "6 media: 6 decoded now, 0 already cached, 2 broken" in out and "3 record(s) training will skip" in out
    main(["check", *args, "--frame_cache", str(tmp_path / "c"), "--workers", "1", "--no_progress", "--report", str(tmp_path / "r.json")])
    assert "4 cached, 0 broken" in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text())["media"]["frame_cache"]["hit"] == 4
    assert main(["check", *args[:4], "--num_video_frames", "5", "--frame_cache", str(tmp_path / "c"), "--no_progress"]) == 1
    assert "num_frames: cache 3 vs run 5" in capsys.readouterr().err


def test_training_runs_from_the_cache(tiny_model_dir, media_folder, tmp_path, caplog):
    from fastvlm_video.train.args import parse_train_args
    from fastvlm_video.train.run import train

    records = [rec(f"r{i}", m, a) for i, (m, a) in enumerate([("left.mp4", "left"), ("up.MOV", "up"), ("still.png", "a still")] * 2)]
    data = write(tmp_path / "train.json", records)
    video = VideoConfig(num_frames=2, image_size=64)
    build_cache(load_samples(data, media_folder)[0], video, tmp_path / "cache", progress=False)
    argv = [
        "--model_name_or_path", str(tiny_model_dir), "--data_path", str(data), "--image_folder", str(media_folder),
        "--num_video_frames", "2", "--image_size", "64", "--frame_cache", str(tmp_path / "cache"),
        "--output_dir", str(tmp_path / "out"), "--per_device_train_batch_size", "2", "--max_steps", "2",
        "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none", "--use_cpu", "--disable_tqdm", "true",
        "--dataloader_num_workers", "0",
    ]  # fmt: skip
    with caplog.at_level(logging.INFO):
        result = train(*parse_train_args(argv))
    assert result.skipped == 0 and torch.isfinite(torch.tensor(result.train_loss))
    assert "3 cached, 0 broken" in caplog.text
    with pytest.raises(ConfigError, match="num_frames: cache 2 vs run 3"):
        other = {"--num_video_frames": "3", "--output_dir": str(tmp_path / "out3")}
        train(*parse_train_args([other.get(argv[i - 1], a) if i else a for i, a in enumerate(argv)]))


@pytest.fixture
def encoder(tokenizer):
    return ChatEncoder(tokenizer, VIDEO.tokens_per_frame)


def test_entries_follow_each_samples_visual_budget(media, tmp_path, tokenizer):
    """A sample with two videos gets fewer frames each (``for_sample``): the cache holds them at those settings."""
    video = replace(VIDEO, max_visual_tokens=4)  # 1 token per 64 px frame: one video keeps 3 frames, two get 2 each
    records = [rec("one", "left.mp4"), {**rec("two", ["left.mp4", "up.MOV"]), "conversations": [
        {"from": "human", "value": "<video>\n<video>\nWhich?"}, {"from": "gpt", "value": "left"}]}]  # fmt: skip
    samples = load_samples(write(tmp_path / "budget.json", records), media)[0]
    report = build_cache(samples, video, tmp_path / "cache", progress=False)
    assert report.media == 3  # left.mp4 at 3 frames and at 2, up.MOV at 2
    cache = FrameCache(tmp_path / "cache", video)
    with_cache = ConversationDataset(samples, ChatEncoder(tokenizer, 1), video, frame_cache=cache)
    without = ConversationDataset(samples, ChatEncoder(tokenizer, 1), video)
    for sample in samples:
        assert torch.equal(with_cache.build(sample)["pixel_values"], without.build(sample)["pixel_values"])
    assert cache.counts == Counter(hit=3)
    assert [with_cache.build(s)["pixel_values"].shape[0] for s in samples] == [3, 4]


def test_resume_with_the_cache_and_grouped_batches_repeats_the_run(tiny_model_dir, media_folder, tmp_path, caplog):
    """Killed after checkpoint-2 and resumed, a run reading the cache with length-grouped batches logs the
    same losses as the run that was never interrupted (same batches, same frames)."""
    from fastvlm_video.train.args import parse_train_args
    from fastvlm_video.train.run import train

    records = [rec(f"r{i}", m, a) for i, (m, a) in enumerate([("left.mp4", "left"), ("up.MOV", "up"), ("still.png", "a still"), (None, "hi")] * 2)]
    data = write(tmp_path / "train.json", records)
    build_cache(load_samples(data, media_folder)[0], VideoConfig(num_frames=2, image_size=64), tmp_path / "cache", progress=False)

    def run(out, *extra):
        argv = [
            "--model_name_or_path", str(tiny_model_dir), "--data_path", str(data), "--image_folder", str(media_folder),
            "--num_video_frames", "2", "--image_size", "64", "--frame_cache", str(tmp_path / "cache"),
            "--group_by_modality_length", "true", "--output_dir", str(out), "--per_device_train_batch_size", "2",
            "--max_steps", "4", "--save_steps", "2", "--logging_steps", "1", "--eval_strategy", "no", "--report_to", "none",
            "--use_cpu", "--disable_tqdm", "true", "--dataloader_num_workers", "0", "--cpu_threads", "1", *extra,
        ]  # fmt: skip
        train(*parse_train_args(argv))
        return {h["step"]: h["loss"] for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h}

    whole = run(tmp_path / "whole")
    shutil.copytree(tmp_path / "whole" / "checkpoint-2", tmp_path / "resumed" / "checkpoint-2")
    with caplog.at_level(logging.INFO, logger="transformers.trainer"):
        resumed = run(tmp_path / "resumed", "--resume_from_checkpoint", "latest")
    assert "Resuming training from checkpoint with epoch 0 and global step 2" in caplog.text  # not a fresh run
    assert sorted(whole) == [1, 2, 3, 4] and {s: resumed[s] for s in (3, 4)} == {s: whole[s] for s in (3, 4)}
