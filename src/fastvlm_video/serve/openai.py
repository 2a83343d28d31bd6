"""The OpenAI chat-completions wire format: request -> our messages + media, answers -> response/chunks.

Accepted content: a string, or a list of parts ``{"type": "text", "text"}``, ``{"type": "video_url",
"video_url": {"url"}}``, ``{"type": "image_url", "image_url": {"url"}}`` (also ``"video"``/``"image"``
with a plain string), and ``{"type": "video_frames", "video_frames": {"frames": [image data: URLs],
"fps": F}}``: a video sent as its frames (the page's live camera window). Each media part becomes one
``<image>`` placeholder at its place in the text.
Sampling: greedy unless ``temperature`` > 0 (OpenAI's default of 1 is *not* assumed: omitted = greedy).
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..constants import IMAGE_TOKEN
from ..data.records import MediaRef, Message
from ..media.kinds import media_type
from .media import MediaStore, RequestError

ROLES = ("system", "user", "assistant")
MEDIA_PARTS = {"video_url": "video", "video": "video", "image_url": "image", "image": "image", "input_video": "video"}


@dataclass
class ChatRequest:
    messages: list[Message]
    media: list[MediaRef]
    stream: bool = False
    max_new_tokens: int = 256
    gen_kwargs: dict = field(default_factory=dict)
    model: str = "fastvlm-video"
    temporary: list[Path] = field(default_factory=list)  # frame folders written for this request only


def _url_of(part: dict, kind: str) -> str:
    value = part.get(kind)
    if isinstance(value, dict):
        value = value.get("url")
    if not isinstance(value, str):
        raise RequestError(f"a {kind!r} part needs {{'{kind}': {{'url': ...}}}}")
    return value


def parse_request(body: object, store: MediaStore, max_tokens_cap: int = 4096) -> ChatRequest:
    """Validate a chat-completions body; media references are resolved (confined) here."""
    temporary: list[Path] = []
    try:
        return _parse(body, store, max_tokens_cap, temporary)
    except BaseException:  # nothing written for a refused request stays behind
        for folder in temporary:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _parse(body: object, store: MediaStore, max_tokens_cap: int, temporary: list[Path]) -> ChatRequest:
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise RequestError("'messages' must be a non-empty list")
    messages, media = [], []
    for i, message in enumerate(raw):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise RequestError(f"messages[{i}] needs a 'role' in {ROLES}")
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(parts, list):
            raise RequestError(f"messages[{i}].content must be a string or a list of parts")
        text = []
        for part in parts:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                text.append(part["text"].replace(IMAGE_TOKEN, ""))
            elif kind in MEDIA_PARTS or kind == "video_frames":
                if message["role"] != "user":
                    raise RequestError(f"messages[{i}]: media may only be sent in user messages")
                if kind == "video_frames":
                    window = part.get("video_frames")
                    if not isinstance(window, dict):
                        raise RequestError("a 'video_frames' part needs {'video_frames': {'frames': [...], 'fps': F}}")
                    path = store.save_frames(window.get("frames"), window.get("fps"))
                    temporary.append(path)
                    media.append(MediaRef(str(path), "video"))
                else:
                    path = store.resolve(_url_of(part, kind))
                    media.append(MediaRef(str(path), media_type(path)))
                text.append(f"{IMAGE_TOKEN}\n")
            else:
                raise RequestError(f"messages[{i}]: unsupported content part {part!r:.80}")
        messages.append(Message(message["role"], "".join(text)))
    if messages[-1].role != "user":
        raise RequestError("the last message must come from the user")
    if any(m.role == "system" for m in messages[1:]):
        raise RequestError("a system message may only come first")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens", 256))
    if not isinstance(max_tokens, int) or not 0 < max_tokens <= max_tokens_cap:
        raise RequestError(f"max_tokens must be an integer in 1..{max_tokens_cap}")
    gen = {}
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None:
            if not isinstance(value, (int, float)) or value < 0:
                raise RequestError(f"{key} must be a non-negative number")
            gen[key] = float(value)
    return ChatRequest(messages, media, bool(body.get("stream", False)), max_tokens, gen,
                       str(body.get("model") or "fastvlm-video"), temporary)  # fmt: skip


def completion(model: str, text: str, prompt_tokens: int, completion_tokens: int, finish_reason: str) -> dict:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }  # fmt: skip


def chunk(cid: str, model: str, delta: dict, finish_reason: str | None = None) -> str:
    """One server-sent event of a streamed completion."""
    body = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}  # fmt: skip
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def error_body(message: str, code: str = "invalid_request") -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}
