"""Check outside the tests: Apple's original ml-fastvlm code loads an `export --format apple` folder and gives our logits.

A full FastViTHD tower (random, timm's init) + a tiny Qwen2 is exported; Apple's `load_pretrained_model` (which always
loads in float16) reads it, and a 2-frame prompt at 1024 px is compared with our model rounded to float16 the same way.
Needs a checkout of https://github.com/apple/ml-fastvlm (its `llava` package); ~3 min on 2 CPU cores.

    PYTHONPATH=src python benchmarks/apple_code_check.py /path/to/ml-fastvlm
"""

import sys
import tempfile
from pathlib import Path

import timm
import torch
from transformers import FastVlmConfig, FastVlmForConditionalGeneration

from fastvlm_video.constants import IMAGE_TOKEN
from fastvlm_video.model.export import save_checkpoint
from fastvlm_video.model.tiny import build_tiny_tokenizer
from fastvlm_video.ship.export import export
from fastvlm_video.video_config import VideoConfig


def main(ml_fastvlm: str) -> None:
    tokenizer = build_tiny_tokenizer()
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    vision = {"model_type": "timm_wrapper", "architecture": "fastvit_mci3", "do_pooling": False, "hidden_size": 3072,
              "model_args": {"inference_mode": True}}  # fmt: skip
    text = {"model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 256,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "tie_word_embeddings": False}  # fmt: skip
    torch.manual_seed(0)
    model = FastVlmForConditionalGeneration(FastVlmConfig(vision_config=vision, text_config=text, image_token_index=image_id))
    tower = model.model.vision_tower.timm_model
    tower.load_state_dict(timm.create_model("fastvit_mci3", num_classes=tower.num_classes, inference_mode=True).state_dict())
    model = model.half().float().eval()  # Apple's loader reads float16: compare like with like
    root = Path(tempfile.mkdtemp())
    save_checkpoint(model, tokenizer, VideoConfig(image_size=1024, num_frames=2), root / "std")
    export(root / "std", root / "llava-fastvithd-tiny", "apple")

    ids = torch.tensor([[5, 6] + [image_id] * 256 + [7] + [image_id] * 256 + [8, 9]])  # 2 frames of 16x16 tokens
    pixels = torch.rand(2, 3, 1024, 1024, generator=torch.Generator().manual_seed(0)).half().float()
    with torch.no_grad():
        want = model(input_ids=ids, pixel_values=pixels).logits[0]

    sys.path.insert(0, ml_fastvlm)
    from llava.model.builder import load_pretrained_model  # Apple's code

    _, apple, _, _ = load_pretrained_model(str(root / "llava-fastvithd-tiny"), None, "llava-fastvithd-tiny", device="cpu")
    with torch.no_grad():
        got = apple.float().eval()(input_ids=torch.tensor([[5, 6, -200, 7, -200, 8, 9]]), images=pixels).logits[0]
    n = got.shape[-1]  # Apple's loader trims the embeddings to its tokenizer (no <image> row)
    print(f"{type(apple).__name__}: max |Apple's code - ours| = {(got - want[..., :n]).abs().max():.2e} over {tuple(got.shape)}")


if __name__ == "__main__":
    main(sys.argv[1])
