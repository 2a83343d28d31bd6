"""`fastvlm-video train` on the demo's video task for 12 steps beside a busy loop: threads chosen by
train/threads.py (adaptive) vs OMP_NUM_THREADS=2 (the old behaviour on 2 cores).

    .venv/bin/python benchmarks/bench_threads_train.py [WORK_DIR]

Prints the wall time of each run (start-up included) and the thread change it logged.
"""
import os, subprocess, sys, time
from pathlib import Path
from _common import busy_neighbours
root = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/fastvlm_bench_threads_train")
if not (root / "data/train.json").exists():
    from fastvlm_video.demo.task import demo_tokenizer, make_motion_dataset
    from fastvlm_video.demo.run import DEMO_TEXT_HIDDEN, DEMO_IMAGE_SIZE
    from fastvlm_video.model.tiny import build_tiny_model
    from fastvlm_video.model.processor import make_processor
    make_motion_dataset(root / "data", {"train": 96, "val": 8, "test": 8}, seed=0)
    tok = demo_tokenizer()
    build_tiny_model(tok, text_hidden_size=DEMO_TEXT_HIDDEN).save_pretrained(root / "init")
    make_processor(tok, DEMO_IMAGE_SIZE).save_pretrained(root / "init")
base = [sys.executable, "-m", "fastvlm_video.cli", "train", "--model_name_or_path", str(root / "init"),
        "--data_path", str(root / "data/train.json"), "--image_folder", str(root / "data"), "--num_video_frames", "8",
        "--unfreeze_mm_vision_tower", "true", "--per_device_train_batch_size", "8", "--max_steps", "12",
        "--learning_rate", "2e-3", "--save_strategy", "no", "--report_to", "none", "--use_cpu", "true",
        "--dataloader_num_workers", "1", "--logging_steps", "4", "--disable_tqdm", "true"]
with busy_neighbours(1):
    time.sleep(3)
    for name, extra_env in (("adaptive", {}), ("2 threads forced", {"OMP_NUM_THREADS": "2"}), ("adaptive again", {})):
        env = {**os.environ, **extra_env}
        start = time.perf_counter()
        done = subprocess.run(base + ["--output_dir", str(root / "out")], env=env, capture_output=True, text=True)
        picked = [l for l in done.stderr.splitlines() if "torch threads" in l]
        print(f"{name}: rc {done.returncode}, {time.perf_counter() - start:.1f} s for 12 steps (incl. start-up); {picked[:2]}", flush=True)
