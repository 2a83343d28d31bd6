"""``fastvlm-video serve``: the page in a real headless Chromium and the OpenAI-compatible API through a
real HTTP client, against a real uvicorn server on a loopback port with the tiny random model."""

import base64
import json
import shutil
import socket
import threading
import time

import numpy as np
import pytest

fastapi = pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'fastvlm-video[serve]'")
uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install 'fastvlm-video[serve]'")
httpx = pytest.importorskip("httpx", reason="httpx (the test HTTP client) is not installed")

from fastvlm_video.demo.synthetic import moving_square_frames, write_video  # noqa: E402
from fastvlm_video.infer.predictor import Predictor  # noqa: E402
from fastvlm_video.serve.app import create_app, frame_previews  # noqa: E402

MAX_UPLOAD = 300_000
QUESTION = "Which way does the square move?"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    allowed = root / "allowed"
    write_video(allowed / "left.mp4", moving_square_frames("left", np.random.default_rng(3), num_frames=12), fps=8, gop=8)
    (allowed / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(500))
    (root / "secret.mp4").write_bytes((allowed / "left.mp4").read_bytes())  # outside the allowed folder
    (allowed / "link.mp4").symlink_to(root / "secret.mp4")
    return root


@pytest.fixture(scope="module")
def predictor(tiny_model_dir):
    return Predictor.from_pretrained(tiny_model_dir, device="cpu", num_frames=3)


@pytest.fixture(scope="module")
def server(predictor, folders):
    app = create_app(predictor, folders / "allowed", folders / "uploads", MAX_UPLOAD, "tiny")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    srv.should_exit = True
    thread.join(10)


def chat_body(url, stream=False, **extra):
    content = [{"type": "video_url", "video_url": {"url": url}}, {"type": "text", "text": QUESTION}]
    return {"model": "tiny", "stream": stream, "max_tokens": 6, "messages": [{"role": "user", "content": content}], **extra}


def read_stream(base, body) -> tuple[str, list[dict]]:
    events = []
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(line[6:])
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    return "".join(c["choices"][0]["delta"].get("content", "") for c in chunks), chunks


def test_api_answers_like_predict_streaming_and_not(server, predictor, folders):
    expected = predictor.ask(folders / "allowed" / "left.mp4", QUESTION, max_new_tokens=6)
    response = httpx.post(f"{server}/v1/chat/completions", json=chat_body("left.mp4"), timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["message"]["content"] == expected != ""
    assert body["usage"]["completion_tokens"] == 6 and body["choices"][0]["finish_reason"] == "length"

    text, chunks = read_stream(server, chat_body("left.mp4", stream=True))
    assert text.strip() == expected and len(chunks) >= 3
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant" and chunks[-1]["choices"][0]["finish_reason"] == "length"

    data = base64.b64encode((folders / "allowed" / "left.mp4").read_bytes()).decode()
    as_data = httpx.post(f"{server}/v1/chat/completions", json=chat_body(f"data:video/mp4;base64,{data}"), timeout=60)
    assert as_data.json()["choices"][0]["message"]["content"] == expected


def test_frames_are_the_ones_predict_sees(server, predictor, folders):
    response = httpx.post(f"{server}/api/frames", json={"video": "left.mp4"}, timeout=60)
    assert response.status_code == 200
    info = response.json()
    prompt = predictor.prompt_for(folders / "allowed" / "left.mp4", QUESTION)
    assert info["num_frames"] == prompt.pixel_values.shape[0] == 3
    assert [f["t"] for f in info["frames"]] == [round(t, 3) for t in prompt.timestamps[0]]
    assert info == frame_previews(predictor, folders / "allowed" / "left.mp4")


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (chat_body("../secret.mp4"), 403, "outside the allowed folder"),
        (chat_body("link.mp4"), 403, "outside the allowed folder"),
        (chat_body("/etc/passwd"), 403, "outside the allowed folder"),
        (chat_body("missing.mp4"), 404, "no such file"),
        (chat_body("broken.mp4"), 400, "broken.mp4"),
        (chat_body("https://example.com/a.mp4"), 400, "never downloads"),
        (chat_body("data:video/mp4;base64,@@@"), 400, "not valid base64"),
        (chat_body("data:video/mp4;base64," + "A" * 500_000), 413, "limit"),
        (chat_body("left.mp4", max_tokens=0), 400, "max_tokens"),
        ({"messages": []}, 400, "non-empty list"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, 400, "role"),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, 400, "last message"),
        ([1, 2], 400, "JSON object"),
    ],
)
def test_bad_requests_get_a_clear_error_and_the_server_keeps_serving(server, body, status, words):
    response = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"]
    assert httpx.get(f"{server}/v1/models", timeout=10).json()["data"][0]["id"] == "tiny"


