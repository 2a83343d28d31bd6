"""Ask a fine-tuned FastVLM about videos and images: ``fastvlm_video.load(DIR).ask("clip.mp4", "What happens?")``.

Uses the checkpoint's saved video settings (``video_config.json``) and the same data path as
training, so what the model sees at inference is what it saw while learning. Any checkpoint format
loads (standard, original ml-fastvlm, LoRA adapter: merged on load for speed).

Streaming goes in four timed steps, the split of the time to first token (``Timings``):
decode (read the file, sample and resize frames), preprocess (chat tokens, scaling, to the device),
vision encode (FastViTHD + projector on all frames in one batch), prefill (the LLM reads the prompt
and picks the first token). Then tokens follow at ``tokens_per_s``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from threading import Thread

import torch
from transformers import TextIteratorStreamer

from ..constants import IMAGE_TOKEN
from ..data.chat import ChatEncoder
from ..data.collate import Collator
from ..data.dataset import load_sample_media
from ..data.records import PLACEHOLDER_RE, MediaRef, Message
from ..media.kinds import media_type
from ..model.load import load_model, load_tokenizer, video_config_of

logger = logging.getLogger(__name__)

STEPS = ("decode", "preprocess", "vision_encode", "prefill")


def pick_device(device: str = "auto") -> torch.device:
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a wall-clock reading covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@dataclass
class Timings:
    """Seconds per step of the time to first token, then the generation speed."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STEPS, 0.0))
    new_tokens: int = 0
    decode_tokens_s: float = 0.0  # from the first generated token to the last
    frames: int = 0

    @contextmanager
    def step(self, name: str, device: torch.device) -> Iterator[None]:
        synchronize(device)
        start = time.perf_counter()
        yield
        synchronize(device)
        self.seconds[name] += time.perf_counter() - start

    @property
    def ttft_s(self) -> float:
        return sum(self.seconds.values())

    @property
    def tokens_per_s(self) -> float:
        return (self.new_tokens - 1) / self.decode_tokens_s if self.new_tokens > 1 and self.decode_tokens_s > 0 else float("nan")

    def report(self) -> str:
        split = ", ".join(f"{name.replace('_', ' ')} {self.seconds[name] * 1000:.0f} ms" for name in STEPS)
        return (
            f"time to first token {self.ttft_s * 1000:.0f} ms ({split}; {self.frames} frames)\n"
            f"{self.new_tokens} tokens, {self.tokens_per_s:.1f} tokens/s after the first"
        )


class _TimedStreamer(TextIteratorStreamer):
    """A text streamer that also notes when each generated token arrives."""

    def __init__(self, tokenizer):
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.token_times: list[float] = []

    def put(self, value):
        if not self.next_tokens_are_prompt:  # the first call brings the prompt back
            self.token_times += [time.perf_counter()] * value.numel()
        super().put(value)


@dataclass
class Prompt:
    """A prepared generation input: ids ending with the assistant header, and its frames."""

    input_ids: torch.Tensor
    pixel_values: torch.Tensor | None
    timestamps: list


