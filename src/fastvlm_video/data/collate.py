"""Batches: pad ids/labels/attention mask; concatenate every frame of the batch into ``pixel_values``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..constants import IGNORE_INDEX
from ..media.transforms import to_model_pixels


@dataclass
class Collator:
    """Collate ``ConversationDataset`` items for ``FastVlmForConditionalGeneration``.

    ``pixel_values`` is (sum of T over the batch, 3, S, S) in [0, 1]: videos give T=N frames, images
    T=1, text-only samples none (no key at all when the whole batch is text). Frames arrive as
    uint8 and are scaled here, the last moment on the host.
    """

    pad_token_id: int
    padding_side: str = "right"  # "left" for batched generation

    def __call__(self, items: list[dict]) -> dict:
        length = max(len(it["input_ids"]) for it in items)
        batch = {
            "input_ids": self._pad([it["input_ids"] for it in items], length, self.pad_token_id),
            "attention_mask": self._pad([torch.ones_like(it["input_ids"]) for it in items], length, 0),
        }
        if all("labels" in it for it in items):
            batch["labels"] = self._pad([it["labels"] for it in items], length, IGNORE_INDEX)
        frames = [it["pixel_values"] for it in items if it.get("pixel_values") is not None]
        if frames:
            batch["pixel_values"] = to_model_pixels(torch.cat(frames))
        batch["skipped"] = [skip for it in items for skip in it.get("skipped", [])]
        if any("truncated" in it for it in items):  # training items only: samples cut to model_max_length
            batch["truncated"] = [note for it in items for note in it["truncated"]]
        return batch

    def _pad(self, rows: list[torch.Tensor], length: int, value: int) -> torch.Tensor:
        out = torch.full((len(rows), length), value, dtype=rows[0].dtype)
        for i, row in enumerate(rows):
            if self.padding_side == "right":
                out[i, : len(row)] = row
            else:
                out[i, length - len(row) :] = row
        return out
