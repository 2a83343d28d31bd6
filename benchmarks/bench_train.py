"""Real-size training cost: the full FastViTHD tower + an LLM of Qwen2-0.5B's shape (random weights, no downloads).

    # CPU, smallest configuration that runs (about 10-30 min on a 2-core machine):
    .venv/bin/python benchmarks/bench_train.py --sizes 1024 512 --frames 2
    # one GPU (the script scripts/gpu_checks.sh runs exactly this):
    .venv/bin/python benchmarks/bench_train.py --device cuda --sizes 1024 512 --frames 8 --dtype bfloat16

Measures, per frame size S (K = (S/64)^2 tokens per frame), for one sample of ``--frames`` frames:
  (a) loader: samples/s of one DataLoader worker (1 / CPU-seconds per sample) for each decoding mode
      in ``LOADER_MODES`` (exact uniform decode, keyframe mode; a frame cache adds its own entry);
  (b) one training step split into vision tower forward (frozen, as LLaVA's default) /
      LLM + projector forward+backward / AdamW step;
  (c) peak memory (CUDA: max allocated; CPU: the process's peak RSS).
From (a) and (b) it prints "CPU cores per GPU the loader needs" per decoding mode: the GPU's samples/s
(measured with --device cuda, else estimated from counted FLOPs at ``--assume_tflops``) divided by
one worker's samples/s. The FLOPs are counted on the meta device (no compute).
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import resource
import sys
import time
from collections.abc import Callable
from unittest import mock
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import FastVlmConfig, FastVlmForConditionalGeneration

sys.path.insert(0, str(Path(__file__).parent))
from _common import make_clip  # noqa: E402

from fastvlm_video.media.video import load_video_tensor  # noqa: E402

IMAGE_TOKEN_ID = 151646
TEXT_TOKENS = 80  # system prompt + question + answer around the frames

# Qwen2-0.5B(-Instruct)'s shape, as FastVLM-0.5B uses it.
QWEN2_05B = {
    "model_type": "qwen2",
    "vocab_size": 151936,
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "tie_word_embeddings": True,
}


def fastvlm_05b_config() -> FastVlmConfig:
    """The full FastViTHD tower (timm ``fastvit_mci3``, 3072 channels out) + Qwen2-0.5B's shape."""
    vision = {"model_type": "timm_wrapper", "architecture": "fastvit_mci3", "do_pooling": False, "hidden_size": 3072}
    return FastVlmConfig(vision_config=vision, text_config=QWEN2_05B, image_token_index=IMAGE_TOKEN_ID)


# ---- (a) loader -------------------------------------------------------------------------------


def exact_decode(path: str, frames: int, size: int) -> torch.Tensor:
    return load_video_tensor(path, frames, size, "uniform", "pad").frames


def keyframe_decode(path: str, frames: int, size: int) -> torch.Tensor:
    return load_video_tensor(path, frames, size, "keyframe", "pad").frames


# name -> (path, frames, size) -> uint8 frames. The frame cache (issue 12) registers its read here.
@functools.cache
def _frame_cache(path: str, frames: int, size: int):
    """A raw frame cache holding this clip (built on the first call: the warm-up, outside the timing)."""
    import tempfile

    from bench_cache import clip_samples

    from fastvlm_video.data.cache_build import build_cache
    from fastvlm_video.data.frame_cache import FrameCache
    from fastvlm_video.video_config import VideoConfig

    root, video = Path(tempfile.mkdtemp(prefix="bench_train_cache_")), VideoConfig(num_frames=frames, image_size=size)
    samples = clip_samples(Path(path), root)
    build_cache(samples, video, root / "cache", workers=1, progress=False)
    return FrameCache(root / "cache", video), samples[0].media[0], video


def cache_read(path: str, frames: int, size: int) -> torch.Tensor:
    cache, ref, video = _frame_cache(path, frames, size)
    return cache.get(ref, video).frames


LOADER_MODES: dict[str, Callable[[str, int, int], torch.Tensor]] = {"exact": exact_decode, "keyframe": keyframe_decode, "cache": cache_read}


