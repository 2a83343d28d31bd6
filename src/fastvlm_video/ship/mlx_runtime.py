"""Run an exported model with mlx-vlm (Apple silicon; ``mlx[cpu]`` on Linux), right for videos.

mlx-vlm 0.7.10 runs FastVLM in Apple's layout, but two things in its path differ from ours:

1. **Multi-image prompts** (a video = N frames = N images): ``Model.prepare_inputs_for_multimodal``
   removes the image markers (-200) from the ids, embeds the rest, then splits the embeddings at the
   markers' *original* positions. After the first image those positions are off by the number of
   markers already removed, so text after the 2nd image lands in the wrong place (logits off by up to
   0.31 here). The fix is to split at ``p - i`` for the i-th marker at position p. ``patch_model`` puts
   the corrected ``merge_image_features`` in place of that method (upstream bug, see docs/shipping.md).
2. **Pixels**: its image processor rescales only when ``image.max() > 1``, so a near-black frame (all
   values <= 1) is not divided by 255 — brightened ~255x; and it resizes after padding. ``prompt_inputs``
   therefore takes frames from our own data path (``load_sample_media`` + ``to_model_pixels``): the pixels are
   exactly the ones PyTorch predict uses.

mlx-vlm also hard-codes the FastViTHD shape (``VisionConfig.layers`` / ``embed_dims`` are class
attributes, not config fields); ``tower_shape`` sets them from the exported config while a checkpoint
with another shape (our tiny test models) loads, and puts them back after.
"""

from __future__ import annotations

import json
import logging
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..constants import IMAGE_TOKEN
from ..data.chat import ChatEncoder
from ..data.dataset import load_sample_media
from ..data.records import MediaRef, Message
from ..media.transforms import to_model_pixels
from ..media.kinds import media_type
from ..model.convert import original_tokenizer, original_video_config
from ..video_config import VideoConfig

logger = logging.getLogger(__name__)

IMAGE_INDEX = -200  # how Apple's code (and mlx-vlm) marks an image in the ids
TOWER_CONFIG_KEY = "fastvlm_video_tower"  # written by ship.apple: the tower's layers / embed_dims


def require_mlx():
    """Import mlx-vlm, or raise one clear error saying how to install it."""
    try:
        import mlx.core as mx  # noqa: F401
        import mlx_vlm
    except ImportError as exc:
        from ..errors import ConfigError

        raise ConfigError(
            f"MLX is not installed ({exc}): pip install 'fastvlm-video[mlx]' (on a Mac: pip install mlx mlx-vlm==0.7.10)"
        ) from exc
    return mlx_vlm


@contextmanager
def tower_shape(model_dir: str | Path) -> Iterator[None]:
    """Let mlx-vlm build the tower the checkpoint holds (its shape is fixed in class attributes)."""
    from mlx_vlm.models.fastvlm.config import VisionConfig

    config = json.loads((Path(model_dir) / "config.json").read_text())
    shape = config.get(TOWER_CONFIG_KEY) or {}
    saved = {k: getattr(VisionConfig, k) for k in shape}
    try:
        for key, value in shape.items():
            setattr(VisionConfig, key, list(value))
        yield
    finally:
        for key, value in saved.items():
            setattr(VisionConfig, key, value)


def merge_image_features(self, image_features, input_ids, mask=None):
    """mlx-vlm's ``prepare_inputs_for_multimodal`` with the split points corrected (``p - i``).

    Each row's text embeddings are split where its image markers were (minus the markers removed
    before them) and the images' features are put back in between; rows are padded like upstream.
    """
    import mlx.core as mx

    embed = self.language_model.model.embed_tokens
    rows, image = [], 0
    for b, ids in enumerate(np.array(input_ids)):
        if mask is not None:
            keep = np.array(mask[b]).astype(bool)
            ids = ids[keep]
        positions = np.flatnonzero(ids == IMAGE_INDEX)
        pieces = mx.split(
            embed(mx.array(ids[ids != IMAGE_INDEX])), [int(p) - i for i, p in enumerate(positions)]
        )
        parts = []
        for i, piece in enumerate(pieces):
            parts.append(piece)
            if i < len(positions):
                parts.append(image_features[image])
                image += 1
        rows.append(mx.concatenate(parts))
    width = max(r.shape[0] for r in rows)
    left = self.config.tokenizer_padding_side == "left"
    padded = []
    for row in rows:
        pad = mx.zeros((width - row.shape[0], row.shape[1]), dtype=row.dtype)
        padded.append(mx.concatenate([pad, row] if left else [row, pad]))
    return mx.stack(padded)