def test_uploads_are_size_limited_and_typed(server, folders):
    ok = httpx.post(f"{server}/api/upload", params={"name": "clip.mp4"}, content=(folders / "allowed" / "left.mp4").read_bytes())
    assert ok.status_code == 200 and ok.json()["ref"].startswith("upload://")
    assert httpx.post(f"{server}/api/frames", json={"video": ok.json()["ref"]}, timeout=60).json()["num_frames"] == 3
    big = httpx.post(f"{server}/api/upload", params={"name": "big.mp4"}, content=bytes(MAX_UPLOAD + 1))
    assert big.status_code == 413 and "limit" in big.json()["error"]["message"]
    chunked = httpx.post(f"{server}/api/upload", params={"name": "big.mp4"}, content=iter([bytes(100_000)] * 4))
    assert chunked.status_code == 413  # no Content-Length: counted while reading
    assert httpx.post(f"{server}/api/upload", params={"name": "notes.txt"}, content=b"hi").status_code == 400
    assert httpx.post(f"{server}/api/frames", json={"video": "upload://../allowed/left.mp4"}).status_code == 403
    assert not [p for p in (folders / "uploads").iterdir() if p.stat().st_size > MAX_UPLOAD]
    assert httpx.post(f"{server}/api/frames", content=b"{not json").json()["error"]["message"] == "the body is not valid JSON"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH (Debian: apt-get install chromium)")
def test_page_in_a_real_browser_upload_frames_streamed_answer(server, predictor, folders):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (the browser driver) is not installed")
    expected = predictor.ask(folders / "allowed" / "left.mp4", QUESTION, max_new_tokens=256)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(server)
        page.wait_for_selector("#pick option[value='left.mp4']", state="attached")
        page.set_input_files("#file", str(folders / "allowed" / "left.mp4"))
        page.wait_for_function("document.querySelectorAll('#frames figure').length === 3")
        captions = page.locator("#frames figcaption").all_inner_texts()
        timestamps = predictor.prompt_for(folders / "allowed" / "left.mp4", QUESTION).timestamps[0]
        assert all(c.endswith(" s") for c in captions) and len(captions) == len(timestamps)
        assert [float(c[:-2]) for c in captions] == pytest.approx(timestamps, abs=0.0051)  # shown to 2 decimals
        page.fill("#question", QUESTION)
        page.click("#ask")
        page.wait_for_function("document.getElementById('status').textContent === 'done'", timeout=60_000)
        assert page.inner_text("#answer") == expected and page.inner_text("#error") == ""
        page.select_option("#pick", "broken.mp4")  # a bad file: an error on the page, not a dead page
        page.wait_for_function("document.getElementById('error').textContent.includes('broken.mp4')")
        assert page.locator("#ask").is_disabled()
        browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_serve_command_binds_loopback_and_answers(tiny_model_dir, folders):
    import os
    import subprocess
    import sys

    port = free_port()
    cmd = [sys.executable, "-m", "fastvlm_video.cli", "serve", "--model", str(tiny_model_dir), "--media_folder",
           str(folders / "allowed"), "--port", str(port), "--device", "cpu", "--num_frames", "2"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ})
    try:
        for _ in range(600):
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/videos", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.1)
        assert response.json()["videos"] == ["broken.mp4", "left.mp4"]  # the symlink out is not listed
        assert response.json()["num_frames"] == 2
        assert "<h1>fastvlm-video</h1>" in httpx.get(f"http://127.0.0.1:{port}/").text
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=chat_body("left.mp4"), timeout=60)
        assert answer.status_code == 200 and answer.json()["model"] == tiny_model_dir.name
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_refuses_a_missing_media_folder_before_loading(tiny_model_dir, tmp_path, capsys):
    from fastvlm_video.cli import main

    assert main(["serve", "--model", str(tiny_model_dir), "--media_folder", str(tmp_path / "nope")]) == 1
    assert "is not a folder" in capsys.readouterr().err


