"""The FastAPI app: one page (``page.html``) and the JSON endpoints it and API clients use.

    GET  /                      the page
    GET  /api/videos            videos/images in the allowed folder
    POST /api/upload?name=F     raw file body -> {"ref": "upload://..."} (size-limited while reading)
    POST /api/frames            {"video": REF} -> the frames the model will see, with timestamps
    GET  /v1/models             OpenAI-style model list
    POST /v1/chat/completions   OpenAI-compatible, streaming (SSE) or not

Frames and answers come from the same ``Predictor`` as ``fastvlm-video predict`` (``prepare`` + ``stream``),
so the server sees exactly what predict sees. One request runs the model at a time (a lock).
"""

from __future__ import annotations

import base64
import io
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ..data.dataset import load_sample_media
from ..data.records import MediaRef
from ..errors import FastVlmVideoError
from ..infer.predictor import Predictor, Timings
from ..media.kinds import media_type
from .media import MediaStore, RequestError
from .openai import ChatRequest, chunk, completion, error_body, parse_request

logger = logging.getLogger(__name__)

PAGE = Path(__file__).with_name("page.html")


def frame_previews(predictor: Predictor, path: Path) -> dict:
    """The frames ``predict`` would feed the model (same decode, sampling and resize), as JPEG data URIs."""
    from PIL import Image

    kind = media_type(path)
    [item], _ = load_sample_media([], [MediaRef(str(path), kind)], predictor.video)  # as predict: visual budget included
    frames, timestamps = item.frames, item.timestamps
    out = []
    for i, frame in enumerate(frames):
        buffer = io.BytesIO()
        Image.fromarray(frame.permute(1, 2, 0).numpy()).save(buffer, format="JPEG", quality=85)
        t = None if timestamps is None else round(float(timestamps[i]), 3)
        out.append({"t": t, "image": "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()})
    return {"kind": kind, "num_frames": len(out), "size": int(frames.shape[-1]), "frames": out}


def create_app(predictor: Predictor, media_folder: str | Path, upload_folder: str | Path, max_upload_bytes: int,
               model_name: str = "fastvlm-video") -> FastAPI:  # fmt: skip
    store = MediaStore(media_folder, upload_folder, max_upload_bytes)
    lock = threading.Lock()
    app = FastAPI(title="fastvlm-video", docs_url=None, redoc_url=None)

    @app.exception_handler(RequestError)
    async def request_error(_, exc: RequestError):
        return JSONResponse(error_body(str(exc), exc.code), status_code=exc.status)

    @app.exception_handler(FastVlmVideoError)
    async def media_error(_, exc: FastVlmVideoError):  # unreadable media, bad settings: the client's input
        return JSONResponse(error_body(str(exc), "unreadable_media"), status_code=400)

    @app.exception_handler(Exception)
    async def internal_error(_, exc: Exception):
        logger.exception("request failed")
        return JSONResponse(error_body(f"internal error: {type(exc).__name__}: {exc}", "internal_error"), status_code=500)

    async def json_body(request: Request) -> object:
        try:
            return await request.json()
        except ValueError:
            raise RequestError("the body is not valid JSON") from None

    @app.get("/", response_class=HTMLResponse)
    def page():
        return PAGE.read_text(encoding="utf-8")

    @app.get("/api/videos")
    def videos():
        return {"folder": str(store.allowed), "videos": store.listing(), "max_upload_mb": max_upload_bytes / 2**20,
                "num_frames": predictor.video.num_frames}  # fmt: skip

    @app.post("/api/upload")
    async def upload(request: Request, name: str = ""):
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_upload_bytes:
            raise RequestError(f"upload larger than the {store.limit_text} limit (serve --max_upload_mb)", 413, "too_large")
        chunks, size = [], 0
        async for piece in request.stream():
            size += len(piece)
            if size > max_upload_bytes:
                raise RequestError(f"upload larger than the {store.limit_text} limit (serve --max_upload_mb)", 413, "too_large")
            chunks.append(piece)
        return {"ref": store.save_upload(name, chunks), "bytes": size}

    @app.post("/api/frames")
    async def frames(request: Request):
        body = await json_body(request)
        ref = body.get("video") if isinstance(body, dict) else None
        path = store.resolve(ref)
        return await run_in_threadpool(frame_previews, predictor, path)

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "local"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        req = parse_request(await json_body(request), store)
        prompt = await run_in_threadpool(predictor.prepare, req.messages, req.media)  # media errors -> 400 here
        if req.stream:
            return StreamingResponse(stream_events(req, prompt), media_type="text/event-stream")
        return await run_in_threadpool(answer, req, prompt)

    def generate(req: ChatRequest, prompt, timings: Timings) -> Iterator[str]:
        with lock:
            yield from predictor.stream(prompt, req.max_new_tokens, timings, **req.gen_kwargs)

    def finish_reason(req: ChatRequest, timings: Timings) -> str:
        return "length" if timings.new_tokens >= req.max_new_tokens else "stop"

    def answer(req: ChatRequest, prompt) -> dict:
        timings = Timings()
        text = "".join(generate(req, prompt, timings)).strip()
        logger.info("answered in %.2f s: %d tokens", timings.ttft_s, timings.new_tokens)
        return completion(model_name, text, len(prompt.input_ids), timings.new_tokens, finish_reason(req, timings))

    def stream_events(req: ChatRequest, prompt) -> Iterator[str]:
        cid, timings = f"chatcmpl-{uuid.uuid4().hex[:24]}", Timings()
        yield chunk(cid, model_name, {"role": "assistant", "content": ""})
        started = time.perf_counter()
        try:
            for piece in generate(req, prompt, timings):
                if piece:
                    yield chunk(cid, model_name, {"content": piece})
        except Exception as exc:  # the response has started: report in-band, keep serving
            logger.exception("generation failed")
            yield f"data: {{\"error\": {{\"message\": \"{type(exc).__name__}\", \"type\": \"internal_error\"}}}}\n\n"
            return
        logger.info("streamed %d tokens in %.2f s", timings.new_tokens, time.perf_counter() - started)
        yield chunk(cid, model_name, {}, finish_reason(req, timings))
        yield "data: [DONE]\n\n"

    return app
