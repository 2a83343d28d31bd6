"""The FastAPI app: one page (``page.html``) and the JSON endpoints it and API clients use.

    GET  /                      the page (open: it asks for the key when one is set)
    GET  /api/videos?q=NAME     videos (first) and images in the allowed folder, filtered by name
    POST /api/upload?name=F     raw file body -> {"ref": "upload://..."} (size-limited while reading)
    POST /api/frames            {"video": REF} -> the frames the model will see, with timestamps
    GET  /v1/models             OpenAI-style model list
    POST /v1/chat/completions   OpenAI-compatible, streaming (SSE) or not

Frames and prompts come from the same ``Predictor`` as ``fastvlm-video predict`` (``prepare``), so the
server sees exactly what predict sees; answers come from a ``Batcher`` that runs the requests waiting
together as one batch (``serve/batcher.py``). With ``api_key`` every route but the page needs
``Authorization: Bearer KEY``. No response names a server path: the folders are shown by their own names.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import io
import logging
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from ..data.dataset import load_sample_media
from ..data.records import MediaRef
from ..errors import FastVlmVideoError
from ..infer.predictor import Predictor
from ..media.kinds import media_type
from .batcher import END, Batcher, Job, QueueFull
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


class _LoopQueue:
    """A thread-safe ``put`` into an asyncio queue: the batcher's thread hands pieces to a request's loop."""

    def __init__(self):
        self.loop, self.queue = asyncio.get_running_loop(), asyncio.Queue()

    def put(self, item) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    async def get(self):
        return await self.queue.get()


def create_app(predictor: Predictor, media_folder: str | Path, upload_folder: str | Path, max_upload_bytes: int,
               model_name: str = "fastvlm-video", api_key: str | None = None, max_batch: int = 8, max_queue: int = 64,
               request_timeout: float = 300.0, decode_workers: int = 2) -> FastAPI:  # fmt: skip
    store = MediaStore(media_folder, upload_folder, max_upload_bytes)
    batcher = Batcher(predictor, max_batch=max_batch, max_queue=max_queue)
    # Media are decoded in a few threads of their own, not one per waiting request: a burst of requests
    # then queues for a decoder instead of thrashing the cores the model needs (and the allocator).
    decoders = ThreadPoolExecutor(max_workers=decode_workers, thread_name_prefix="fastvlm-decode")
    app = FastAPI(title="fastvlm-video", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.batcher = batcher
    app.router.add_event_handler("shutdown", batcher.close)
    app.router.add_event_handler("shutdown", decoders.shutdown)

    async def in_decoder(function: Callable, *args):
        return await asyncio.get_running_loop().run_in_executor(decoders, function, *args)

    def failure(message: str, status: int, code: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse(error_body(store.public(message), code), status_code=status, headers=headers)

    @app.middleware("http")
    async def require_key(request: Request, call_next):
        if api_key and request.url.path != "/":
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                return failure("missing or wrong API key: send 'Authorization: Bearer KEY' (serve --api_key)", 401,
                               "invalid_api_key", {"WWW-Authenticate": "Bearer"})  # fmt: skip
        return await call_next(request)

    @app.exception_handler(RequestError)
    async def request_error(_, exc: RequestError):
        return failure(str(exc), exc.status, exc.code)

    @app.exception_handler(QueueFull)
    async def queue_full(_, exc: QueueFull):
        return failure(str(exc), 429, "rate_limit_exceeded", {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(FastVlmVideoError)
    async def media_error(_, exc: FastVlmVideoError):  # unreadable media, bad settings: the client's input
        return failure(str(exc), 400, "unreadable_media")

    @app.exception_handler(Exception)
    async def internal_error(_, exc: Exception):
        logger.error("request failed: %s", store.public(f"{type(exc).__name__}: {exc}"), exc_info=exc)
        return failure(f"internal error ({type(exc).__name__}); the server log has the details", 500, "internal_error")

    async def json_body(request: Request) -> object:
        try:
            return await request.json()
        except ValueError:
            raise RequestError("the body is not valid JSON") from None

    @app.get("/", response_class=HTMLResponse)
    def page():
        return PAGE.read_text(encoding="utf-8")

    @app.get("/api/videos")
    def videos(q: str = "", limit: int = 500):
        listing = store.listing(query=q, limit=max(1, min(limit, 5000)))
        return {"folder": store.allowed.name, **listing, "max_upload_mb": max_upload_bytes / 2**20,
                "num_frames": predictor.video.num_frames, "image_size": predictor.video.image_size,
                "auth": bool(api_key)}  # fmt: skip

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
        return await in_decoder(frame_previews, predictor, path)

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "local"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        deadline = time.monotonic() + request_timeout
        body = await json_body(request)
        batcher.admit()  # full -> 429 before any decoding
        req = None
        try:
            req = parse_request(body, store)
            prompt = await in_decoder(predictor.prepare, req.messages, req.media)  # media errors -> 400 here
        except BaseException:
            batcher.release()
            raise
        finally:
            for folder in req.temporary if req else ():  # a live window's frames: read once, then gone
                shutil.rmtree(folder, ignore_errors=True)
        job = batcher.submit(Job(prompt, req.max_new_tokens, req.gen_kwargs, deadline, pieces=_LoopQueue()))
        if req.stream:
            return StreamingResponse(stream_events(req, job), media_type="text/event-stream")
        return await answer(request, req, job)

    async def pieces_of(job: Job) -> AsyncIterator[str]:
        while (item := await job.pieces.get()) is not END:
            if isinstance(item, Exception):
                raise item
            yield item

    async def answer(request: Request, req: ChatRequest, job: Job):
        async def collect() -> str:
            return "".join([piece async for piece in pieces_of(job)])

        task = asyncio.ensure_future(collect())
        try:
            while not task.done():  # a client that goes away stops its generation
                await asyncio.wait([task], timeout=0.25)
                if not task.done() and await request.is_disconnected():
                    job.cancel()
            text = task.result().strip()
        finally:
            job.cancel()  # no-op once finished; stops the row if anything above failed
        if job.finish_reason == "timeout":
            raise RequestError(f"no complete answer within {request_timeout:g} s (serve --request_timeout)", 504, "timeout")
        logger.info("answered: %d tokens, first after %.2f s", job.new_tokens, job.first_token_s or 0.0)
        reason = "length" if job.finish_reason == "length" else "stop"
        return completion(model_name, text, len(job.prompt.input_ids), job.new_tokens, reason)

    async def stream_events(req: ChatRequest, job: Job) -> AsyncIterator[str]:
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        try:
            yield chunk(cid, model_name, {"role": "assistant", "content": ""})
            async for piece in pieces_of(job):
                yield chunk(cid, model_name, {"content": piece})
            if job.finish_reason == "timeout":
                yield 'data: {"error": {"message": "no complete answer within the time limit", "type": "timeout"}}\n\n'
                return
            yield chunk(cid, model_name, {}, "length" if job.finish_reason == "length" else "stop")
            yield "data: [DONE]\n\n"
        except Exception as exc:  # the response has started: report in-band, keep serving
            logger.error("generation failed: %s", type(exc).__name__)
            yield f"data: {{\"error\": {{\"message\": \"{type(exc).__name__}\", \"type\": \"internal_error\"}}}}\n\n"
        finally:  # the client went away (the stream is closed early) or the answer is complete
            job.cancel()

    return app