def loader_rate(fn: Callable[[str, int, int], torch.Tensor], path: str, frames: int, size: int, repeats: int) -> float:
    """Samples per second of one worker = 1 / median CPU-seconds per sample (one thread)."""
    fn(path, frames, size)  # warm-up (codec, page cache)
    costs = []
    for _ in range(repeats):
        start = time.process_time()
        fn(path, frames, size)
        costs.append(time.process_time() - start)
    return 1.0 / sorted(costs)[len(costs) // 2]


# ---- (b) one training step --------------------------------------------------------------------


def make_inputs(frames: int, size: int, device: str, dtype: torch.dtype) -> dict:
    k = (size // 64) ** 2
    ids = torch.randint(0, 151000, (1, TEXT_TOKENS + frames * k))
    ids[0, 20 : 20 + frames * k] = IMAGE_TOKEN_ID
    labels = ids.clone()
    labels[0, : 20 + frames * k + TEXT_TOKENS // 2] = -100
    pixels = torch.rand(frames, 3, size, size, dtype=dtype)
    return {"input_ids": ids.to(device), "labels": labels.to(device), "pixel_values": pixels.to(device)}


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def train_step(model, optimizer, inputs: dict, device: str) -> dict[str, float]:
    """Seconds of tower forward (no grad), LLM + projector forward+backward, optimizer step."""
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    times = {}
    sync(device)
    start = time.perf_counter()
    with torch.no_grad():
        features = model.model.vision_tower(inputs["pixel_values"]).last_hidden_state
    sync(device)
    times["tower_s"] = time.perf_counter() - start

    start = time.perf_counter()
    # The projector and the LLM, exactly as FastVlmModel.get_image_features continues from the tower.
    image = model.model.multi_modal_projector(features.flatten(2).transpose(1, 2))
    encoded = {"image": BaseModelOutputWithPooling(pooler_output=image)}
    loss = model(input_ids=inputs["input_ids"], labels=inputs["labels"], mm_encoder_outputs=encoded, use_cache=False).loss
    loss.backward()
    sync(device)
    times["llm_fwd_bwd_s"] = time.perf_counter() - start

    start = time.perf_counter()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    sync(device)
    times["optimizer_s"] = time.perf_counter() - start
    return times


def count_flops(config: FastVlmConfig, frames: int, size: int) -> dict[str, float]:
    """FLOPs of the tower forward and the LLM forward+backward, counted on the meta device."""
    with torch.device("meta"):
        model = FastVlmForConditionalGeneration(config)
        inputs = make_inputs(frames, size, "meta", torch.float32)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        features = model.model.vision_tower(inputs["pixel_values"]).last_hidden_state
    tower = counter.get_total_flops()
    counter = FlopCounterMode(display=False)
    # Meta tensors have no values: skip transformers' packed-sequence probe (one causal sequence here).
    no_probe = mock.patch("transformers.masking_utils.find_packed_sequence_indices", return_value=None)
    with counter, no_probe:  # the same layers as the model's forward, without its data-dependent placeholder check
        image = model.model.multi_modal_projector(features.flatten(2).transpose(1, 2))
        image = image.reshape(1, -1, config.text_config.hidden_size)
        text = model.model.get_input_embeddings()(inputs["input_ids"][:, :TEXT_TOKENS])
        hidden = model.model.language_model(inputs_embeds=torch.cat([text, image], 1), use_cache=False).last_hidden_state
        logits = model.lm_head(hidden)
        torch.nn.functional.cross_entropy(logits[0].float(), inputs["input_ids"][0]).backward()
    return {"tower_flops": float(tower), "llm_flops": float(counter.get_total_flops())}


def peak_memory_gb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 512])
    parser.add_argument("--frames", type=int, default=None, help="frames per sample (default: 2 on CPU, 8 on CUDA)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per size (default: 1 on CPU; 5 on CUDA, after a warm-up)")
    parser.add_argument("--clip", default="10s_480p_gop30", help="SECONDSs_RES_gopN, generated once (benchmarks/_common.py)")
    parser.add_argument("--loader_frames", type=int, default=8, help="frames per sample for the loader measurement")
    parser.add_argument("--loader_repeats", type=int, default=5)
    parser.add_argument(
        "--assume_tflops", type=float, default=250.0, help="GPU TFLOP/s for the estimate without a GPU (H100/H200 bf16, ~25-40%% MFU)"
    )
    parser.add_argument("--skip_step", action="store_true", help="loader and FLOPs only")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    frames = args.frames or (8 if cuda else 2)
    steps = args.steps or (5 if cuda else 1)
    dtype = getattr(torch, args.dtype)
    if args.threads:
        torch.set_num_threads(args.threads)

    seconds, res, gop = args.clip.split("_")
    clip = str(make_clip(int(seconds.rstrip("s")), res, int(gop.removeprefix("gop"))))
    config = fastvlm_05b_config()
    results = {"device": args.device, "dtype": args.dtype, "frames": frames, "clip": args.clip, "torch": torch.__version__}
    results["rows"] = []
    torch.manual_seed(0)
    model = optimizer = None
    if not args.skip_step:
        model = FastVlmForConditionalGeneration(config).to(args.device, dtype).train()
        model.model.vision_tower.requires_grad_(False)
        model.model.vision_tower.eval()  # frozen: BatchNorm keeps its running statistics
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
        results["trainable_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)

    for size in args.sizes:
        row: dict = {"size": size, "tokens": TEXT_TOKENS + frames * (size // 64) ** 2}
        row["loader_samples_per_s"] = {
            name: loader_rate(fn, clip, args.loader_frames, size, args.loader_repeats) for name, fn in LOADER_MODES.items()
        }
        row.update(count_flops(config, frames, size))
        if model is not None:
            inputs = make_inputs(frames, size, args.device, dtype)
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            timings = [train_step(model, optimizer, inputs, args.device) for _ in range(steps + (1 if cuda else 0))][-steps:]
            row.update({k: sorted(t[k] for t in timings)[len(timings) // 2] for k in timings[0]})
            row["peak_memory_gb"] = peak_memory_gb(args.device)
        # The GPU's time for one sample of --loader_frames frames: measured, or FLOPs / assumed throughput.
        scale = args.loader_frames / frames
        if cuda and model is not None:
            gpu_s = row["tower_s"] * scale + row["llm_fwd_bwd_s"] * scale + row["optimizer_s"]
            row["gpu_step_source"] = "measured (tower and LLM scaled to loader frames)"
        else:
            flops = count_flops(config, args.loader_frames, size) if scale != 1 else row
            gpu_s = (flops["tower_flops"] + flops["llm_flops"]) / (args.assume_tflops * 1e12)
            row["gpu_step_source"] = f"estimated at {args.assume_tflops:g} TFLOP/s"
        row["gpu_s_per_sample"] = gpu_s
        row["cores_per_gpu"] = {name: 1.0 / (gpu_s * rate) for name, rate in row["loader_samples_per_s"].items()}
        results["rows"].append(row)
        print(json.dumps(row), flush=True)

    print(f"\n# {platform.machine()}, torch {torch.__version__}, device {args.device}, {args.dtype}, "
          f"{torch.get_num_threads()} threads, one sample of {frames} frames per step; clip {args.clip}")  # fmt: skip
    print("| S | tokens | tower fwd GFLOP | LLM fwd+bwd GFLOP | tower s | LLM fwd+bwd s | AdamW s | peak GB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results["rows"]:
        cells = [f"{r.get(k, float('nan')):.2f}" for k in ("tower_s", "llm_fwd_bwd_s", "optimizer_s", "peak_memory_gb")]
        print(f"| {r['size']} | {r['tokens']} | {r['tower_flops'] / 1e9:,.0f} | {r['llm_flops'] / 1e9:,.0f} | " + " | ".join(cells) + " |")
    print(f"\n# CPU cores per GPU the loader needs ({args.loader_frames} frames per sample; GPU step {results['rows'][0]['gpu_step_source']})")
    print("| S | GPU s per sample | " + " | ".join(f"{m}: samples/s per worker | {m}: cores per GPU" for m in LOADER_MODES) + " |")
    print("|---:|---:|" + "---:|---:|" * len(LOADER_MODES))
    for r in results["rows"]:
        cells = [f"{r['loader_samples_per_s'][m]:.2f} | {r['cores_per_gpu'][m]:.1f}" for m in LOADER_MODES]
        print(f"| {r['size']} | {r['gpu_s_per_sample']:.3f} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
