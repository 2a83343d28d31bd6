"""--packing: samples end to end in one row, positions restarting per sample, no attention mask.
The loss equals the padded batch's (transformers builds a block-causal mask from the positions)."""

from __future__ import annotations

import pytest
import torch

from fastvlm_video.constants import IGNORE_INDEX
from fastvlm_video.data.chat import ChatEncoder
from fastvlm_video.data.collate import Collator
from fastvlm_video.data.dataset import ConversationDataset
from fastvlm_video.data.records import MediaRef, Message, Sample
from fastvlm_video.model.tiny import build_tiny_model
from fastvlm_video.video_config import VideoConfig


@pytest.fixture(scope="module")
def items(tokenizer, media_folder):
    """A video, a text-only sample and an image, of different lengths."""
    video = VideoConfig(num_frames=3, image_size=64)
    ask = [Message("user", "<image>\nWhich way does it move?"), Message("assistant", "left, then it stops")]
    samples = [
        Sample("v", ask, [MediaRef(str(media_folder / "left.mp4"), "video")]),
        Sample("t", [Message("user", "Say hi"), Message("assistant", "hi"), Message("user", "Again"), Message("assistant", "hi hi")]),
        Sample("i", ask, [MediaRef(str(media_folder / "still.png"), "image")]),
    ]
    dataset = ConversationDataset(samples, ChatEncoder(tokenizer, video.tokens_per_frame), video)
    return [dataset[i] for i in range(len(samples))]


def test_packed_row_layout(items):
    packed = Collator(pad_token_id=0, packing=True)(items)
    lengths = [len(it["input_ids"]) for it in items]
    assert packed["input_ids"].shape == (1, sum(lengths)) and "attention_mask" not in packed
    assert packed["num_samples"] == 3
    assert packed["position_ids"][0].tolist() == [p for n in lengths for p in range(n)]
    assert torch.equal(packed["input_ids"][0], torch.cat([it["input_ids"] for it in items]))
    starts = [sum(lengths[:k]) for k in range(3)]
    expected = torch.cat([it["labels"] for it in items])
    expected[starts] = IGNORE_INDEX
    assert torch.equal(packed["labels"][0], expected)
    padded = Collator(pad_token_id=0)(items)
    assert torch.equal(packed["pixel_values"], padded["pixel_values"])  # frames in sample order


@pytest.mark.parametrize("attention", ["sdpa", "eager"])  # flex_attention passes too (checked once; 70 s of compiling)
def test_packed_loss_equals_padded_loss(tokenizer, items, attention):
    model = build_tiny_model(tokenizer, seed=1)
    model.model.language_model.set_attn_implementation(attention)  # the LLM (the timm tower has no attention choice)
    model.train()  # BatchNorm sees the same frames either way
    padded = Collator(pad_token_id=tokenizer.pad_token_id)(items)
    packed = Collator(pad_token_id=tokenizer.pad_token_id, packing=True)(items)
    for batch in (padded, packed):
        batch.pop("skipped"), batch.pop("num_samples", None)
    with torch.no_grad():
        loss_padded = model(**padded, use_cache=False).loss
        loss_packed = model(**packed, use_cache=False).loss
        # Control: one running position sequence lets samples attend to each other, and the loss moves.
        leaky = {**packed, "position_ids": torch.arange(packed["input_ids"].shape[1])[None]}
        loss_leaky = model(**leaky, use_cache=False).loss
    assert abs(loss_packed - loss_padded) <= 1e-5 * abs(loss_padded)
    assert abs(loss_leaky - loss_padded) > 1e-3 * abs(loss_padded)
