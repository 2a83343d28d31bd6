"""Batches: pad ids/labels/attention mask (or pack the samples into one row); concatenate every frame
of the batch into ``pixel_values``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..constants import IGNORE_INDEX
from ..media.transforms import to_model_pixels
from .feature_cache import tower_input


@dataclass
class Collator:
    """Collate ``ConversationDataset`` items for ``FastVlmForConditionalGeneration``.

    ``pixel_values`` is (sum of T over the batch, 3, S, S) in [0, 1]: videos give T=N frames, images
    T=1, text-only samples none (no key at all when the whole batch is text). Frames arrive as
    uint8 and are scaled here, the last moment on the host. Items read with a feature cache give a
    ``TowerInput`` instead (stored tower outputs and decoded frames, in the batch's frame order).

    ``packing=True`` (padding-free): the samples are laid end to end in one row with ``position_ids``
    restarting at 0 for each, and no attention mask, so transformers builds a block-causal mask
    (sdpa / eager / flex) or varlen attention (flash) and no token sees another sample. Each
    sample's first label is ignored, so no token is trained to predict the next sample's start.

    Items ``{"excluded": Skip}`` (evaluation samples that could not be used) are left out of the batch
    and listed under ``excluded``; a batch of only those is ``{"excluded": [...], "num_samples": 0}``.
    """

    pad_token_id: int
    padding_side: str = "right"  # "left" for batched generation
    packing: bool = False

    def __call__(self, items: list[dict]) -> dict:
        excluded = [it["excluded"] for it in items if "excluded" in it]  # evaluation: unusable, never replaced
        items = [it for it in items if "excluded" not in it]
        if not items:  # every sample of this evaluation batch was unusable
            return {"excluded": excluded, "num_samples": 0}
        batch = self._pack(items) if self.packing else self._pad_rows(items)
        return self._add_media_and_notes(batch, items, excluded)

    def _add_media_and_notes(self, batch: dict, items: list[dict], excluded: list | None = None) -> dict:
        """Every item's frames (or feature-cache media) once, in item order, and the skip/truncation notes."""
        frames = [it["pixel_values"] for it in items if it.get("pixel_values") is not None]
        media = [m for it in items for m in it.get("media", ())]  # read with a feature cache
        if media:
            batch["pixel_values"] = tower_input(media, to_model_pixels)
        elif frames:
            batch["pixel_values"] = to_model_pixels(torch.cat(frames))
        batch["skipped"] = [skip for it in items for skip in it.get("skipped", [])]
        if excluded:
            batch["excluded"] = excluded
        if any("truncated" in it for it in items):  # training items only: samples cut to model_max_length
            batch["truncated"] = [note for it in items for note in it["truncated"]]
        return batch

    def _pad_rows(self, items: list[dict]) -> dict:
        length = max(len(it["input_ids"]) for it in items)
        batch = {
            "input_ids": self._pad([it["input_ids"] for it in items], length, self.pad_token_id),
            "attention_mask": self._pad([torch.ones_like(it["input_ids"]) for it in items], length, 0),
        }
        if all("labels" in it for it in items):
            batch["labels"] = self._pad([it["labels"] for it in items], length, IGNORE_INDEX)
        return batch

    @staticmethod
    def _pack(items: list[dict]) -> dict:
        batch = {
            "input_ids": torch.cat([it["input_ids"] for it in items])[None],
            "position_ids": torch.cat([torch.arange(len(it["input_ids"])) for it in items])[None],
            "num_samples": len(items),
        }
        if all("labels" in it for it in items):
            labels = [it["labels"].clone() for it in items]
            for row in labels:
                row[0] = IGNORE_INDEX  # never a target: it would be predicted from the previous sample
            batch["labels"] = torch.cat(labels)[None]
        return batch

    def _pad(self, rows: list[torch.Tensor], length: int, value: int) -> torch.Tensor:
        out = torch.full((len(rows), length), value, dtype=rows[0].dtype)
        for i, row in enumerate(rows):
            if self.padding_side == "right":
                out[i, : len(row)] = row
            else:
                out[i, length - len(row) :] = row
        return out
