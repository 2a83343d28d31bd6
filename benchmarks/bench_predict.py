"""Time to first token of ``predict`` and its split, for 1/4/8/16 frames; frames encoded in one batch vs one by one.

Models (random weights, built on the fly, nothing downloaded):
  tiny       the tests' tiny FastVLM (FastViTHD topology shrunk, 2-layer Qwen2)
  fullvision the full-size FastViTHD tower (timm ``fastvit_mci3``, reparameterised as released) with the
             tiny LLM: the vision part at its real cost (``--full_tower``; slow on CPU: ~12 s per 1024 px frame)

    python benchmarks/bench_predict.py                               # tiny, 1/4/8/16 frames at 512 px
    python benchmarks/bench_predict.py --full_tower --frames 1 4 --image_size 256
    python benchmarks/bench_predict.py --device cuda --image_size 1024 --full_tower

Columns are medians over ``--repeats`` runs, milliseconds: decode (read + sample + resize frames),
preprocess (chat tokens, scaling, to device), vision (tower + projector, all frames in one batch),
vision 1x1 (the same frames one at a time), prefill (LLM over the prompt to the first token), TTFT
(decode + preprocess + vision + prefill), then generated tokens per second after the first.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from fastvlm_video.demo.synthetic import moving_square_frames, write_video  # noqa: E402
from fastvlm_video.infer.predictor import Predictor, Timings, synchronize  # noqa: E402
from fastvlm_video.model.processor import make_processor  # noqa: E402
from fastvlm_video.model.tiny import build_tiny_model, build_tiny_tokenizer  # noqa: E402
from fastvlm_video.video_config import VideoConfig  # noqa: E402


def build(kind: str, root: Path, image_size: int) -> Path:
    """Save a random model of ``kind`` (tiny | fullvision) with processor and video settings."""
    tokenizer = build_tiny_tokenizer()
    model = build_tiny_model(tokenizer, seed=0)
    if kind == "fullvision":
        config = model.config
        config.vision_config.model_args = {"inference_mode": True}  # all of fastvit_mci3: layers 2,12,24,4,2; dims 96..1536
        config.vision_config.hidden_size = 3072
        torch.manual_seed(0)
        model = type(model)(config)
    path = root / kind
    model.save_pretrained(path)
    make_processor(tokenizer, image_size).save_pretrained(path)
    VideoConfig(image_size=image_size).save(path)
    return path


def measure(predictor: Predictor, clip: Path, repeats: int, max_new_tokens: int) -> dict[str, float]:
    rows = []
    for _ in range(repeats):
        timings = Timings()
        prompt = predictor.prompt_for(clip, "What happens in the video?", timings)
        for _piece in predictor.stream(prompt, max_new_tokens, timings, min_new_tokens=max_new_tokens):
            pass
        pixels = predictor._inputs([prompt])["pixel_values"]
        synchronize(predictor.device)
        start = time.perf_counter()
        predictor.encode_frames(pixels, one_by_one=True)
        synchronize(predictor.device)
        rows.append({**timings.seconds, "vision_1x1": time.perf_counter() - start, "ttft": timings.ttft_s, "tok_s": timings.tokens_per_s})
    return {key: statistics.median(r[key] for r in rows) for key in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--image_size", type=int, default=512)
    parser.add_argument("--full_tower", action="store_true", help="also the full-size FastViTHD tower with the tiny LLM")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max_new_tokens", type=int, default=16)
    args = parser.parse_args()
    torch.manual_seed(0)

    root = Path(tempfile.mkdtemp(prefix="bench_predict_"))
    clip = write_video(root / "clip.mp4", moving_square_frames("left", np.random.default_rng(0)), fps=8, gop=8)
    kinds = ["tiny"] + (["fullvision"] if args.full_tower else [])
    print(f"device {args.device}, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.image_size} px frames, {args.repeats} repeats (medians)\n")  # fmt: skip
    print("| model | frames | decode | preprocess | vision (batch) | vision (1 by 1) | prefill | TTFT | tokens/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind in kinds:
        path = build(kind, root, args.image_size)
        for frames in args.frames:
            predictor = Predictor.from_pretrained(path, device=args.device, num_frames=frames)
            measure(predictor, clip, 1, 2)  # warm-up
            m = measure(predictor, clip, args.repeats, args.max_new_tokens)
            ms = {k: f"{v * 1000:.0f}" for k, v in m.items() if k != "tok_s"}
            print(f"| {kind} | {frames} | {ms['decode']} | {ms['preprocess']} | {ms['vision_encode']} | {ms['vision_1x1']} "
                  f"| {ms['prefill']} | {ms['ttft']} | {m['tok_s']:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
