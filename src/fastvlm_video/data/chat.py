"""Qwen2 ChatML as FastVLM was trained (conv ``qwen_2``), tokenized message by message.

    <|im_start|>system\nYou are a helpful assistant.<|im_end|>\n
    <|im_start|>user\n<image>\nWhat happens?<|im_end|>\n
    <|im_start|>assistant\nThe square moves left.<|im_end|>\n

Each piece (role header, text, image tokens, ``<|im_end|>``) is tokenized on its own and the ids are
concatenated, so the labels are exact by construction: the assistant's content and its
``<|im_end|>`` are trained, everything else is ``-100``. Text is tokenized with special-token
splitting, so a user who writes "<|im_end|>" gets those characters, never the control token.

Per-message tokenization equals tokenizing the whole rendered string except where a message
starts with whitespace containing a newline: the byte-level pre-tokenizer would merge it with
the "\\n" closing the role header. Per message is the right choice there, because it is exactly
what the model sees at generation time, when the prompt ends with "<|im_start|>assistant\\n".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..constants import DEFAULT_SYSTEM_PROMPT, IGNORE_INDEX, IM_END, IM_START, IMAGE_TOKEN
from ..errors import ConfigError, FastVlmVideoError
from .records import Message

# The same format as a Jinja chat template, saved with checkpoints for plain `transformers` users.
CHAT_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\n" + DEFAULT_SYSTEM_PROMPT + "<|im_end|>\\n' }}{% endif %}"
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}{% if item['type'] in ('image', 'video') %}{{ '<image>\\n' }}"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


class SampleTooLong(FastVlmVideoError):
    """The prompt with its image tokens does not fit ``model_max_length`` (image tokens are never cut)."""


@dataclass
class EncodedChat:
    input_ids: list[int]
    labels: list[int]
    truncated_from: int | None = None  # the length before the tail was cut to model_max_length

    @property
    def truncated(self) -> bool:
        return self.truncated_from is not None

    @property
    def num_trainable(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


class ChatEncoder:
    """Turns messages + frames-per-media into ``input_ids`` and exact ``labels``."""

    def __init__(self, tokenizer, tokens_per_frame: int, system_prompt: str = DEFAULT_SYSTEM_PROMPT):
        self.tokenizer = tokenizer
        self.tokens_per_frame = tokens_per_frame
        self.system_prompt = system_prompt
        ids = tokenizer.convert_tokens_to_ids([IM_START, IM_END, IMAGE_TOKEN])
        missing = [t for t, i in zip((IM_START, IM_END, IMAGE_TOKEN), ids) if i is None or i == tokenizer.unk_token_id]
        if missing:
            raise ConfigError(
                f"the tokenizer ({getattr(tokenizer, 'name_or_path', '?')}) lacks {', '.join(missing)}: use the tokenizer "
                "saved with a FastVLM checkpoint (`fastvlm-video convert` adds <image> to an original one)"
            )
        self.im_start_id, self.im_end_id, self.image_token_id = ids
        self.newline = self.text_ids("\n")

    def text_ids(self, text: str) -> list[int]:
        """Plain text -> ids; special-token look-alikes stay text."""
        if not text:
            return []
        return self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]

    def with_system(self, messages: Sequence[Message]) -> list[Message]:
        if messages and messages[0].role == "system":
            return list(messages)
        return [Message("system", self.system_prompt), *messages]

    def encode(
        self,
        messages: Sequence[Message],
        frames_per_media: Sequence[int] = (),
        add_generation_prompt: bool = False,
        max_length: int | None = None,
    ) -> EncodedChat:
        """Tokenize a conversation. ``frames_per_media[i]`` is T of the i-th ``<image>`` placeholder."""
        frames = iter(frames_per_media)
        ids: list[int] = []
        labels: list[int] = []
        for message in self.with_system(messages):
            trained = message.role == "assistant"
            header = [self.im_start_id, *self.text_ids(f"{message.role}\n")]
            body = self._content_ids(message.content, frames)
            ids += header + body + [self.im_end_id] + self.newline
            labels += [IGNORE_INDEX] * len(header)
            labels += (body + [self.im_end_id]) if trained else [IGNORE_INDEX] * (len(body) + 1)
            labels += [IGNORE_INDEX] * len(self.newline)
        if next(frames, None) is not None:
            raise ValueError("more media than <image> placeholders in the messages")
        if add_generation_prompt:
            prompt = [self.im_start_id, *self.text_ids("assistant\n")]
            ids += prompt
            labels += [IGNORE_INDEX] * len(prompt)
        encoded = EncodedChat(ids, labels)
        return encoded if max_length is None else self._truncate(encoded, max_length)

    def _content_ids(self, content: str, frames) -> list[int]:
        pieces = content.split(IMAGE_TOKEN)
        ids = self.text_ids(pieces[0])
        for piece in pieces[1:]:
            num_frames = next(frames, None)
            if num_frames is None:
                raise ValueError("more <image> placeholders than media in the messages")
            ids += [self.image_token_id] * (num_frames * self.tokens_per_frame)
            ids += self.text_ids(piece)
        return ids

    def _truncate(self, encoded: EncodedChat, max_length: int) -> EncodedChat:
        """Cut the tail to ``max_length``; never an image token, and keep at least one trained token."""
        if len(encoded.input_ids) <= max_length:
            return encoded
        ids, labels = encoded.input_ids[:max_length], encoded.labels[:max_length]
        last_image = max((i for i, t in enumerate(encoded.input_ids) if t == self.image_token_id), default=-1)
        if last_image >= max_length or all(label == IGNORE_INDEX for label in labels):
            raise SampleTooLong(
                f"{len(encoded.input_ids)} tokens (image tokens included) do not fit model_max_length={max_length}"
                " without cutting image tokens or every answer token; use fewer frames or a larger model_max_length"
            )
        return EncodedChat(ids, labels, truncated_from=len(encoded.input_ids))

    def render(self, messages: Sequence[Message], frames_per_media: Sequence[int] = (), add_generation_prompt: bool = False) -> str:
        """The conversation as text, each placeholder expanded to T x K image tokens (for docs and tests)."""
        frames = iter(frames_per_media)
        out = []
        for message in self.with_system(messages):
            pieces = message.content.split(IMAGE_TOKEN)
            body = pieces[0] + "".join(IMAGE_TOKEN * (next(frames) * self.tokens_per_frame) + p for p in pieces[1:])
            out.append(f"{IM_START}{message.role}\n{body}{IM_END}\n")
        if add_generation_prompt:
            out.append(f"{IM_START}assistant\n")
        return "".join(out)