# --- many users, access control, exposure -------------------------------------------------------------------


def start_server(app) -> tuple[str, object, object]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", srv, thread


@pytest.fixture
def keyed_server(predictor, folders):
    base, srv, thread = start_server(create_app(predictor, folders / "allowed", folders / "uploads", MAX_UPLOAD, "tiny",
                                                api_key="s3cret"))  # fmt: skip
    yield base
    srv.should_exit = True
    thread.join(10)


def test_with_an_api_key_every_api_call_needs_it(keyed_server):
    assert httpx.get(keyed_server, timeout=10).status_code == 200  # the page itself asks for the key
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        response = httpx.post(f"{keyed_server}/v1/chat/completions", json=chat_body("left.mp4"), headers=headers, timeout=60)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert httpx.get(f"{keyed_server}/api/videos", headers=headers, timeout=10).status_code == 401
    ok = httpx.post(f"{keyed_server}/v1/chat/completions", json=chat_body("left.mp4"),
                    headers={"Authorization": "Bearer s3cret"}, timeout=60)  # fmt: skip
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"]
    assert httpx.get(f"{keyed_server}/api/videos", headers={"Authorization": "Bearer s3cret"}).json()["auth"] is True


def test_concurrent_requests_are_batched_and_each_answers_like_predict(predictor, folders):
    app = create_app(predictor, folders / "allowed", folders / "uploads", MAX_UPLOAD, "tiny", max_batch=8)
    base, srv, thread = start_server(app)
    expected = predictor.ask(folders / "allowed" / "left.mp4", QUESTION, max_new_tokens=6)
    results = {}

    def client(i):
        if i % 2:
            results[i] = read_stream(base, chat_body("left.mp4", stream=True))[0].strip()
        else:
            results[i] = httpx.post(f"{base}/v1/chat/completions", json=chat_body("left.mp4"), timeout=120).json()[
                "choices"][0]["message"]["content"]  # fmt: skip

    try:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
    finally:
        srv.should_exit = True
        thread.join(10)
    assert results == dict.fromkeys(range(8), expected)
    assert sum(app.state.batcher.batches) == 8


def test_past_max_queue_requests_get_429_with_retry_after(predictor, folders):
    app = create_app(predictor, folders / "allowed", folders / "uploads", MAX_UPLOAD, "tiny", max_queue=2)
    base, srv, thread = start_server(app)
    try:
        app.state.batcher.admit()
        app.state.batcher.admit()  # two requests hold the queue
        full = httpx.post(f"{base}/v1/chat/completions", json=chat_body("left.mp4"), timeout=60)
        assert full.status_code == 429 and int(full.headers["retry-after"]) >= 1
        assert full.json()["error"]["code"] == "rate_limit_exceeded"
        app.state.batcher.release()
        assert httpx.post(f"{base}/v1/chat/completions", json=chat_body("left.mp4"), timeout=60).status_code == 200
        bad = httpx.post(f"{base}/v1/chat/completions", json=chat_body("broken.mp4"), timeout=60)
        assert bad.status_code == 400  # a failed request gives its place back ...
        assert httpx.post(f"{base}/v1/chat/completions", json=chat_body("left.mp4"), timeout=60).status_code == 200
    finally:
        srv.should_exit = True
        thread.join(10)


def test_a_client_that_disconnects_stops_its_generation(predictor, folders):
    app = create_app(predictor, folders / "allowed", folders / "uploads", MAX_UPLOAD, "tiny")
    base, srv, thread = start_server(app)
    try:
        with httpx.stream("POST", f"{base}/v1/chat/completions", json=chat_body("left.mp4", stream=True, max_tokens=4000),
                          timeout=60) as response:  # fmt: skip
            lines = response.iter_lines()
            assert next(line for line in lines if line.startswith("data: "))
        for _ in range(600):  # the worker notices within a token or two
            if app.state.batcher.finished:
                break
            time.sleep(0.1)
        reason, tokens = app.state.batcher.finished[-1]
        assert reason == "cancelled" and tokens < 4000
    finally:
        srv.should_exit = True
        thread.join(10)


