"""How fast does the demo's tiny FastVLM learn the motion direction? A fast, in-memory probe.

The full demo takes ~8 minutes; this loop trains the same tiny model on the same kind of clips
(rendered in memory, no H.264, no Trainer) so that one setting costs 1-3 minutes and settings can be
compared. It prints held-out accuracy and *axis* accuracy (horizontal vs vertical) as training goes:
the axis needs two frames, the sign also needs their order.

``--features ideal`` replaces the vision tower with the true position of the square as
(sin, cos) of each axis's phase around the wrap-around circle: it tells whether the LLM or the
tower is what learns slowly.

``--still_steps N --train_images M`` first trains on M still frames ("where is the square?", the
demo's stage 1) for N steps, printing column and row accuracy, then on the clips (stage 2).

    .venv/bin/python benchmarks/demo_learning.py --steps 800
    .venv/bin/python benchmarks/demo_learning.py --train_images 4000 --still_steps 500 --still_batch_size 32 --steps 750
    .venv/bin/python benchmarks/demo_learning.py --features ideal --init 0.02   # HF's default init
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from fastvlm_video.data.chat import ChatEncoder
from fastvlm_video.data.collate import Collator
from fastvlm_video.data.records import Message
from fastvlm_video.demo.synthetic import _STEP, DIRECTIONS, moving_square_frames, square_frame
from fastvlm_video.demo.task import QUESTION, WHERE_QUESTION, demo_tokenizer, where_answer
from fastvlm_video.media.sampling import uniform_indices
from fastvlm_video.model.tiny import build_tiny_model


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", choices=("tower", "ideal"), default="tower")
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--tower_lr", type=float, default=None, help="vision tower lr (default: --lr; 0 freezes it)")
    p.add_argument("--bn_gamma", type=float, default=1.0, help="scale the tower's BatchNorm weights at init")
    p.add_argument("--text_layers", type=int, default=2)
    p.add_argument("--max_grad_norm", type=float, default=0.0, help="0: no clipping (the demo's setting)")
    p.add_argument("--init", type=float, default=None, help="LLM/projector init std (default: the tiny model's 1/sqrt(d))")
    p.add_argument("--clip_frames", type=int, default=15, help="frames per clip; 8 are sampled uniformly")
    p.add_argument("--step_px", type=float, default=4, help="square motion per clip frame, px")
    p.add_argument("--square", type=int, default=16)
    p.add_argument("--size", type=int, default=64, help="frame size; (size/64)^2 tokens per frame")
    p.add_argument("--train_clips", type=int, default=2000)
    p.add_argument("--train_images", type=int, default=0, help="still frames asking where the square is")
    p.add_argument("--still_steps", type=int, default=0, help="first train on the still frames alone for this many steps")
    p.add_argument("--still_batch_size", type=int, default=8)
    p.add_argument("--mix_images", action="store_true", help="mix the still frames into the clip phase")
    p.add_argument("--eval_every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


class Probe:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        torch.manual_seed(args.seed)
        self.rng = np.random.default_rng(args.seed)
        tokenizer = demo_tokenizer()
        self.model = build_tiny_model(tokenizer, seed=args.seed, text_hidden_size=128, text_layers=args.text_layers, init_std=args.init)
        with torch.no_grad():
            for module in self.model.model.vision_tower.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.weight.mul_(args.bn_gamma)
        self.encoder = ChatEncoder(tokenizer, tokens_per_frame=(args.size // 64) ** 2)
        self.collate = Collator(pad_token_id=tokenizer.pad_token_id)
        self.answer_ids = [self.encoder.text_ids(d)[0] for d in DIRECTIONS]
        self.frames = uniform_indices(args.clip_frames, 8)
        self.ideal_projection = torch.nn.Linear(4, 128)

    def sample(self) -> dict:
        a, direction = self.args, DIRECTIONS[self.rng.integers(4)]
        if a.features == "ideal":
            (dx, dy), start, t = _STEP[direction], self.rng.integers(0, a.size, size=2), np.asarray(self.frames)
            phase = 2 * np.pi * (np.round(start[:, None] + np.array([[dx], [dy]]) * a.step_px * t) % a.size) / a.size
            pixels = torch.tensor(np.concatenate([np.sin(phase), np.cos(phase)]).T, dtype=torch.float32)
        else:
            travel = a.step_px * a.clip_frames / a.size
            clip = moving_square_frames(direction, self.rng, a.clip_frames, a.size, a.square, travel)[self.frames]
            pixels = torch.from_numpy(clip).permute(0, 3, 1, 2).contiguous()
        chat = [Message("user", "<image>\n" + QUESTION), Message("assistant", direction)]
        return self.item(chat, pixels, answer=DIRECTIONS.index(direction))

    def still(self) -> dict:
        """A still frame asking where the square is: teaches the tower position, not motion."""
        x, y = self.rng.integers(0, self.args.size, size=2)
        pixels = torch.from_numpy(square_frame(x, y, self.args.size, self.args.square)).permute(2, 0, 1)[None]
        chat = [Message("user", "<image>\n" + WHERE_QUESTION), Message("assistant", where_answer(x, y, self.args.size))]
        return self.item(chat, pixels)

    def item(self, chat: list[Message], pixels: torch.Tensor, answer: int = -1) -> dict:
        """A collatable sample; ``answer`` is the direction's index (-1 for still frames)."""
        encoded = self.encoder.encode(chat, [len(pixels)])
        return {
            "input_ids": torch.tensor(encoded.input_ids), "labels": torch.tensor(encoded.labels),
            "pixel_values": pixels, "id": "", "timestamps": [], "skipped": [], "answer": answer,
        }  # fmt: skip

    def forward(self, items: list[dict]):
        batch = self.collate([{k: v for k, v in item.items() if k != "answer"} for item in items])
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "labels")}
        if self.args.features == "ideal":  # the collator scaled uint8-style values by 1/255
            features = self.ideal_projection(batch["pixel_values"] * 255)[:, None, :]
            inputs["mm_encoder_outputs"] = {"image": BaseModelOutputWithPooling(pooler_output=features)}
        else:
            inputs["pixel_values"] = batch["pixel_values"]
        return self.model(**inputs), batch["labels"]

    @torch.no_grad()
    def evaluate(self, test: list[dict]) -> dict[str, float]:
        """Accuracy overall, on the axis only, and on horizontal / vertical clips (each sign learns on its own)."""
        self.model.eval()
        out, labels = self.forward(test)
        position = (labels != -100).float().argmax(1) - 1  # the logits that predict the answer token
        predicted = out.logits[torch.arange(len(test)), position][:, self.answer_ids].argmax(1)
        truth = torch.tensor([item["answer"] for item in test])
        self.model.train()
        right, horizontal = (predicted == truth).float(), truth // 2 == 0
        return {
            "accuracy": right.mean().item(),
            "axis": (predicted // 2 == truth // 2).float().mean().item(),
            "left/right": right[horizontal].mean().item(),
            "up/down": right[~horizontal].mean().item(),
        }

    @torch.no_grad()
    def still_accuracy(self, stills: list[dict]) -> dict[str, float]:
        """Column and row accuracy on still frames (answer "c r", teacher-forced)."""
        self.model.eval()
        out, labels = self.forward(stills)
        self.model.train()
        first = (labels != -100).float().argmax(1)  # the column digit; the row digit is two tokens on
        rows = torch.arange(len(stills))
        right = [(out.logits[rows, first + k - 1].argmax(-1) == labels[rows, first + k]).float().mean().item() for k in (0, 2)]
        return {"column": right[0], "row": right[1]}


def train_phase(probe: Probe, train: list[dict], steps: int, batch_size: int, report) -> None:
    """AdamW with warmup + cosine over ``steps`` batches drawn from ``train`` (one Trainer run of the demo)."""
    args = probe.args
    tower = list(probe.model.model.vision_tower.parameters())
    rest = [p for p in probe.model.parameters() if all(p is not t for t in tower)] + list(probe.ideal_projection.parameters())
    tower_lr = args.lr if args.tower_lr is None else args.tower_lr
    optimizer = torch.optim.AdamW([{"params": rest}, {"params": tower, "lr": tower_lr}], lr=args.lr, weight_decay=0.0)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    order, losses, started = np.random.default_rng(args.seed + 1), [], time.perf_counter()
    probe.model.train()
    for step in range(1, steps + 1):
        out, _ = probe.forward([train[i] for i in order.integers(0, len(train), batch_size)])
        out.loss.backward()
        if args.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(tower + rest, args.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad()
        schedule.step()
        losses.append(out.loss.item())
        if step % args.eval_every == 0 or step == steps:
            scores = "  ".join(f"{name} {value:.3f}" for name, value in report().items())
            print(f"step {step:5d}  train loss {np.mean(losses[-args.eval_every:]):.3f}  {scores}  "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip


def main() -> None:
    args = parse_args()
    print(vars(args))
    probe = Probe(args)
    clips = [probe.sample() for _ in range(args.train_clips)]
    images = [probe.still() for _ in range(args.train_images)]
    test = [probe.sample() for _ in range(200)]
    stills = [probe.still() for _ in range(200)]
    if args.still_steps:
        print("phase 1: still frames only")
        train_phase(probe, images, args.still_steps, args.still_batch_size, lambda: probe.still_accuracy(stills))
        print("phase 2: clips" + (" and still frames" if args.mix_images else ""))
    if not args.steps:
        return
    train_phase(probe, clips + (images if args.mix_images else []), args.steps, args.batch_size,
                lambda: probe.evaluate(test) | (probe.still_accuracy(stills) if images else {}))  # fmt: skip


if __name__ == "__main__":
    main()
