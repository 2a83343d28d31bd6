"""Memory model check: measured peak memory of one training step vs ``budget.memory.estimate``.

Each size runs in a fresh process (so the peak is its own): random weights, a batch of frames and
text, then forward + backward, an AdamW step, and a second forward + backward with the gradients
kept (as under gradient accumulation) - the steady-state peak: weights + gradients + optimizer
states + activations. On CPU the measure is the peak resident memory (``ru_maxrss``) minus the
resident memory after the model is built less its weights' bytes (building leaves init temporaries
and lazily loaded libraries resident, which no formula of the run should count); with CUDA it is ``torch.cuda.max_memory_allocated``.
glibc's malloc is told to return large blocks at once (MALLOC_MMAP_THRESHOLD_) so RSS follows tensors.

    python benchmarks/bench_budget.py                 # all sizes, a table (markdown)
    python benchmarks/bench_budget.py --sizes small   # one size
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

SIZES = {
    # tiny FastViTHD-topology tower, trained too; a small LLM trained in full
    "small": dict(text=dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, intermediate_size=1024, vocab_size=32000),
                  vision=dict(layers=[1, 1, 1, 1, 1], embed_dims=[8, 16, 32, 64, 128]), train="full", tower=True, frames=2, size=512, text_tokens=96),
    # half-width FastViTHD (all 44 blocks), frozen; a 100M LLM trained in full
    "medium": dict(text=dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=2, intermediate_size=2816, vocab_size=64000),
                   vision=dict(embed_dims=[48, 96, 192, 384, 768]), train="full", tower=False, frames=2, size=512, text_tokens=96),
    # Qwen2-0.5B-shaped LLM (frozen) with the full FastViTHD tower (frozen): LLaVA stage 1, projector trained
    "qwen2-0.5b": dict(text=dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2, intermediate_size=4864,
                                 vocab_size=151936, tie_word_embeddings=True), vision=dict(inference_mode=True), train="projector", tower=False,
                       frames=2, size=512, text_tokens=96),
}


def build(spec: dict):
    from transformers import FastVlmConfig, FastVlmForConditionalGeneration

    vision_hidden = spec["vision"].get("embed_dims", [1536])[-1] * 2
    text = {"model_type": "qwen2", "max_position_embeddings": 32768, "tie_word_embeddings": False, **spec["text"]}
    config = FastVlmConfig(
        vision_config={"model_type": "timm_wrapper", "architecture": "fastvit_mci3", "do_pooling": False, "hidden_size": vision_hidden, "model_args": spec["vision"]},
        text_config=text,
        image_token_index=text["vocab_size"] - 1,
    )
    return config, FastVlmForConditionalGeneration(config)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_one(name: str) -> dict:
    import torch

    from fastvlm_video.budget.memory import ModelShape, Setting, estimate

    torch.manual_seed(0)
    torch.set_num_threads(2)
    spec = SIZES[name]
    k = (spec["size"] // 64) ** 2
    vocab = spec["text"]["vocab_size"]
    ids = torch.cat([torch.full((spec["frames"] * k,), vocab - 1), torch.randint(0, vocab - 2, (spec["text_tokens"],))])[None]
    labels = ids.clone()
    labels[ids == vocab - 1] = -100
    pixels = torch.rand(spec["frames"], 3, spec["size"], spec["size"])
    cuda = torch.cuda.is_available()
    base = torch.cuda.memory_allocated() if cuda else rss_bytes()

    config, model = build(spec)
    model.train()
    for name_, p in model.named_parameters():
        trained = "multi_modal_projector" in name_ or ("vision_tower" in name_ and spec["tower"]) or ("language_model" in name_ or "lm_head" in name_) and spec["train"] == "full"
        p.requires_grad_(trained)
    if not spec["tower"]:
        model.model.vision_tower.eval()
    device = "cuda" if cuda else "cpu"
    model.to(device)
    batch = {"input_ids": ids.to(device), "labels": labels.to(device), "pixel_values": pixels.to(device), "attention_mask": torch.ones_like(ids).to(device)}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, foreach=False)
    peak = (lambda: torch.cuda.max_memory_allocated()) if cuda else (lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    built = (torch.cuda.memory_allocated() if cuda else rss_bytes()) - base
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters()) + sum(b.numel() * b.element_size() for b in model.buffers())
    base += built - weight_bytes  # what building left behind beyond the weights (init temporaries, lazily loaded libraries)
    phases = {"built_overhead": built - weight_bytes}
    started = time.perf_counter()
    model(**batch).loss.backward()
    phases["pass1_peak"] = peak() - base
    optimizer.step()  # gradients kept: the second pass runs with them, as under gradient accumulation
    phases["after_step"] = (torch.cuda.memory_allocated() if cuda else rss_bytes()) - base
    model(**batch).loss.backward()
    seconds = time.perf_counter() - started
    measured = (torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) - base

    setting = Setting(batch_size=1, seq_len=ids.shape[1], frames=spec["frames"], image_size=spec["size"], precision="fp32",
                      train=spec["train"], train_vision_tower=spec["tower"])
    est = estimate(ModelShape.from_config(config.to_dict()), setting)
    params = sum(p.numel() for p in model.parameters())
    return {
        "size": name, "params_m": params / 1e6, "trained_m": est.trainable_params / 1e6, "tokens": ids.shape[1], "frames": spec["frames"],
        "image_size": spec["size"], "train": spec["train"] + (" + tower" if spec["tower"] else ""), "seconds": seconds,
        "measured_gib": measured / 2**30, "estimated_gib": est.total / 2**30, "ratio": est.total / measured,
        "parts_gib": {k: v / 2**30 for k, v in est.rows()}, "device": device,
        "phases_gib": {k: v / 2**30 for k, v in phases.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one)))
        return
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    rows = []
    for name in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--one", name], env=env, capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"{name} failed:\n{out.stderr[-3000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr)
    print("| size | params | trained | what trains | frames x px | tokens | measured peak | estimated | est/measured |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']} | {r['params_m']:.0f} M | {r['trained_m']:.1f} M | {r['train']} | {r['frames']} x {r['image_size']} | {r['tokens']} "
              f"| {r['measured_gib']:.3f} GiB | {r['estimated_gib']:.3f} GiB | {r['ratio']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