def test_listing_hides_dot_files_puts_videos_first_filters_and_says_when_cut(predictor, tmp_path):
    allowed = tmp_path / "clips"
    for name in ("b.png", "a.png", "z.mp4", ".hidden.mp4", ".cache/x.mp4", "sub/y.MOV", "notes.txt"):
        (allowed / name).parent.mkdir(parents=True, exist_ok=True)
        (allowed / name).write_bytes(b"x")
    base, srv, thread = start_server(create_app(predictor, allowed, tmp_path / "up", MAX_UPLOAD, "tiny"))
    try:
        listing = httpx.get(f"{base}/api/videos", timeout=10).json()
        assert listing["videos"] == ["sub/y.MOV", "z.mp4", "a.png", "b.png"] and listing["truncated"] is False
        assert listing["folder"] == "clips"  # never the server's absolute path
        cut = httpx.get(f"{base}/api/videos", params={"limit": 2}, timeout=10).json()
        assert cut["videos"] == ["sub/y.MOV", "z.mp4"] and cut["truncated"] is True and cut["total"] == 4
        assert httpx.get(f"{base}/api/videos", params={"q": "Y."}, timeout=10).json()["videos"] == ["sub/y.MOV"]
    finally:
        srv.should_exit = True
        thread.join(10)


def test_no_response_names_a_server_path(server, folders):
    secret = str(folders.resolve())
    for body in (chat_body("broken.mp4"), chat_body("x" * 10_000 + ".mp4"), chat_body("missing.mp4")):
        response = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=60)
        assert response.status_code in (400, 404) and secret not in response.text, response.text
    assert secret not in httpx.get(f"{server}/api/videos").text


def test_percent_encoded_paths_are_decoded(server, folders):
    shutil.copy(folders / "allowed" / "left.mp4", folders / "allowed" / "my clip.mp4")
    response = httpx.post(f"{server}/api/frames", json={"video": "my%20clip.mp4"}, timeout=60)
    assert response.status_code == 200 and response.json()["num_frames"] == 3


def test_a_bounded_fuzz_of_malformed_requests_gets_no_5xx(server, folders):
    rng = np.random.default_rng(0)
    junk = ["", "\x00", "../" * 50, "x" * 10_000, "%00", "%2e%2e/secret.mp4", "file:///etc/passwd", "upload://", "data:",
            "data:video/mp4;base64,", "ftp://a", "left.mp4\x00.png", "\ud800", "🎞️.mp4", "C:\\clip.mp4", ".", "/"]
    values = [None, True, -1, 1e308, [], {}, [{}], {"url": 3}, "left.mp4", *junk]
    statuses = []
    start = time.monotonic()
    for i in range(150):
        kind = i % 6
        if kind == 0:
            body = chat_body(str(rng.choice(junk)))
        elif kind == 1:
            body = chat_body("left.mp4", **{str(rng.choice(["max_tokens", "temperature", "top_p", "stream"])): values[rng.integers(len(values))]})
        elif kind == 2:
            body = {"messages": [{"role": rng.choice(["user", "system", "tool", 3]), "content": values[rng.integers(len(values))]}]}
        elif kind == 3:
            body = {"messages": [{"role": "user", "content": [{"type": rng.choice(["video_url", "image_url", "text", "x"]),
                                                             "video_url": values[rng.integers(len(values))]}]}]}  # fmt: skip
        elif kind == 4:
            body = values[rng.integers(len(values))]
        else:
            raw = bytes(rng.integers(0, 256, int(rng.integers(1, 300)), dtype=np.uint8))
            response = httpx.post(f"{server}/v1/chat/completions", content=raw, timeout=60)
            statuses.append(response.status_code)
            continue
        path = "/api/frames" if i % 4 == 3 else "/v1/chat/completions"
        payload = {"video": body["messages"][0]["content"] if isinstance(body, dict) and body.get("messages") else body}
        try:
            response = httpx.post(f"{server}{path}", json=payload if path == "/api/frames" else body, timeout=60)
        except UnicodeEncodeError:  # a lone surrogate cannot even be sent as JSON: nothing reaches the server
            continue
        statuses.append(response.status_code)
        assert str(folders.resolve()) not in response.text
        assert time.monotonic() - start < 600, "the fuzz is bounded in time"
    assert len(statuses) > 100 and max(statuses) < 500, sorted(set(statuses))


