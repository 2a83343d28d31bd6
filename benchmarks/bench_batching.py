"""Padding share and LLM tokens/s: random batches vs --group_by_modality_length vs --packing.

    .venv/bin/python benchmarks/bench_batching.py --num_samples 240 --batch_size 8 --image_size 512 --threads 1

A mixed set (40% 8-frame videos, 30% images, 30% text, answers and questions of varied length) is
made of records only: lengths come from ``token_length`` (no decoding), as the sampler computes them.
Padding share = padded slots / all slots of ``batch x longest``. Then a small Qwen2 (random weights)
runs forward + backward over every batch of the epoch in each layout (the same samples) and reports
real (non-pad) tokens per second; the tower's cost does not depend on the layout, so it is left out.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from fastvlm_video.constants import IGNORE_INDEX
from fastvlm_video.data.chat import ChatEncoder
from fastvlm_video.data.collate import Collator
from fastvlm_video.data.grouping import ModalityLengthGroupedSampler, modality_of, padding_share, token_length
from fastvlm_video.data.records import MediaRef, Message, Sample
from fastvlm_video.model.tiny import build_tiny_tokenizer
from fastvlm_video.video_config import VideoConfig

WORDS = "the square moves left right up down then stops near a red corner of the frame".split()


def mixed_samples(n: int, seed: int = 0) -> list[Sample]:
    rng = random.Random(seed)

    def text(lo: int, hi: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))

    samples = []
    for k in range(n):
        kind = rng.choices(["video", "image", "text"], weights=[4, 3, 3])[0]
        media = [] if kind == "text" else [MediaRef(f"m{k}.{'mp4' if kind == 'video' else 'jpg'}", kind)]
        prefix = "" if kind == "text" else "<image>\n"
        messages = [Message("user", prefix + text(5, 60)), Message("assistant", text(1, 150))]
        samples.append(Sample(str(k), messages, media))
    return samples


def batches_of(order: list[int], size: int) -> list[list[int]]:
    return [order[k : k + size] for k in range(0, len(order), size)]


def items_for(batch: list[int], lengths: list[int], vocab: int) -> list[dict]:
    out = []
    for i in batch:
        ids = torch.randint(10, vocab, (lengths[i],))
        labels = ids.clone()
        labels[: lengths[i] // 2] = IGNORE_INDEX
        out.append({"input_ids": ids, "labels": labels})
    return out


def tokens_per_second(model, collate: Collator, batches: list[list[int]], lengths: list[int], vocab: int) -> float:
    """Real tokens / seconds of forward + backward, over all ``batches`` (the same samples for every layout)."""
    seconds = 0.0
    for batch in batches:
        inputs = collate(items_for(batch, lengths, vocab))
        inputs.pop("skipped"), inputs.pop("num_samples", None)
        start = time.perf_counter()
        model(**inputs, use_cache=False).loss.backward()
        seconds += time.perf_counter() - start
        model.zero_grad(set_to_none=True)
    return sum(lengths[i] for batch in batches for i in batch) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_samples", type=int, default=600)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--world_size", type=int, default=1)
    parser.add_argument("--image_size", type=int, default=512)
    parser.add_argument("--num_video_frames", type=int, default=8)
    parser.add_argument("--hidden_size", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    video = VideoConfig(num_frames=args.num_video_frames, image_size=args.image_size)
    tokenizer = build_tiny_tokenizer(WORDS)
    encoder = ChatEncoder(tokenizer, video.tokens_per_frame)
    samples = mixed_samples(args.num_samples)
    lengths = [token_length(s, encoder, video) for s in samples]
    modalities = [modality_of(s) for s in samples]

    shuffled = list(range(len(samples)))
    random.Random(0).shuffle(shuffled)
    grouped = list(ModalityLengthGroupedSampler(lengths, modalities, args.batch_size, args.world_size, seed=0))
    layouts = {"random": batches_of(shuffled, args.batch_size), "grouped": batches_of(grouped, args.batch_size)}
    share = {name: padding_share(lengths, b) for name, b in layouts.items()}

    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=args.hidden_size, intermediate_size=4 * args.hidden_size,
        num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192,
    )  # fmt: skip
    model = Qwen2ForCausalLM(config).train()
    padded, packed = Collator(pad_token_id=tokenizer.pad_token_id), Collator(pad_token_id=tokenizer.pad_token_id, packing=True)
    tokens_per_second(model, padded, layouts["random"][:2], lengths, len(tokenizer))  # warm-up
    rows = []
    for name, batches in layouts.items():
        for label, collate in (("padded", padded), ("packed", packed)):
            rate = tokens_per_second(model, collate, batches, lengths, len(tokenizer))
            rows.append((name, label, share[name] if label == "padded" else 0.0, rate))

    counts = {m: modalities.count(m) for m in ("video", "image", "text")}
    print(f"# {len(samples)} samples {counts}, {args.num_video_frames} frames x {video.tokens_per_frame} tokens,"
          f" batch {args.batch_size} x world {args.world_size}; lengths {min(lengths)}-{max(lengths)}, median {statistics.median(lengths)}")
    print(f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} threads;"
          f" Qwen2 {args.layers} layers x {args.hidden_size}, fwd+bwd over the whole epoch")
    print("| order | layout | padding share | real tokens/s | vs random padded |")
    print("|---|---|---:|---:|---:|")
    base = rows[0][3]
    for name, label, pad, rate in rows:
        print(f"| {name} | {label} | {pad:.1%} | {rate:,.0f} | {rate / base:.2f}x |")
    print(f"padding share cut: {share['random'] / share['grouped']:.1f}x")


if __name__ == "__main__":
    main()
