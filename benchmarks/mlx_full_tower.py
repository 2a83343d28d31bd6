"""Check outside the tests: the FULL FastViTHD tower (timm fastvit_mci3, reparameterised, random) + a tiny Qwen2,
exported with `export --format apple`, converted by mlx-vlm and loaded by its own loader (`mlx_vlm.load`: strict,
without our `tower_shape`), agrees with PyTorch for a 2-frame prompt at 128 px. Needs the mlx extra; ~1 min here.

    PYTHONPATH=src python benchmarks/mlx_full_tower.py
"""

import json
import tempfile
import time
from pathlib import Path

import mlx.core as mx
import mlx_vlm
import numpy as np
import timm
import torch
from mlx_vlm.convert import convert
from transformers import FastVlmConfig, FastVlmForConditionalGeneration

from fastvlm_video.constants import IMAGE_TOKEN
from fastvlm_video.model.export import save_checkpoint
from fastvlm_video.model.tiny import build_tiny_tokenizer
from fastvlm_video.ship import mlx_runtime
from fastvlm_video.ship.export import export
from fastvlm_video.video_config import VideoConfig


def main() -> None:
    start = time.time()
    tokenizer = build_tiny_tokenizer()
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    vision = {
        "model_type": "timm_wrapper",
        "architecture": "fastvit_mci3",
        "do_pooling": False,
        "hidden_size": 3072,
        "model_args": {"inference_mode": True},
    }
    text = {"model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "tie_word_embeddings": False}  # fmt: skip
    torch.manual_seed(0)
    model = FastVlmForConditionalGeneration(
        FastVlmConfig(vision_config=vision, text_config=text, image_token_index=image_id)
    ).eval()
    tower = model.model.vision_tower.timm_model
    tower.load_state_dict(
        timm.create_model("fastvit_mci3", num_classes=tower.num_classes, inference_mode=True).state_dict()
    )  # timm's init
    root = Path(tempfile.mkdtemp())
    save_checkpoint(model, tokenizer, VideoConfig(image_size=128, num_frames=2), root / "std")
    export(root / "std", root / "apple", "apple")
    config = json.loads((root / "apple" / "config.json").read_text())
    config.pop(
        mlx_runtime.TOWER_CONFIG_KEY
    )  # Apple's exact fields only: mlx-vlm's own FastViTHD shape must fit
    (root / "apple" / "config.json").write_text(json.dumps(config))
    convert(str(root / "apple"), mlx_path=str(root / "mlx"))
    mlx_model, _ = mlx_vlm.load(str(root / "mlx"))
    print(f"built, exported, loaded by mlx_vlm.load: {time.time() - start:.0f} s")
    ids = torch.tensor([[5, 6] + [image_id] * 4 + [7] + [image_id] * 4 + [8, 9]])  # 2 frames of 2x2 tokens
    pixels = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = model(input_ids=ids, pixel_values=pixels).logits[0].numpy()
    apple_ids = mx.array(mlx_runtime.to_apple_ids(ids[0].tolist(), image_id, 4))[None]
    upstream = np.array(mlx_model(apple_ids, mx.array(pixels.numpy()), None).logits[0])
    mlx_runtime.patch_model(mlx_model)
    fixed = np.array(mlx_model(apple_ids, mx.array(pixels.numpy()), None).logits[0])
    print(
        f"max |logit| {np.abs(want).max():.3f}; max |mlx - torch|: mlx-vlm as is {np.abs(upstream - want).max():.2e}, patched {np.abs(fixed - want).max():.2e}"
    )


if __name__ == "__main__":
    main()
