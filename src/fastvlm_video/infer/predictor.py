"""Ask a fine-tuned FastVLM about videos and images: ``fastvlm_video.load(DIR).ask("clip.mp4", "What happens?")``.

Uses the checkpoint's saved video settings (``video_config.json``) and the same data path as
training, so what the model sees at inference is what it saw while learning.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from threading import Thread

import torch
from transformers import TextIteratorStreamer

from ..data.chat import ChatEncoder
from ..data.collate import Collator
from ..data.dataset import load_media
from ..data.records import MediaRef, Message
from ..media.video import is_video_file
from ..model.load import load_model, load_tokenizer, video_config_of
from ..constants import IMAGE_TOKEN


def pick_device(device: str = "auto") -> torch.device:
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass
class Prompt:
    """A prepared generation input: ids ending with the assistant header, and its frames."""

    input_ids: torch.Tensor
    pixel_values: torch.Tensor | None
    timestamps: list


class Predictor:
    def __init__(self, model, tokenizer, video, device: torch.device):
        self.model, self.tokenizer, self.video, self.device = model.eval(), tokenizer, video, device
        self.encoder = ChatEncoder(tokenizer, video.tokens_per_frame)
        self.collator = Collator(pad_token_id=tokenizer.pad_token_id, padding_side="left")

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "auto", dtype: str | torch.dtype | None = None, **video_overrides) -> Predictor:
        """Load a checkpoint directory; ``video_overrides`` (e.g. ``num_frames=16``) replace saved settings."""
        dev = pick_device(device)
        dtype = dtype or (torch.bfloat16 if dev.type == "cuda" else torch.float32)
        model = load_model(path, dtype=dtype).to(dev)
        return cls(model, load_tokenizer(path), video_config_of(path, **video_overrides), dev)

    def prepare(self, messages: Sequence[Message], media: Sequence[MediaRef]) -> Prompt:
        """Encode a conversation that ends with a user turn, loading its media."""
        loaded = [load_media(ref, self.video) for ref in media]
        encoded = self.encoder.encode(messages, [f.shape[0] for f, _ in loaded], add_generation_prompt=True)
        frames = torch.cat([f for f, _ in loaded]) if loaded else None
        return Prompt(torch.tensor(encoded.input_ids), frames, [ts for _, ts in loaded])

    def prompt_for(self, media_path: str | Path | None, question: str) -> Prompt:
        media = [] if media_path is None else [MediaRef(str(media_path), "video" if is_video_file(media_path) else "image")]
        text = question if not media or IMAGE_TOKEN in question else f"{IMAGE_TOKEN}\n{question}"
        return self.prepare([Message("user", text)], media)

    def _inputs(self, prompts: Sequence[Prompt]) -> dict:
        batch = self.collator([{"input_ids": p.input_ids, "pixel_values": p.pixel_values} for p in prompts])
        batch.pop("skipped")
        return {k: v.to(self.device) for k, v in batch.items()}

    @torch.inference_mode()
    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int = 256, **gen_kwargs) -> list[str]:
        """Batched generation (greedy unless ``do_sample=True``); returns the answers."""
        inputs = self._inputs(prompts)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, **self._gen_defaults(gen_kwargs))
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        return [t.strip() for t in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]

    def stream(self, prompt: Prompt, max_new_tokens: int = 256, **gen_kwargs) -> Iterator[str]:
        """Yield the answer's text piece by piece as it is generated."""
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        inputs = self._inputs([prompt])
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        kwargs = dict(**inputs, max_new_tokens=max_new_tokens, streamer=streamer, **self._gen_defaults(gen_kwargs))
        thread = Thread(target=torch.inference_mode()(self.model.generate), kwargs=kwargs, daemon=True)
        thread.start()
        yield from streamer
        thread.join()

    def ask(self, media_path: str | Path | None, question: str, max_new_tokens: int = 256, **gen_kwargs) -> str:
        """One question about one video or image (or none)."""
        return self.generate([self.prompt_for(media_path, question)], max_new_tokens, **gen_kwargs)[0]

    def _gen_defaults(self, kwargs: dict) -> dict:
        kwargs.setdefault("do_sample", kwargs.get("temperature", 0) not in (0, None))
        if not kwargs["do_sample"]:
            kwargs.pop("temperature", None)
            kwargs.pop("top_p", None)
        kwargs.setdefault("pad_token_id", self.tokenizer.pad_token_id)
        kwargs.setdefault("eos_token_id", self.encoder.im_end_id)
        return kwargs


def load(path: str | Path, device: str = "auto", **kwargs) -> Predictor:
    """``fastvlm_video.load(DIR)``: a ``Predictor`` for a checkpoint directory."""
    return Predictor.from_pretrained(path, device=device, **kwargs)
