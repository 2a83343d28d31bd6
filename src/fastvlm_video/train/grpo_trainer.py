"""``VideoTrainer`` for GRPO: each training step samples G answers per prompt, scores them with the reward
rules, and takes the clipped-ratio step with a KL pull to the reference (``grpo_loss``).

Per step, for a batch of B prompts:
1. the frames of each prompt go through the vision tower and projector **once** (a feature-cache hit skips
   the tower); the same features feed its G generations (detached) and the loss forward (with gradients);
2. generation: plain ``generate`` on G copies of each prompt, consecutive prompts of one length in one
   batch (no padding), sampling at ``--temperature`` (no
   top-k / top-p, so the log-probabilities below are those of the sampling distribution), under a seed
   derived from (``--seed``, step, micro-batch, rank): resuming a run samples exactly what it would have;
3. rewards per answer and function, advantages normalised within each group of G;
4. one forward of the B*G rows (prompt + answer, right-padded) gives the answers' token log-probabilities;
   one gradient step per generation, so the "old" policy is the current one (ratio 1, as TRL with
   ``num_iterations=1``); with ``--beta`` > 0 the frozen reference scores the same rows.

Logged every ``--logging_steps`` (and summarised by ``grpo_summary``): reward mean and the mean within-group
std, per reward function mean/std, ``frac_reward_zero_std`` (groups without learning signal), KL, clip
fraction, completion length and the share cut at ``--max_completion_length``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from .grpo_loss import group_advantages, grpo_loss, token_logps
from .rewards import Reward, score
from .trainer import VideoTrainer

logger = logging.getLogger(__name__)

METRIC_PREFIXES = ("reward", "rewards/", "frac_reward_zero_std", "kl", "clip_ratio", "completions/")


@dataclass
class GRPOSettings:
    num_generations: int = 4
    temperature: float = 1.0
    max_completion_length: int = 32
    epsilon: float = 0.2
    beta: float = 0.0
    loss_type: str = "grpo"
    scale_rewards: str = "group"


def generation_seed(*parts: int) -> int:
    """A 63-bit seed from integers (stable across processes and Python runs, unlike ``hash``)."""
    digest = hashlib.blake2b(",".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


@contextlib.contextmanager
def seeded(seed: int, device: torch.device):
    """Run a block under ``seed`` and restore every generator after (training's RNG stream is untouched)."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def frame_index(num_frames: Sequence[int], group_size: int) -> torch.Tensor:
    """Rows of the batch's frame features for B*G sequences: each prompt's frames, G times, in row order."""
    starts = torch.tensor([0, *num_frames]).cumsum(0)
    return torch.cat([torch.arange(starts[b], starts[b] + n) for b, n in enumerate(num_frames) for _ in range(group_size)] or [torch.zeros(0, dtype=torch.long)])


def completion_mask(completions: torch.Tensor, eos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask of each answer's tokens up to and including its first ``eos_id``, whether it ended)."""
    is_eos = completions == eos_id
    ended = is_eos.any(dim=1)
    first = torch.where(ended, is_eos.int().argmax(dim=1), torch.full_like(ended, completions.shape[1], dtype=torch.long))
    positions = torch.arange(completions.shape[1], device=completions.device)[None]
    return positions <= first[:, None], ended


def equal_length_runs(prompts: Sequence[torch.Tensor]) -> list[list[int]]:
    """Indices of ``prompts`` in runs of consecutive prompts of one length (each run is generated as one batch)."""
    runs: list[list[int]] = []
    for i, ids in enumerate(prompts):
        if runs and len(prompts[runs[-1][-1]]) == len(ids):
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


class GRPOTrainer(VideoTrainer):
    def __init__(self, *args, grpo: GRPOSettings, rewards: list[Reward], tokenizer, eos_id: int, ref_model=None,
                 tower_trains: bool = False, **kwargs):  # fmt: skip
        super().__init__(*args, **kwargs)
        self.grpo, self.rewards, self.tokenizer, self.eos_id = grpo, rewards, tokenizer, eos_id
        self.ref_model, self.tower_trains = ref_model, tower_trains
        if grpo.beta != 0.0 and ref_model is None:
            raise ValueError("beta != 0 needs a reference model")
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self._micro = (-1, 0)  # (global step, micro-batch index within it): the generation seed
        # Never sampled (an answer holding <image> would ask for image features it has none of); the loss's
        # log-probabilities leave them out too, so they are those of the distribution sampled from.
        image_token = getattr(getattr(self.model, "config", None), "image_token_id", None)
        self.suppressed = [image_token] if image_token is not None else []

    # -- the step --

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if "prompts" not in inputs:  # validation items: the SFT loss on the reference answers
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        skipped, truncated = inputs.pop("skipped", []), inputs.pop("truncated", [])
        self.skip_counter.update(len(inputs["prompts"]), skipped, truncated)
        loss = self.grpo_step(model, inputs)
        return (loss, None) if return_outputs else loss

    def grpo_step(self, model, inputs: dict) -> torch.Tensor:
        g = self.grpo
        prompts, num_frames = inputs["prompts"], inputs["num_frames"]
        pixel_values = inputs.get("pixel_values")
        image = None
        if pixel_values is not None:
            if isinstance(pixel_values, torch.Tensor):
                pixel_values = pixel_values.to(model.dtype)
            image = self.accelerator.unwrap_model(model).get_image_features(pixel_values=pixel_values, return_dict=True)  # once per prompt
        completions = self.generate(self.accelerator.unwrap_model(model), prompts, num_frames, image)
        texts = [t.strip() for t in self.tokenizer.batch_decode(completions, skip_special_tokens=True)]
        records = [r for r in inputs["records"] for _ in range(g.num_generations)]
        times = [t for t in inputs["timestamps"] for _ in range(g.num_generations)]
        total, table = score(self.rewards, records, texts, times)
        advantages, zero_std = group_advantages(total, g.num_generations, g.scale_rewards)

        ids, attention, starts, mask, ended = self.rows(prompts, completions)
        kwargs = {}
        if image is not None:
            rows = frame_index(num_frames, g.num_generations).to(image.pooler_output.device)
            kwargs["mm_encoder_outputs"] = {"image": BaseModelOutputWithPooling(pooler_output=image.pooler_output[rows])}
        logits = model(input_ids=ids, attention_mask=attention, **kwargs).logits
        logps = self.answer_logps(logits, ids, starts, mask.shape[1])
        ref_logps = self.reference_logps(ids, attention, starts, mask.shape[1], image, pixel_values, num_frames) if g.beta else None
        terms = grpo_loss(logps, logps.detach(), advantages.to(logps.device), mask.to(logps.device), g.epsilon, g.beta, ref_logps, g.loss_type)
        self.record(total, table, zero_std, mask, ended, terms)
        return terms.loss

    @torch.no_grad()
    def generate(self, model, prompts: list[torch.Tensor], num_frames: list[int], image) -> torch.Tensor:
        """G sampled answers per prompt, (B*G, T) right-padded with the pad id after each answer's end."""
        g = self.grpo
        step = self.state.global_step
        self._micro = (step, self._micro[1] + 1 if self._micro[0] == step else 0)
        seed = generation_seed(self.args.seed, step, self._micro[1], self.args.process_index)
        features = image.pooler_output.detach() if image is not None else None
        blocks = list(features.split(list(num_frames))) if features is not None else [None] * len(prompts)
        was_training = model.training
        model.eval()
        outputs = []
        try:
            with seeded(seed, self.args.device):
                for group in equal_length_runs(prompts):  # one generate per run of prompts of one length: no padding
                    rows = torch.cat([prompts[b][None].repeat(g.num_generations, 1) for b in group])
                    kwargs = {}
                    frames = [blocks[b].repeat(g.num_generations, 1, 1) for b in group if num_frames[b]]
                    if frames:
                        kwargs["mm_encoder_outputs"] = {"image": BaseModelOutputWithPooling(pooler_output=torch.cat(frames))}
                    length = rows.shape[1]
                    room = max(1, int(self.args.model_max_length) - length)  # the prompt fits (checked in the dataset)
                    out = model.generate(
                        input_ids=rows, attention_mask=torch.ones_like(rows), max_new_tokens=min(g.max_completion_length, room),
                        do_sample=True, temperature=g.temperature, top_k=0, top_p=1.0, use_cache=True,
                        pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.eos_id, suppress_tokens=self.suppressed,
                        **kwargs,
                    )  # fmt: skip
                    outputs.append(out[:, length:])
        finally:
            model.train(was_training)
        width = max(o.shape[1] for o in outputs)
        pad = self.tokenizer.pad_token_id
        return torch.cat([torch.nn.functional.pad(o, (0, width - o.shape[1]), value=pad) for o in outputs])

    def rows(self, prompts: list[torch.Tensor], completions: torch.Tensor):
        """Right-padded prompt+answer rows, their attention mask, each answer's start, the answer mask, ended."""
        g = self.grpo.num_generations
        mask, ended = completion_mask(completions, self.eos_id)
        lengths = mask.sum(dim=1)
        starts = [len(prompts[r // g]) for r in range(completions.shape[0])]
        width = max(s + int(n) for s, n in zip(starts, lengths))
        device = completions.device
        ids = torch.full((completions.shape[0], width), self.tokenizer.pad_token_id, dtype=torch.long, device=device)
        attention = torch.zeros_like(ids)
        for r, (s, n) in enumerate(zip(starts, lengths.tolist())):
            ids[r, :s], ids[r, s : s + n] = prompts[r // g], completions[r, :n]
            attention[r, : s + n] = 1
        return ids, attention, starts, mask[:, : max(1, int(lengths.max()))], ended

    def answer_logps(self, logits: torch.Tensor, ids: torch.Tensor, starts: list[int], width: int) -> torch.Tensor:
        """(N, width) log-probabilities of each answer's tokens (positions past an answer hold junk, masked later)."""
        positions = torch.tensor(starts, device=ids.device)[:, None] + torch.arange(width, device=ids.device)[None]
        positions = positions.clamp(max=ids.shape[1] - 1)
        rows = torch.arange(ids.shape[0], device=ids.device)[:, None]
        return token_logps(logits[rows, positions - 1], ids[rows, positions], self.grpo.temperature, getattr(self, "suppressed", []))

    @torch.no_grad()
    def reference_logps(self, ids, attention, starts, width, image, pixel_values, num_frames) -> torch.Tensor:
        """The frozen reference's log-probabilities of the same answers. A frozen tower is shared: its output
        (stored or computed this step) goes through the reference's own projector."""
        ref = self.ref_model
        kwargs = {}
        if image is not None:
            if self.tower_trains:  # the reference keeps the starting tower
                ref_image = ref.get_image_features(pixel_values=pixel_values, return_dict=True)
            else:
                ref_image = BaseModelOutputWithPooling(
                    pooler_output=ref.model.multi_modal_projector(image.last_hidden_state.detach().flatten(2).permute(0, 2, 1))
                )
            rows = frame_index(num_frames, self.grpo.num_generations).to(ref_image.pooler_output.device)
            kwargs["mm_encoder_outputs"] = {"image": BaseModelOutputWithPooling(pooler_output=ref_image.pooler_output[rows])}
        logits = ref(input_ids=ids, attention_mask=attention, **kwargs).logits
        return self.answer_logps(logits, ids, starts, width)

    # -- logging --

    def record(self, total, table, zero_std, mask, ended, terms) -> None:
        g = self.grpo.num_generations
        m = self._metrics
        m["reward"].append(float(total.mean()))
        m["reward_std"].append(float(total.view(-1, g).std(dim=1).mean()) if g > 1 else 0.0)
        for j, reward in enumerate(self.rewards):
            column = table[:, j]
            valid = column[~torch.isnan(column)]
            if len(valid):
                m[f"rewards/{reward.name}/mean"].append(float(valid.mean()))
                m[f"rewards/{reward.name}/std"].append(float(valid.std()) if len(valid) > 1 else 0.0)
        m["frac_reward_zero_std"].append(float(zero_std.float().mean()))
        m["kl"].append(terms.kl)
        m["clip_ratio"].append(terms.clip_fraction)
        m["completions/mean_length"].append(float(mask.sum(dim=1).float().mean()))
        m["completions/clipped_ratio"].append(float((~ended).float().mean()))

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self._metrics and "loss" in logs:  # a training log: add the window's averages
            logs = {**logs, **{k: sum(v) / len(v) for k, v in self._metrics.items()}}
            self._metrics.clear()
        super().log(logs, start_time)


def grpo_summary(log_history: list[dict]) -> dict:
    """Per GRPO metric over a run's training logs (resumed runs included): the mean, the first and the last value."""
    rows = [row for row in log_history if "reward" in row and "loss" in row]
    keys = sorted({k for row in rows for k in row if k.startswith(METRIC_PREFIXES)})
    summary = {}
    for key in keys:
        values = [row[key] for row in rows if key in row and not math.isnan(row[key])]
        if values:
            summary[key] = {"mean": round(sum(values) / len(values), 4), "first": round(values[0], 4), "last": round(values[-1], 4)}
    return summary