def test_serve_refuses_a_network_address_without_a_key_before_loading(tiny_model_dir, folders, capsys):
    from fastvlm_video.cli import main

    assert main(["serve", "--model", str(tiny_model_dir / "nope"), "--media_folder", str(folders / "allowed"),
                 "--host", "0.0.0.0"]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert "--api_key" in err and "--insecure" in err


# --- live camera -------------------------------------------------------------------------------------------------


def test_video_frames_parts_answer_like_the_same_frames_as_a_folder(server, predictor, folders, tmp_path):
    from PIL import Image

    frames = moving_square_frames("left", np.random.default_rng(7), num_frames=4)
    urls, folder = [], tmp_path / "window"
    folder.mkdir()
    for i, frame in enumerate(frames):
        buffer = __import__("io").BytesIO()
        Image.fromarray(frame).save(buffer, format="PNG")
        (folder / f"{i}.png").write_bytes(buffer.getvalue())
        urls.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
    (folder / "fps.txt").write_text("2")
    content = [{"type": "video_frames", "video_frames": {"frames": urls, "fps": 2}}, {"type": "text", "text": QUESTION}]
    body = {"max_tokens": 6, "messages": [{"role": "user", "content": content}]}
    response = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == predictor.ask(folder, QUESTION, max_new_tokens=6)
    assert not [p for p in (folders / "uploads").iterdir() if p.name.startswith("frames-")]  # read once, then removed
    bad = {"messages": [{"role": "user", "content": [{"type": "video_frames", "video_frames": {"frames": urls, "fps": 0}}]}]}
    assert httpx.post(f"{server}/v1/chat/completions", json=bad, timeout=60).status_code == 400


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH (Debian: apt-get install chromium)")
def test_live_mode_answers_about_a_fake_camera_in_a_real_browser(server, folders, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (the browser driver) is not installed")
    frames = np.repeat(np.repeat(moving_square_frames("up", np.random.default_rng(1), num_frames=16), 2, 1), 2, 2)
    camera = write_video(tmp_path / "camera.y4m", frames, fps=8, codec="rawvideo")  # raw YUV4MPEG2, played in a loop
    sent = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={camera}"])  # fmt: skip
        page = browser.new_page()
        page.on("request", lambda r: sent.append(r.post_data_json) if r.url.endswith("/v1/chat/completions") else None)
        page.goto(server)
        page.wait_for_function("document.getElementById('live-frames').value === '3'")  # the model's frame count
        page.fill("#live-window", "1.5")
        page.fill("#live-every", "1")
        page.click("#live")
        page.wait_for_function("document.querySelectorAll('.live-answer[data-ttft-ms]').length >= 2", timeout=120_000)
        page.click("#live")  # stop
        first = page.locator(".live-answer[data-ttft-ms]").last  # answers are listed newest first
        shown = [img.get_attribute("src") for img in first.locator("img").all()]
        answer, ttft = first.locator(".text").text_content(), float(first.get_attribute("data-ttft-ms"))
        assert "first token" in first.locator(".meta").inner_text() and page.inner_text("#live-error") == ""
        browser.close()
    window = sent[0]["messages"][0]["content"][0]["video_frames"]
    assert window["frames"] == shown and len(shown) == 3 and window["fps"] == 2  # frames and answer shown together
    assert ttft > 0
    again = {"max_tokens": 256, "messages": sent[0]["messages"]}  # the same window through the API
    assert httpx.post(f"{server}/v1/chat/completions", json=again, timeout=60).json()["choices"][0]["message"]["content"] == answer