def patch_model(model) -> None:
    """Replace the model's multi-image merge by ``merge_image_features`` (the upstream fix)."""
    model.prepare_inputs_for_multimodal = types.MethodType(merge_image_features, model)


def load(model_dir: str | Path):
    """``(model, tokenizer, video)`` from an ``export --format mlx`` folder, the model patched for videos."""
    mlx_vlm = require_mlx()
    with tower_shape(model_dir):
        model, _ = mlx_vlm.load(str(model_dir))
    patch_model(model)
    return (
        model,
        original_tokenizer(model_dir),
        VideoConfig.load(model_dir) or original_video_config(model_dir),
    )


def to_apple_ids(input_ids: Sequence[int], image_token_id: int, tokens_per_frame: int) -> np.ndarray:
    """Our ids (``tokens_per_frame`` ``<image>`` tokens per frame, frames back to back) -> Apple's (one -200 per frame)."""
    out, run = [], 0
    for token in input_ids:
        run = run + 1 if token == image_token_id else 0
        if run == 0:
            out.append(token)
        elif run % tokens_per_frame == 1 or tokens_per_frame == 1:
            out.append(IMAGE_INDEX)
    return np.asarray(out, dtype=np.int64)


def prompt_inputs(tokenizer, video: VideoConfig, question: str, media_path: str | Path | None = None):
    """``(ids, pixels)`` for MLX from our own data path: the chat encoding and pixels PyTorch predict uses.

    Each frame's run of ``tokens_per_frame`` image tokens becomes one -200 marker (Apple's ids);
    a 1-frame image or a video of any length works the same way.
    """
    media = (
        []
        if media_path is None
        else [MediaRef(str(media_path), media_type(media_path))]
    )
    text = question if not media or IMAGE_TOKEN in question else f"{IMAGE_TOKEN}\n{question}"
    encoder = ChatEncoder(tokenizer, video.tokens_per_frame)
    loaded, messages = load_sample_media([Message("user", text)], media, video)  # visual budget, time instruction
    frames = [m.frames for m in loaded]
    encoded = encoder.encode(messages, [f.shape[0] for f in frames], add_generation_prompt=True)
    ids = to_apple_ids(encoded.input_ids, encoder.image_token_id, video.tokens_per_frame)
    pixels = to_model_pixels(torch.cat(frames)).numpy() if frames else None
    return ids, pixels


def greedy(model, tokenizer, ids: np.ndarray, pixels, max_tokens: int = 64) -> list[int]:
    """Greedy token ids from mlx-vlm's own generation loop, stopping at ``<|im_end|>``."""
    import mlx.core as mx
    from mlx_vlm.generate.ar import generate_step

    stop = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pixel_values = None if pixels is None else mx.array(np.asarray(pixels, dtype=np.float32))
    out = []
    for token, _ in generate_step(
        mx.array(ids)[None], model, pixel_values, None, max_tokens=max_tokens, temperature=0.0
    ):
        token = int(token.item() if hasattr(token, "item") else token)
        if token == stop:
            break
        out.append(token)
    return out


def ask(model_dir: str | Path, media_path: str | Path | None, question: str, max_tokens: int = 256) -> str:
    """One question about one video or image with MLX: the same prompt and pixels as PyTorch predict."""
    model, tokenizer, video = load(model_dir)
    ids, pixels = prompt_inputs(tokenizer, video, question, media_path)
    return tokenizer.decode(
        greedy(model, tokenizer, ids, pixels, max_tokens), skip_special_tokens=True
    ).strip()
