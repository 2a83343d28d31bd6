"""GRPO's data: each training item is a prompt (the record without its answer) with its media decoded once,
plus the record itself for the reward rules. The same records as SFT: the last assistant message is the
reference answer the rules check, every earlier message is the prompt.

Skip rules, caches and the visual budget are ``ConversationDataset``'s (this subclasses it); a prompt that
leaves no room for one answer token under ``model_max_length`` is skipped as ``too_long``.
"""

from __future__ import annotations

import torch

from ..data.chat import SampleTooLong
from ..data.collate import Collator
from ..data.dataset import ConversationDataset, load_sample_media
from ..data.records import Sample, iter_records
from ..errors import ConfigError
from ..infer.benchmarks import class_specs


def split_answer(sample: Sample) -> tuple[list, str]:
    """(prompt messages, reference answer): the reference is the sample's last message, an assistant turn."""
    if not sample.messages or sample.messages[-1].role != "assistant":
        raise ConfigError(f"{sample.where}: --method grpo needs the reference answer as the last (assistant) message")
    return list(sample.messages[:-1]), sample.messages[-1].content


def reward_records(samples: list[Sample]) -> dict[tuple[str, int], dict]:
    """What reward functions get per sample, by (source, index): the raw record plus ``id``, ``answer``,
    ``prompt`` (the last user message) and, for records with a ``class``, ``class_answers`` / ``class_answer``."""
    raw: dict[tuple[str, int], dict] = {}
    for source in sorted({s.source for s in samples if s.source}):
        for index, record in iter_records(source):
            if isinstance(record, dict):
                raw[(source, index)] = record
    classes = class_specs(samples)
    records = {}
    for s in samples:
        prompt, answer = split_answer(s)
        record = {**raw.get((s.source, s.index), {}), "id": s.id, "answer": answer}
        record["prompt"] = next((m.content for m in reversed(prompt) if m.role == "user"), "")
        if s.id in classes:
            spec = classes[s.id]
            record["class_answers"], record["class_answer"] = spec.options, spec.options[spec.answer]
        records[(s.source, s.index)] = record
    return records


class PromptDataset(ConversationDataset):
    """Prompts for GRPO: ids ending with the assistant header, frames (or stored tower outputs), the record."""

    def __init__(self, samples: list[Sample], *args, **kwargs):
        super().__init__(samples, *args, **kwargs)
        self.records = reward_records(samples)

    def build(self, sample: Sample) -> dict:
        prompt, _ = split_answer(sample)
        loaded, messages = load_sample_media(prompt, sample.media, self.video, self.frame_cache, self.feature_cache)
        frames = [m.num_frames for m in loaded]
        encoded = self.encoder.encode(messages, frames, add_generation_prompt=True)
        if self.max_length is not None and len(encoded.input_ids) >= self.max_length:
            raise SampleTooLong(
                f"the prompt's {len(encoded.input_ids)} tokens (image tokens included) leave no room for an answer under "
                f"model_max_length={self.max_length}; use fewer frames or a larger model_max_length"
            )
        item = {
            "input_ids": torch.tensor(encoded.input_ids, dtype=torch.long),
            "pixel_values": torch.cat([m.frames for m in loaded]) if loaded and self.feature_cache is None else None,
            "num_frames": sum(frames),
            "record": self.records[(sample.source, sample.index)],
            "timestamps": [m.timestamps for m in loaded],
            "truncated": [],
        }
        if self.feature_cache is not None:
            item["media"] = loaded
        return item


class PromptCollator(Collator):
    """Batches of prompts (kept unpadded: each is generated from on its own) and their frames; items with
    labels (the validation set, scored by the SFT loss on the reference answers) go through ``Collator``."""

    def __call__(self, items: list[dict]) -> dict:
        if "record" not in items[0]:
            return super().__call__(items)
        batch = super().__call__(items)
        del batch["input_ids"], batch["attention_mask"]  # padded rows are built after generation
        batch["prompts"] = [it["input_ids"] for it in items]
        batch["num_frames"] = [it["num_frames"] for it in items]
        batch["records"] = [it["record"] for it in items]
        batch["timestamps"] = [it["timestamps"] for it in items]
        return batch
