"""Mixed batches of videos, images and text: shapes, padding, frame order."""

import torch

from fastvlm_video import flatten_frames
from fastvlm_video.constants import IGNORE_INDEX
from fastvlm_video.data.collate import Collator


def item(n_tokens, frames=None, value=1):
    ids = torch.arange(1, n_tokens + 1)
    pix = None if frames is None else torch.full((frames, 3, 8, 8), value, dtype=torch.uint8)
    return {"input_ids": ids, "labels": ids.clone(), "pixel_values": pix, "skipped": []}


def test_mixed_batch_shapes_and_frame_order():
    batch = Collator(pad_token_id=0)([item(5, frames=4, value=10), item(3), item(7, frames=1, value=255)])
    assert batch["input_ids"].shape == (3, 7) and batch["labels"].shape == (3, 7)
    assert batch["pixel_values"].shape == (5, 3, 8, 8) and batch["pixel_values"].dtype == torch.float32
    assert torch.allclose(batch["pixel_values"][:4], torch.full((4, 3, 8, 8), 10 / 255))  # video first, then image
    assert torch.all(batch["pixel_values"][4] == 1.0)
    assert batch["attention_mask"].sum(1).tolist() == [5, 3, 7]
    assert batch["labels"][1, 3:].tolist() == [IGNORE_INDEX] * 4 and batch["input_ids"][1, 3:].tolist() == [0] * 4


def test_text_only_batch_has_no_pixels_and_left_padding():
    batch = Collator(pad_token_id=9, padding_side="left")([item(2), item(4)])
    assert "pixel_values" not in batch
    assert batch["input_ids"][0].tolist() == [9, 9, 1, 2] and batch["attention_mask"][0].tolist() == [0, 0, 1, 1]


def test_flatten_frames_accepts_seed_5d_input():
    x = torch.arange(2 * 3 * 1 * 2 * 2).reshape(2, 3, 1, 2, 2)
    flat = flatten_frames(x)
    assert flat.shape == (6, 1, 2, 2) and torch.equal(flat[3], x[1, 0])
    assert flatten_frames(flat) is flat
