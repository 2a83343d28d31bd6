"""Make the golden Apple-layout checkpoint and logits in tests/data/apple_golden/, with Apple's own ml-fastvlm code.

`tests/test_apple_golden.py` checks `convert` and `export --format apple` against these files, so fidelity to
Apple's original code is tested without Apple's code installed. Made once; re-run only to change the model.

What Apple's code does here (nothing below comes from this package's name tables or model classes):
- builds `LlavaQwen2ForCausalLM` (llava/model/language_model/llava_qwen.py) from a `llava_qwen2` config, with
  its `MobileCLIPVisionTower` (MCi + `fastvithd` from llava/model/multimodal_encoder/mobileclip/mci.py) and
  its `mlp2x_gelu` projector. The one change: Apple's `fastvithd` is shrunk to 1 block per stage and widths
  (8, 16, 32, 32, 64) (the same FastViT class, token mixers, positional embeddings, `inference_mode=True`, as
  Apple's function builds it), and its MobileCLIP head to 8 outputs (Apple's is 768; FastVLM never uses it),
  so the files stay small. Apple's tower is built reparameterised only (`inference_mode=True`).
- fills every weight and buffer with seeded random values (rounded to float16, the dtype the files hold), so a
  wrong name, a transposed weight or a swapped BatchNorm statistic changes the logits;
- saves the folder with its own `save_pretrained` (plus a tokenizer without `<image>`, as Apple's are), reloads
  it with Apple's own `llava.model.builder.load_pretrained_model` (no missing or unexpected keys), and
- runs Apple's forward in float32 on 2 frames (128 px: 2x2 tokens each) marked with Apple's `-200` image
  index: the logits are stored with the inputs.

Made with ml-fastvlm at commit 592b4ad ("first commit", github.com/apple/ml-fastvlm), run with this project's
environment (transformers 5.25, torch 2.14, timm 1.0.31; Apple pins transformers 4.48.3): Apple's LLaVA glue,
MCi tower and projector code is what runs; the Qwen2 decoder is transformers' (Apple's class subclasses it).

    git clone https://github.com/apple/ml-fastvlm /tmp/ml-fastvlm
    PYTHONPATH=src python benchmarks/make_apple_golden.py /tmp/ml-fastvlm [--out tests/data/apple_golden]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from functools import partial
from pathlib import Path

import torch
from safetensors.torch import save_file

from fastvlm_video.model.tiny import build_tiny_tokenizer

WIDTHS = [8, 16, 32, 32, 64]  # stage widths; attention stages need >= 32 (Apple's head_dim)
HEAD_OUT = 8  # MobileCLIP head width (768 in Apple's mobileclip_l.json; unused by FastVLM)
FRAME = 128
SEED = 0


def shrink_apple_tower(mobileclip, mci) -> dict:
    """Make Apple's ``MCi('fastvithd')`` build a tiny FastViTHD; returns Apple's real config (for the record)."""
    real = mobileclip.load_model_config("mobileclip_l_1024")

    def tiny_fastvithd(model_name, projection_dim=None, **kwargs):
        assert model_name == "fastvithd", model_name
        model = mci.FastViT(
            [1, 1, 1, 1, 1],
            token_mixers=("repmixer", "repmixer", "repmixer", "attention", "attention"),
            embed_dims=WIDTHS,
            pos_embs=[None, None, None, partial(mci.RepCPE, spatial_shape=(7, 7)), partial(mci.RepCPE, spatial_shape=(7, 7))],
            mlp_ratios=[4] * 5,
            downsamples=[True] * 5,
            norm_layer=mci.LayerNormChannel,
            stem_scale_branch=False,
            inference_mode=True,
            projection_dim=projection_dim,
        )  # fmt: skip
        return model

    def tiny_config(name):
        config = json.loads(json.dumps(real))
        config["embed_dim"] = HEAD_OUT
        config["image_cfg"]["embed_dim"] = WIDTHS[-1] * 2
        return config

    mobileclip.create_model = tiny_fastvithd
    mobileclip.load_model_config = tiny_config
    return real


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Seeded random values in every float tensor, float16-representable: weights ~ fan-in scaled, norms ~ 1."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in sorted(model.state_dict(keep_vars=True).items()):
            if not tensor.is_floating_point():
                continue
            shape = tensor.shape
            noise = torch.randn(shape, generator=gen)
            if name.endswith("running_var"):
                value = 0.5 + torch.rand(shape, generator=gen)
            elif tensor.dim() >= 2:
                value = noise / max(1, shape[1:].numel()) ** 0.5
            elif name.endswith("weight") and ("norm" in name or ".bn" in name or "layernorm" in name):
                value = 1 + 0.1 * noise
            else:  # biases, layer scales, BatchNorm means
                value = 0.1 * noise
            tensor.copy_(value.half().float())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ml_fastvlm", help="a checkout of github.com/apple/ml-fastvlm")
    parser.add_argument("--out", default="tests/data/apple_golden")
    args = parser.parse_args()
    sys.path.insert(0, args.ml_fastvlm)
    import llava.model.multimodal_encoder.mobileclip as mobileclip  # Apple's code
    from llava.model.multimodal_encoder.mobileclip import mci
    from llava.constants import IMAGE_TOKEN_INDEX
    from llava.model.builder import load_pretrained_model
    from llava.model.language_model.llava_qwen import LlavaConfig, LlavaQwen2ForCausalLM

    real = shrink_apple_tower(mobileclip, mci)
    tokenizer = build_tiny_tokenizer(image_token=False)  # Apple's tokenizers have no <image>
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = LlavaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-6, tie_word_embeddings=False,
        eos_token_id=eos, bos_token_id=eos, architectures=["LlavaQwen2ForCausalLM"],
        mm_vision_tower=f"mobileclip_l_{FRAME}", mm_hidden_size=WIDTHS[-1] * 2, mm_projector_type="mlp2x_gelu",
        mm_vision_select_layer=-2, mm_vision_select_feature="patch", mm_patch_merge_type="flat", mm_use_im_start_end=False,
        mm_use_im_patch_token=False, image_aspect_ratio="pad", unfreeze_mm_vision_tower=True, use_mm_proj=True,
        tokenizer_model_max_length=512, tokenizer_padding_side="right",
    )  # fmt: skip
    torch.manual_seed(SEED)
    model = LlavaQwen2ForCausalLM(config).float().eval()
    randomise(model, SEED)

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    model.half().save_pretrained(out)  # Apple's code's own save: its names, float16 (what its loader reads)
    model.float()  # (its rotary buffer is now rounded to float16: the logits below come from the saved folder)
    tokenizer.save_pretrained(out)

    gen = torch.Generator().manual_seed(SEED + 1)
    pixels_u8 = torch.randint(0, 256, (2, 3, FRAME, FRAME), generator=gen, dtype=torch.uint8)
    pixels = pixels_u8.float() / 255  # Apple's processor output: mean 0, std 1
    text = torch.randint(0, len(tokenizer) - 3, (8,), generator=gen).tolist()
    ids = torch.tensor([text[:3] + [IMAGE_TOKEN_INDEX] + text[3:5] + [IMAGE_TOKEN_INDEX] + text[5:]])

    # The golden logits: Apple's class reading the saved folder in float32 (transformers' default attention).
    apple = LlavaQwen2ForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    assert apple.state_dict().keys() == model.state_dict().keys(), "the saved folder builds other modules"
    assert all(torch.equal(v, apple.state_dict()[k]) for k, v in model.state_dict().items()), "weights changed"
    with torch.no_grad():
        logits = apple(input_ids=ids, images=pixels).logits[0].float()
    save_file({"input_ids": ids, "pixels_u8": pixels_u8, "logits": logits.contiguous()}, str(out.parent / "apple_golden_logits.safetensors"))

    _, reloaded, _, _ = load_pretrained_model(str(out), None, out.name, device="cpu")  # Apple's loader (float16)
    reloaded_state = reloaded.float().state_dict()
    assert reloaded_state.keys() == model.state_dict().keys(), "Apple's loader built other modules"
    assert all(torch.equal(v, reloaded_state[k]) for k, v in model.state_dict().items()), "Apple's loader changed weights"
    with torch.no_grad():
        again = reloaded.float().eval()(input_ids=ids, images=pixels).logits[0]
    facts = {
        "made_by": "benchmarks/make_apple_golden.py with github.com/apple/ml-fastvlm @ 592b4ad",
        "apple_head_out": real["embed_dim"],
        "apple_tower_width": real["image_cfg"]["embed_dim"],
        "tiny_tower": {"layers": [1] * 5, "embed_dims": WIDTHS, "head_out": HEAD_OUT},
        "tokens_per_frame": (FRAME // 64) ** 2,
        "max_abs_logit": float(logits.abs().max()),
        "attention": apple.config._attn_implementation,
        "apple_builder_loader_max_diff": float((again - logits).abs().max()),
    }
    (out.parent / "apple_golden.json").write_text(json.dumps(facts, indent=2) + "\n")
    print(json.dumps(facts, indent=2))
    print(f"wrote {out} ({sum(p.stat().st_size for p in out.iterdir()) // 1024} KiB) and its logits")


if __name__ == "__main__":
    main()
