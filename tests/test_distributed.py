"""Two processes (torchrun, gloo, CPU) train the tiny model with DDP: training completes, both ranks
report the same loss and end with the same weights; with grouped + packed batches the ranks see
disjoint samples, each step of one modality; with a frame cache each rank reads its own samples' frames
from the shared read-only store and decodes nothing.

FSDP on CPU: torch can shard over gloo, but accelerate (which the HF Trainer drives) turns FSDP on only
for accelerator back-ends; on CPU ``--fsdp`` silently ran DDP, so ``train`` refuses it there."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

WORKER = """
import json, os, sys
from fastvlm_video.train.args import parse_train_args
from fastvlm_video.train.run import train

result = train(*parse_train_args(sys.argv[1:]))
rank = os.environ["RANK"]
report = {"world_size": int(os.environ["WORLD_SIZE"]), "train_loss": result.train_loss}
(result.output_dir / f"rank{rank}.json").write_text(json.dumps(report))
"""

# Records each rank's batches (sample ids) and which wrapper the Trainer put around the model.
RECORDING_WORKER = """
import json, os, sys
import fastvlm_video.data.media_source as dataset  # where the decoders are called
import fastvlm_video.train.run as run
from fastvlm_video.train.args import parse_train_args

class Recording(run.Collator):
    def __call__(self, items):
        with open(os.path.join(os.environ["SEEN_DIR"], f"seen{os.environ['RANK']}.jsonl"), "a") as f:
            f.write(json.dumps([it["id"] for it in items]) + "\\n")
        return super().__call__(items)

class Wrapped(run.VideoTrainer):
    def train(self, *args, **kwargs):
        outcome = super().train(*args, **kwargs)
        os.environ["WRAPPED"] = type(self.model_wrapped).__name__
        cache = self.train_dataset.frame_cache
        os.environ["CACHE_COUNTS"] = json.dumps(dict(cache.counts) if cache else None)
        return outcome

decodes = []
decode = dataset.load_video_tensor
dataset.load_video_tensor = lambda *a, **k: decodes.append(a[0]) or decode(*a, **k)
run.Collator, run.VideoTrainer = Recording, Wrapped
result = run.train(*parse_train_args(sys.argv[1:]))
report = {"world_size": int(os.environ["WORLD_SIZE"]), "train_loss": result.train_loss, "wrapped": os.environ["WRAPPED"],
          "cache": json.loads(os.environ["CACHE_COUNTS"]), "decoded": decodes}
(result.output_dir / f"rank{os.environ['RANK']}.json").write_text(json.dumps(report))
"""


def torchrun_train(tmp_path, worker: str, rows: list[dict], model_dir, media_folder, *extra: str) -> list[dict]:
    """Train with two gloo processes; returns each rank's report."""
    (tmp_path / "train.json").write_text(json.dumps(rows))
    (tmp_path / "worker.py").write_text(worker)
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(tmp_path / "worker.py"),
        "--model_name_or_path", str(model_dir), "--data_path", str(tmp_path / "train.json"),
        "--image_folder", str(media_folder), "--image_size", "64", "--output_dir", str(out),
        "--per_device_train_batch_size", "2", "--learning_rate", "5e-3", "--logging_steps", "1",
        "--save_strategy", "no", "--report_to", "none", "--use_cpu", "--ddp_backend", "gloo", "--seed", "0",
        "--disable_tqdm", "true", "--dataloader_num_workers", "0", *extra,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "SEEN_DIR": str(tmp_path)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "model.safetensors").is_file()
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["train_loss"] == pytest.approx(ranks[1]["train_loss"], rel=1e-6)
    return ranks


def test_two_process_gloo_training_agrees_on_the_loss(tmp_path, tiny_model_dir, media_folder):
    rows = [
        {"image": "still.png", "conversations": [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "a still image"}]},
        {"conversations": [{"from": "human", "value": "Say hi"}, {"from": "gpt", "value": "hi"}]},
    ] * 4
    torchrun_train(tmp_path, WORKER, rows, tiny_model_dir, media_folder, "--max_steps", "3")
    state = json.loads((tmp_path / "out" / "trainer_state.json").read_text())
    assert state["global_step"] == 3


def test_grouped_packed_batches_shard_across_ranks(tmp_path, tiny_model_dir, media_folder):
    image = [{"id": f"i{k}", "image": "still.png", "conversations": [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "a still" + " image" * k}]} for k in range(4)]
    text = [{"id": f"t{k}", "conversations": [{"from": "human", "value": "Say hi"}, {"from": "gpt", "value": "hi" + " there" * k}]} for k in range(4)]
    ranks = torchrun_train(
        tmp_path, RECORDING_WORKER, image + text, tiny_model_dir, media_folder,
        "--max_steps", "2", "--group_by_modality_length", "--packing",
    )  # fmt: skip
    assert ranks[0]["wrapped"] == "DistributedDataParallel", ranks[0]["wrapped"]
    seen = [[json.loads(line) for line in (tmp_path / f"seen{r}.jsonl").read_text().splitlines()][:2] for r in (0, 1)]
    ids = [i for rank in seen for batch in rank for i in batch]
    assert sorted(ids) == sorted(r["id"] for r in image + text)  # 2 steps x 2 ranks x 2 = the whole set, once
    for step in zip(*seen):  # both ranks' batches of a step hold one modality
        assert len({i[0] for batch in step for i in batch}) == 1
    used = json.loads((tmp_path / "out" / "skipped_samples.json").read_text())["used"]
    assert used == 4  # rank 0's 2 packed rows of 2 samples each count as 4 samples


