"""Two processes (torchrun, gloo, CPU) train the tiny model with DDP: training completes, both ranks
report the same loss and end with the same weights."""

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


def test_two_process_gloo_training_agrees_on_the_loss(tmp_path, tiny_model_dir, media_folder):
    rows = [
        {"image": "still.png", "conversations": [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "a still image"}]},
        {"conversations": [{"from": "human", "value": "Say hi"}, {"from": "gpt", "value": "hi"}]},
    ] * 4
    (tmp_path / "train.json").write_text(json.dumps(rows))
    (tmp_path / "worker.py").write_text(WORKER)
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(tmp_path / "worker.py"),
        "--model_name_or_path", str(tiny_model_dir), "--data_path", str(tmp_path / "train.json"),
        "--image_folder", str(media_folder), "--image_size", "64", "--output_dir", str(out),
        "--per_device_train_batch_size", "2", "--max_steps", "3", "--learning_rate", "5e-3", "--logging_steps", "1",
        "--save_strategy", "no", "--report_to", "none", "--use_cpu", "--ddp_backend", "gloo", "--seed", "0",
        "--disable_tqdm", "true", "--dataloader_num_workers", "0",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["train_loss"] == pytest.approx(ranks[1]["train_loss"], rel=1e-6)
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert (out / "model.safetensors").is_file()
