"""Feature cache: storage per frame of the full FastViTHD tower's output, and time per training step with
and without it (CPU; about a minute on 2 cores).

(1) Storage: the real tower (timm ``fastvit_mci3`` through transformers' ``TimmWrapperModel``, random
    weights, no downloads) run on one frame per size: output shape, bytes per frame in fp32 / bf16 /
    fp16, against the frame cache's raw uint8 frame (S x S x 3; a 16:9 frame stores ~56% of it), and
    the CPU seconds the tower takes for that frame (what a hit saves, besides decoding).
(2) Steps: training's own path (``ConversationDataset`` -> ``Collator`` -> forward/backward -> AdamW)
    on the tiny model (FastViTHD topology, shrunk), one sample of ``--frames`` frames at ``--size`` px
    per step, samples = segments of the 10 s 480p clip of ``bench_video.py``: (a) decoding + tower,
    (b) raw frame cache + tower, (c) feature cache, first epoch (decoding + tower + storing),
    (d) feature cache, later epochs (no decoding, no tower). Medians over ``--epochs`` passes.

    python benchmarks/bench_features.py
    python benchmarks/bench_features.py --sizes 512 --markdown /tmp/features.md   # quicker
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, make_clip  # noqa: E402
from bench_train import fastvlm_05b_config  # noqa: E402
from bench_video import versions  # noqa: E402

from fastvlm_video.data.cache_build import build_cache  # noqa: E402
from fastvlm_video.data.chat import ChatEncoder  # noqa: E402
from fastvlm_video.data.collate import Collator  # noqa: E402
from fastvlm_video.data.dataset import ConversationDataset  # noqa: E402
from fastvlm_video.data.feature_cache import FeatureCache, tower_fingerprint  # noqa: E402
from fastvlm_video.data.frame_cache import FrameCache  # noqa: E402
from fastvlm_video.data.records import load_samples  # noqa: E402
from fastvlm_video.model.tiny import build_tiny_model, build_tiny_tokenizer  # noqa: E402
from fastvlm_video.train.freeze import set_trainable  # noqa: E402
from fastvlm_video.video_config import VideoConfig  # noqa: E402

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}


def storage_rows(sizes: list[int]) -> list[str]:
    torch.manual_seed(0)
    tower = AutoModel.from_config(fastvlm_05b_config().vision_config).eval()
    params = sum(p.numel() for p in tower.parameters())
    rows = [
        f"Full FastViTHD tower ({params / 1e6:.0f} M parameters, random weights), one frame, eval mode:",
        "",
        "| S | tower output per frame | values | fp32 B/frame | bf16/fp16 B/frame | raw frame B (frame cache, square) | bf16 / raw | tower CPU s/frame |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for size in sizes:
        cpu = time.process_time()
        with torch.no_grad():
            out = tower(torch.rand(1, 3, size, size)).last_hidden_state
        cpu = time.process_time() - cpu
        values, raw = out[0].numel(), 3 * size * size
        rows.append(f"| {size} | {' x '.join(map(str, out.shape[1:]))} | {values:,} | {values * 4:,} | {values * 2:,} | {raw:,} | "
                    f"{values * 2 / raw:.2f} | {cpu:.2f} |")  # fmt: skip
    return rows


def clip_samples(root: Path, clip: Path, count: int) -> list:
    """``count`` samples, each one segment of ``clip`` (distinct media items, as distinct videos are)."""
    step = 10.0 / count
    records = [
        {"id": f"s{i}", "video": clip.name, "start": i * step, "end": (i + 1) * step,
         "conversations": [{"from": "human", "value": "<video>\nWhat moves?"}, {"from": "gpt", "value": "a white block"}]}
        for i in range(count)
    ]  # fmt: skip
    (root / "data.json").write_text(json.dumps(records))
    return load_samples(root / "data.json", clip.parent)[0]


def epoch(model, optimizer, dataset, collate) -> list[tuple[float, float, float]]:
    """One pass, one sample per step: (data wall s, model step wall s, step CPU s) per step."""
    times = []
    for index in range(len(dataset)):
        wall, cpu = time.perf_counter(), time.process_time()
        batch = collate([dataset[index]])
        data = time.perf_counter() - wall
        loss = model(**{k: v for k, v in batch.items() if k not in ("skipped", "truncated")}).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append((data, time.perf_counter() - wall - data, time.process_time() - cpu))
    return times


def step_rows(size: int, frames: int, count: int, epochs: int, root: Path) -> list[str]:
    video = VideoConfig(num_frames=frames, image_size=size)
    samples = clip_samples(root, make_clip(10, "480p", 30), count)
    tokenizer = build_tiny_tokenizer()
    encoder, collate = ChatEncoder(tokenizer, video.tokens_per_frame), Collator(pad_token_id=tokenizer.pad_token_id)
    build_cache(samples, video, root / "frames", workers=1, progress=False)

    def fresh():
        model = build_tiny_model(tokenizer, seed=0)
        set_trainable(model, train_llm=True, train_projector=True, train_vision_tower=False)
        model.train()
        return model, torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    results: dict[str, list] = {}
    model, optimizer = fresh()
    plain = ConversationDataset(samples, encoder, video)
    results["(a) decode + tower"] = [t for _ in range(epochs) for t in epoch(model, optimizer, plain, collate)]
    framed = ConversationDataset(samples, encoder, video, frame_cache=FrameCache(root / "frames", video))
    results["(b) frame cache (raw) + tower"] = [t for _ in range(epochs) for t in epoch(model, optimizer, framed, collate)]
    model, optimizer = fresh()
    features = FeatureCache(root / "features", tower_fingerprint(model.model.vision_tower, torch.float32, "cpu"))
    features.attach(model.model.vision_tower)
    cached = ConversationDataset(samples, encoder, video, feature_cache=features)
    results["(c) feature cache, epoch 1 (fill)"] = epoch(model, optimizer, cached, collate)
    features.flush()
    results["(d) feature cache, later epochs"] = [t for _ in range(epochs) for t in epoch(model, optimizer, cached, collate)]
    stored = features.bytes_written / (count * frames)

    base = statistics.median(t[0] + t[1] for t in results["(a) decode + tower"])
    rows = [
        f"Tiny model (FastViTHD topology shrunk, Qwen2 2 x 64), one sample of {frames} frames at {size} px per step, "
        f"{count} samples (segments of the 10 s 480p clip), median of {epochs} epochs (fill: 1); fp32 features "
        f"{stored:,.0f} B per frame:",
        "",
        "| pipeline | data s/step | model s/step | total s/step | step CPU s | vs (a) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, times in results.items():
        data, model_s = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
        total, cpu = statistics.median(t[0] + t[1] for t in times), statistics.median(t[2] for t in times)
        rows.append(f"| {name} | {data:.4f} | {model_s:.4f} | {total:.4f} | {cpu:.4f} | {base / total:.1f}x |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 512], help="frame sizes for the storage table")
    parser.add_argument("--size", type=int, default=256, help="frame size for the step timing (tiny model)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--markdown", type=Path, help="also write the tables here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lines = [f"Machine: {versions()}, {args.threads} torch thread(s); {time.strftime('%Y-%m-%d', time.gmtime())}", ""]
    lines += storage_rows(args.sizes) + [""]
    with tempfile.TemporaryDirectory() as tmp:
        lines += step_rows(args.size, args.frames, args.samples, args.epochs, Path(tmp))
    return emit(lines, args.markdown)


if __name__ == "__main__":
    sys.exit(main())