def test_ranks_read_their_own_shard_of_the_frame_cache(tmp_path, tiny_model_dir, media_folder):
    """Both ranks open the read-only cache, take disjoint grouped batches, and decode nothing."""
    from fastvlm_video.data.cache_build import build_cache
    from fastvlm_video.data.records import load_samples
    from fastvlm_video.model.load import video_config_of

    clips = ["left.mp4", "up.MOV"]
    video = [{"id": f"v{k}", "video": clips[k % 2], "conversations": [{"from": "human", "value": "<video>\nWhere to?"}, {"from": "gpt", "value": "left" if k % 2 == 0 else "up"}]} for k in range(4)]
    text = [{"id": f"t{k}", "conversations": [{"from": "human", "value": "Say hi"}, {"from": "gpt", "value": "hi" + " there" * k}]} for k in range(4)]
    (tmp_path / "train.json").write_text(json.dumps(video + text))
    samples, _ = load_samples(tmp_path / "train.json", media_folder)
    settings = video_config_of(tiny_model_dir, image_size=64, num_frames=4)
    build_cache(samples, settings, tmp_path / "cache", progress=False)
    ranks = torchrun_train(
        tmp_path, RECORDING_WORKER, video + text, tiny_model_dir, media_folder,
        "--max_steps", "2", "--group_by_modality_length", "--num_video_frames", "4", "--frame_cache", str(tmp_path / "cache"),
    )  # fmt: skip
    seen = [[json.loads(line) for line in (tmp_path / f"seen{r}.jsonl").read_text().splitlines()][:2] for r in (0, 1)]
    ids = [i for rank in seen for batch in rank for i in batch]
    assert sorted(ids) == sorted(r["id"] for r in video + text)  # disjoint shards covering the set
    for rank, batches in zip(ranks, seen):
        clips_seen = sum(i.startswith("v") for batch in batches for i in batch)
        assert clips_seen == 2  # one all-video step: 2 clips per rank
        assert rank["decoded"] == []  # every frame came from the cache...
        assert rank["cache"] == {"hit": clips_seen}  # ...one hit per clip drawn, nothing stale or missing


def test_fsdp_on_cpu_is_refused_not_run_as_ddp(tiny_model_dir, media_folder, tmp_path):
    from fastvlm_video.errors import ConfigError
    from fastvlm_video.train.args import parse_train_args
    from fastvlm_video.train.run import train

    (tmp_path / "train.json").write_text(json.dumps([{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hi"}]}]))
    argv = ["--model_name_or_path", str(tiny_model_dir), "--data_path", str(tmp_path / "train.json"), "--output_dir", str(tmp_path / "o"),
            "--use_cpu", "--report_to", "none", "--fsdp", "full_shard"]  # fmt: skip
    with pytest.raises(ConfigError, match="--fsdp"):
        train(*parse_train_args(argv))


def test_ddp_ranks_fill_and_read_one_feature_cache(tmp_path, tiny_model_dir, media_folder):
    """Each rank stores what it computed in epoch 1 into its own shards; in epoch 2 every rank reads every
    media item from the cache (also those the other rank stored) and the losses equal a run without it."""
    worker = 'import logging, os\nlogging.basicConfig(filename=os.path.join(os.environ["SEEN_DIR"], f"log{os.environ[\'RANK\']}.txt"), level=logging.INFO)\n' + WORKER
    rows = [{"video": "left.mp4", "start": k * 0.5, "end": (k + 1) * 0.5,
             "conversations": [{"from": "human", "value": "<video>\nWhere?"}, {"from": "gpt", "value": "left"}]} for k in range(4)]  # fmt: skip
    runs = {}
    for name, extra in (("plain", []), ("cached", ["--feature_cache", str(tmp_path / "features")])):
        (tmp_path / name).mkdir()
        torchrun_train(tmp_path / name, worker, rows, tiny_model_dir, media_folder, "--num_train_epochs", "2", "--num_video_frames", "2",
                       "--per_device_train_batch_size", "1", *extra)  # fmt: skip
        runs[name] = [h["loss"] for h in json.loads((tmp_path / name / "out" / "trainer_state.json").read_text())["log_history"] if "loss" in h]
    assert len(runs["plain"]) == 4 and runs["cached"] == pytest.approx(runs["plain"], abs=1e-6)
    [store] = (tmp_path / "features").iterdir()
    assert len(list(store.glob("shard-*.json"))) == 2  # one per rank, never a file shared
    for rank in (0, 1):
        log = (tmp_path / "cached" / f"log{rank}.txt").read_text()
        assert "epoch 1: feature cache: 0 media read from the cache, 2 decoded" in log
        assert "epoch 2: feature cache: 2 media read from the cache, 0 decoded" in log
