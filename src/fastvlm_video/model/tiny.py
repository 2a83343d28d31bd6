"""A tiny random FastVLM (FastViTHD topology, shrunk) and a tokenizer built without downloads.

Used by the tests and the demo. The vision tower is timm's ``fastvit_mci3`` with fewer/narrower
layers, so every code path (stem, repmixer stages, attention stages, final conv, stride 64) is the
real one; the LLM is a small Qwen2; the tokenizer is a byte-level BPE trained on the fly with
Qwen2's pre-tokenizer regex and its ChatML special tokens.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import timm
import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import FastVlmConfig, FastVlmForConditionalGeneration, PreTrainedTokenizerFast

from ..constants import IMAGE_TOKEN, IM_END, IM_START, ENDOFTEXT

# Qwen2's pre-tokenizer pattern (splits words, numbers digit by digit, punctuation, newlines).
QWEN2_PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END, IMAGE_TOKEN]

_DEFAULT_CORPUS = [
    "You are a helpful assistant.",
    "system user assistant",
    "Which direction does the red square move? Answer with one word: left, right, up or down.",
    "left right up down. The square moves left. The square moves right. It moves up. It moves down.",
    "What happens in the video? Describe the image. What is shown? A cat, a dog, a person.",
    "First line\n\nSecond paragraph\n\n\nThird\n  \nFourth\n\n" * 20,  # so "\n\n" becomes one token, as in Qwen2
    "Hello world! 0123456789 + - * / = ( ) [ ] { } < > | _ . , ; : ' \" ? ! @ # $ % ^ & ~ `",
]


def build_tiny_tokenizer(corpus: Iterable[str] = (), vocab_size: int = 600, image_token: bool = True) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE with Qwen2's pre-tokenizer and ChatML special tokens (no download).

    ``image_token=False`` leaves ``<image>`` out, as in the original ml-fastvlm tokenizers.
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(_DEFAULT_CORPUS) + list(corpus), trainer=trainer)
    # Added in Qwen2's order, so <|endoftext|>, <|im_start|>, <|im_end|>, <image> get consecutive ids.
    tok.add_special_tokens(SPECIAL_TOKENS if image_token else SPECIAL_TOKENS[:-1])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        extra_special_tokens={"image_token": IMAGE_TOKEN} if image_token else {},
        model_max_length=2048,
        clean_up_tokenization_spaces=False,
    )


def tiny_fastvlm_config(
    vocab_size: int,
    image_token_id: int,
    text_hidden_size: int = 64,
    text_layers: int = 2,
    vision_embed_dims: tuple[int, ...] = (8, 16, 32, 64, 128),
    inference_mode: bool = False,
    init_std: float | None = None,
) -> FastVlmConfig:
    """A FastVLM config with the FastViTHD (``fastvit_mci3``) topology shrunk to a few thousand params.

    ``inference_mode=True`` builds the tower reparameterised (one conv per MobileOne block), as in
    Apple's released checkpoints; the default keeps the train-time branches. ``init_std`` (LLM and
    projector) defaults to 1/sqrt(text_hidden_size): HF's 0.02 suits d ~ 2,500, and at d = 128 it
    leaves attention uniform for hundreds of steps (the demo's frame-order circuit forms late or never).
    """
    model_args = {"layers": [1, 1, 1, 1, 1], "embed_dims": list(vision_embed_dims)}
    if inference_mode:
        model_args["inference_mode"] = True
    vision_config = {
        "model_type": "timm_wrapper",
        "architecture": "fastvit_mci3",
        "do_pooling": False,
        "hidden_size": vision_embed_dims[-1] * 2,  # cls_ratio 2: the final conv doubles the last width
        "model_args": model_args,
    }
    text_config = {
        "model_type": "qwen2",
        "vocab_size": vocab_size,
        "hidden_size": text_hidden_size,
        "intermediate_size": text_hidden_size * 4,
        "num_hidden_layers": text_layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": False,
        "initializer_range": text_hidden_size**-0.5 if init_std is None else init_std,
    }
    return FastVlmConfig(vision_config=vision_config, text_config=text_config, image_token_index=image_token_id)


def build_tiny_model(tokenizer: PreTrainedTokenizerFast, seed: int = 0, **config_kwargs) -> FastVlmForConditionalGeneration:
    """A randomly initialised tiny ``FastVlmForConditionalGeneration`` matching ``tokenizer``."""
    config = tiny_fastvlm_config(
        vocab_size=len(tokenizer),
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        **config_kwargs,
    )
    torch.manual_seed(seed)
    model = FastVlmForConditionalGeneration(config)
    _init_tower_as_timm(model)
    eos, pad = tokenizer.convert_tokens_to_ids(IM_END), tokenizer.pad_token_id
    # the text config too: the Trainer aligns it with the tokenizer and warns when they differ
    for config in (model.config, model.config.get_text_config(), model.generation_config):
        config.eos_token_id, config.pad_token_id = eos, pad
    return model


def _init_tower_as_timm(model: FastVlmForConditionalGeneration) -> None:
    """Give the vision tower timm's own initialisation (PyTorch's fan-in scaled conv init).

    ``transformers`` re-initialises every conv of a timm-wrapped tower with N(0, 0.02): at the tiny
    widths that shrinks activations ~40x per stage (1e-13 at the output in eval mode), and with
    BatchNorm after each conv the tiny weights make the effective learning rate ~lr/|w|^2 huge.
    """
    vision = model.config.vision_config
    timm_model = model.model.vision_tower.timm_model
    fresh = timm.create_model(
        vision.architecture, pretrained=False, num_classes=timm_model.num_classes, **vision.model_args
    )
    timm_model.load_state_dict(fresh.state_dict())


def save_tiny_checkpoint(out: str | Path, image_size: int = 64, num_frames: int = 8, seed: int = 0, overwrite: bool = False) -> Path:
    """A tiny random checkpoint in ``out``: weights, tokenizer + processor, ``video_config.json``."""
    from ..errors import ConfigError
    from ..video_config import VideoConfig
    from .export import refuse_existing, save_checkpoint

    try:
        video = VideoConfig(num_frames=num_frames, image_size=image_size)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    refuse_existing(out, overwrite)
    tokenizer = build_tiny_tokenizer()
    return save_checkpoint(build_tiny_model(tokenizer, seed=seed), tokenizer, video, out)
