"""Brief trial: TRL's DPOTrainer (trl 1.16) on a tiny FastVLM with our decoded frames as images (docs/post_training.md).

    pip install trl   # adds datasets, pandas; torch/transformers unchanged
    python benchmarks/trl_dpo_trial.py > benchmarks/results/trl_dpo_trial.txt

What it shows: the frames must be decoded up front into a datasets.Dataset of PIL images (one <image> per
frame), the vision tower sees every frame 4 times per step (pair rows x policy/reference), and the
trained tokens include the newline after <|im_end|> (our SFT labels stop at <|im_end|>). Times are
from a shared, loaded machine: not comparable.
"""
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from datasets import Dataset
from PIL import Image
from trl import DPOConfig, DPOTrainer
from fastvlm_video.data.dataset import load_sample_media
from fastvlm_video.data.records import parse_record
from fastvlm_video.model.tiny import build_tiny_model, build_tiny_tokenizer
from fastvlm_video.model.processor import make_processor
from fastvlm_video.video_config import VideoConfig

from fastvlm_video.demo.synthetic import moving_square_frames, write_video

MEDIA = tempfile.mkdtemp()
OUT = Path(MEDIA) / "out"
write_video(Path(MEDIA) / "left.mp4", moving_square_frames("left", np.random.default_rng(0)), fps=8, gop=8)
tok = build_tiny_tokenizer(); model = build_tiny_model(tok, seed=0); proc = make_processor(tok, 64)
video = VideoConfig(num_frames=4, image_size=64)
rec = {"video": "left.mp4", "prompt": "Where?", "chosen": "left", "rejected": "up"}
s = parse_record(rec, "p", 0, MEDIA)
decodes = 0
rows = []
for i in range(4):
    loaded, _ = load_sample_media(s.messages, s.media, video); decodes += 1
    frames = [Image.fromarray(f.permute(1, 2, 0).numpy()) for f in loaded[0].frames]
    rows.append({"images": frames, "prompt": [{"role": "user", "content": [{"type": "image"}] * len(frames) + [{"type": "text", "text": "Where?"}]}],
                 "chosen": [{"role": "assistant", "content": "left"}], "rejected": [{"role": "assistant", "content": "up"}]})
ds = Dataset.from_list(rows)
calls = []
model.model.vision_tower.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
cfg = DPOConfig(output_dir=str(OUT), per_device_train_batch_size=2, max_steps=2, report_to="none", use_cpu=True, logging_steps=1, bf16=False)
t = time.time()
try:
    import copy
    trainer = DPOTrainer(model=model, ref_model=copy.deepcopy(model), args=cfg, train_dataset=ds, processing_class=proc)
    batch = trainer.data_collator([ds[0], ds[1]])
    print("batch keys", sorted(batch), "pixel_values", tuple(batch["pixel_values"].shape), "input_ids", tuple(batch["input_ids"].shape))
    ids, mask = batch["input_ids"][0], batch["completion_mask"][0]
    print("trained tokens of row 0:", repr(tok.decode(ids[mask.bool()])))
    trainer.train()
    print("ran; tower calls (frames per call):", calls, "seconds", round(time.time() - t, 1))
except Exception as e:
    print("FAILED:", type(e).__name__, str(e)[:500])