class Predictor:
    def __init__(self, model, tokenizer, video, device: torch.device, frame_cache=None):
        self.model, self.tokenizer, self.video, self.device = model.eval(), tokenizer, video, device
        self.frame_cache = frame_cache  # a FrameCache built at ``video``, or None: decode every media
        self.encoder = ChatEncoder(tokenizer, video.tokens_per_frame)
        self.collator = Collator(pad_token_id=tokenizer.pad_token_id, padding_side="left")

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "auto", dtype: str | torch.dtype | None = None, **video_overrides) -> Predictor:
        """Load a checkpoint directory; ``video_overrides`` (e.g. ``num_frames=16``) replace saved settings."""
        dev = pick_device(device)
        dtype = dtype or (torch.bfloat16 if dev.type == "cuda" else torch.float32)
        model = load_model(path, dtype=dtype, merge_lora=True).to(dev)
        return cls(model, load_tokenizer(path), video_config_of(path, **video_overrides), dev)

    def prepare(self, messages: Sequence[Message], media: Sequence[MediaRef], timings: Timings | None = None, answer_prefix: str = "") -> Prompt:
        """Encode a conversation that ends with a user turn, loading its media; the reply starts with ``answer_prefix``."""
        timings = timings or Timings()
        with timings.step("decode", self.device):
            loaded, messages = load_sample_media(messages, media, self.video, self.frame_cache)
            warn_degraded(media, loaded)
        with timings.step("preprocess", self.device):
            encoded = self.encoder.encode(messages, [m.frames.shape[0] for m in loaded], add_generation_prompt=True)
            encoded.input_ids += self.encoder.text_ids(answer_prefix)
            frames = torch.cat([m.frames for m in loaded]) if loaded else None
        timings.frames = 0 if frames is None else frames.shape[0]
        return Prompt(torch.tensor(encoded.input_ids), frames, [m.timestamps for m in loaded])

    def prompt_for(self, media_path: str | Path | None, question: str, timings: Timings | None = None) -> Prompt:
        media = [] if media_path is None else [MediaRef(str(media_path), media_type(media_path))]
        text = question if not media or PLACEHOLDER_RE.search(question) else f"{IMAGE_TOKEN}\n{question}"
        return self.prepare([Message("user", PLACEHOLDER_RE.sub(IMAGE_TOKEN, text))], media, timings)  # <video> as in training

    def _inputs(self, prompts: Sequence[Prompt]) -> dict:
        batch = self.collator([{"input_ids": p.input_ids, "pixel_values": p.pixel_values} for p in prompts])
        batch.pop("skipped")
        inputs = {k: v.to(self.device) for k, v in batch.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        return inputs

    @torch.inference_mode()
    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int = 256, **gen_kwargs) -> list[str]:
        """Batched generation (greedy unless ``do_sample=True``); returns the answers."""
        inputs = self._inputs(prompts)
        out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, **self._gen_defaults(gen_kwargs))
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        return [t.strip() for t in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]

    @torch.inference_mode()
    def encode_frames(self, pixel_values: torch.Tensor, one_by_one: bool = False):
        """FastViTHD + projector on the frames: one batch, or frame by frame (as the original code does for lists)."""
        if not one_by_one:
            return self.model.get_image_features(pixel_values=pixel_values, return_dict=True)
        outputs = [self.model.get_image_features(pixel_values=frame[None], return_dict=True) for frame in pixel_values]
        outputs[0].pooler_output = torch.cat([o.pooler_output for o in outputs])
        return outputs[0]

    def stream(self, prompt: Prompt, max_new_tokens: int = 256, timings: Timings | None = None, **gen_kwargs) -> Iterator[str]:
        """Yield the answer's text piece by piece as it is generated; fills ``timings`` if given."""
        timings = timings or Timings()
        with timings.step("preprocess", self.device):
            inputs = self._inputs([prompt])
        pixel_values = inputs.pop("pixel_values", None)
        if pixel_values is not None:
            with timings.step("vision_encode", self.device):
                inputs["mm_encoder_outputs"] = {"image": self.encode_frames(pixel_values)}
        streamer = _TimedStreamer(self.tokenizer)
        kwargs = dict(**inputs, max_new_tokens=max_new_tokens, streamer=streamer, **self._gen_defaults(gen_kwargs))
        thread = Thread(target=torch.inference_mode()(self.model.generate), kwargs=kwargs, daemon=True)
        start = time.perf_counter()
        thread.start()
        yield from streamer
        thread.join()
        times = streamer.token_times
        if times:
            timings.seconds["prefill"] += times[0] - start
            timings.new_tokens, timings.decode_tokens_s = len(times), times[-1] - times[0]

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


_WARNED: set[tuple[str, str]] = set()  # (file, note) pairs this process already logged


def warn_degraded(media: Sequence[MediaRef], loaded: Sequence) -> None:
    """Log each degradation of decoded media (stand-in frames for a truncated tail) once per file and process."""
    for ref, item in zip(media, loaded):
        for note in item.notes:
            if (ref.path, note) not in _WARNED:
                _WARNED.add((ref.path, note))
                logger.warning("%s: %s", ref.path, note)


def load(path: str | Path, device: str = "auto", **kwargs) -> Predictor:
    """``fastvlm_video.load(DIR)``: a ``Predictor`` for a checkpoint directory."""
    return Predictor.from_pretrained(path, device=device, **kwargs)
