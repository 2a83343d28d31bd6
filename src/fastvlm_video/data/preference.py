"""Preference pairs (``train --method dpo``): one prompt's media decoded once, two answers labelled as SFT labels them.

An item holds the chosen and the rejected sequence (prompt + answer) and the prompt's frames once. Only
the final answer and its ``<|im_end|>`` are labelled (``ChatEncoder``'s labels with the prompt masked:
earlier assistant turns of a multi-turn prompt are context here, not trained). The collator lays a
batch of B pairs out as 2B rows, B chosen then B rejected, and the frames of the B prompts once:
the trainer runs the vision tower once per pair and gives its output to both rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from ..constants import IGNORE_INDEX
from ..errors import ConfigError
from .chat import ChatEncoder, EncodedChat, SampleTooLong
from .collate import Collator
from .dataset import ConversationDataset, load_sample_media
from .records import Message, Sample

PAIR_KEYS = ("chosen", "rejected")


def require_pairs(samples: Sequence[Sample], flag: str = "--data_path") -> None:
    """Every sample must carry a rejected answer; one line naming the first that does not (before the model loads)."""
    missing = [s for s in samples if s.rejected is None]
    if missing:
        raise ConfigError(
            f"{flag}: {len(missing)} of {len(samples)} records have no 'chosen'/'rejected' answers (first: {missing[0].where}); "
            "--method dpo trains on preference pairs: add both keys (docs/post_training.md) or train with --method sft"
        )


def length_variants(samples: Sequence[Sample]) -> list[Sample]:
    """Each pair as two samples (chosen, rejected answer) for length planning: the longer answer sets the need."""
    out: list[Sample] = []
    for s in samples:
        out.append(s)
        if s.rejected is not None:
            out.append(replace(s, messages=[*s.messages[:-1], Message("assistant", s.rejected)], rejected=None))
    return out


def encode_answer(encoder: ChatEncoder, prompt: list[Message], answer: str, frames: Sequence[int], max_length: int | None) -> EncodedChat:
    """``prompt`` + the assistant ``answer``, labelled only on the answer and its ``<|im_end|>``."""
    encoded = encoder.encode([*prompt, Message("assistant", answer)], frames, max_length=max_length)
    prompt_length = len(encoder.encode(prompt, frames).input_ids)  # per-message tokenization: a prefix of the above
    labels = [IGNORE_INDEX] * min(prompt_length, len(encoded.labels)) + encoded.labels[prompt_length:]
    if all(label == IGNORE_INDEX for label in labels):
        raise SampleTooLong(f"{len(encoded.input_ids)} tokens: no answer token fits model_max_length={max_length}; "
                            "use fewer frames or a larger model_max_length")  # fmt: skip
    return EncodedChat(encoded.input_ids, labels, encoded.truncated_from)


class PreferenceDataset(ConversationDataset):
    """Pairs of answers to one prompt; skip rules as ``ConversationDataset`` (a broken medium skips the pair)."""

    def __init__(self, samples: list[Sample], *args, **kwargs):
        require_pairs(samples)
        super().__init__(samples, *args, **kwargs)

    def build(self, sample: Sample) -> dict:
        loaded, messages = load_sample_media(sample.messages, sample.media, self.video, self.frame_cache, self.feature_cache)
        frames = [m.num_frames for m in loaded]
        prompt, chosen = messages[:-1], messages[-1].content
        item = {"id": sample.id, "key": sample.where, "timestamps": [m.timestamps for m in loaded], "truncated": []}
        for key, answer in zip(PAIR_KEYS, (chosen, sample.rejected)):
            encoded = encode_answer(self.encoder, prompt, answer, frames, self.max_length)
            item[f"{key}_input_ids"] = torch.tensor(encoded.input_ids, dtype=torch.long)
            item[f"{key}_labels"] = torch.tensor(encoded.labels, dtype=torch.long)
            if encoded.truncated:
                item["truncated"].append(self._truncation(sample, encoded.truncated_from))
        item["pixel_values"] = torch.cat([m.frames for m in loaded]) if loaded and self.feature_cache is None else None
        if self.feature_cache is not None:
            item["media"] = loaded
        return item


@dataclass
class PreferenceCollator(Collator):
    """B pairs -> 2B padded rows (chosen rows first, then rejected, same order), each prompt's frames once."""

    def __call__(self, items: list[dict]) -> dict:
        rows = [{"input_ids": it[f"{key}_input_ids"], "labels": it[f"{key}_labels"]} for key in PAIR_KEYS for it in items]
        batch = self._pad_rows(rows)
        batch["num_samples"] = len(items)
        batch["pair_keys"] = [it["key"] for it in items]  # the reference table's keys (--reference precompute)
        return self._add_media_and_notes(batch, items)

