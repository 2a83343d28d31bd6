"""The page's Live mode on CPU: time to first token per answer, and whether the answers name the camera's motion.

Headless Chromium (Debian's ``chromium``) with a fake camera fed from a synthetic clip of the demo's motion
(``--use-file-for-fake-video-capture``, a raw .y4m played in a loop), against the real ``fastvlm-video serve``
on a loopback port. The live window is the demo's: the model's frames over the time its training clips last.

    python benchmarks/bench_live.py                                       # the tiny random model
    python benchmarks/bench_live.py --model runs/demo/model --out benchmarks/results/bench_live_demo.txt
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import emit  # noqa: E402
from bench_serve import Server  # noqa: E402

from fastvlm_video.demo.synthetic import moving_square_frames, write_video  # noqa: E402
from fastvlm_video.demo.task import CLIP_FRAMES, QUESTION, STEP_PX  # noqa: E402

CAMERA_FPS = 8  # the demo clips' rate


def camera_clip(direction: str, path: Path, seconds: int = 60, size: int = 64) -> Path:
    """A long clip of the demo's motion (STEP_PX per frame, wrapping), so the loop rarely cuts a window."""
    frames = seconds * CAMERA_FPS
    return write_video(path, moving_square_frames(direction, np.random.default_rng(0), frames, size, travel=STEP_PX * frames / size),
                       fps=CAMERA_FPS, codec="rawvideo")  # fmt: skip


def live_answers(base: str, camera: Path, answers: int, frames: int, window_s: float, every_s: float) -> list[dict]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=[
            "--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={camera}"])  # fmt: skip
        page = browser.new_page()
        page.goto(base)
        page.wait_for_function("document.getElementById('live-frames').value !== ''")
        page.fill("#live-frames", str(frames))
        page.fill("#live-window", str(window_s))
        page.fill("#live-every", str(every_s))
        page.fill("#live-question", QUESTION)
        page.click("#live")
        page.wait_for_function(f"document.querySelectorAll('.live-answer[data-ttft-ms]').length >= {answers}",
                               timeout=600_000)  # fmt: skip
        camera_size = page.evaluate("[document.getElementById('cam').videoWidth, document.getElementById('cam').videoHeight]")
        page.click("#live")
        items = page.locator(".live-answer[data-ttft-ms]").all()
        found = [{"answer": i.locator(".text").text_content(), "ttft_ms": float(i.get_attribute("data-ttft-ms")),
                  "camera": camera_size} for i in items]  # fmt: skip
        browser.close()
    return found[::-1][:answers]  # oldest first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="checkpoint (default: a tiny random model, 64 px, 8 frames)")
    parser.add_argument("--answers", type=int, default=6, help="live answers per direction")
    parser.add_argument("--every_s", type=float, default=2.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    window_s = CLIP_FRAMES / CAMERA_FPS  # the demo clips' span: 8 frames over it, as the model was trained
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.model is None:
            from fastvlm_video.model.tiny import save_tiny_checkpoint

            model = save_tiny_checkpoint(tmp / "tiny", image_size=64, num_frames=8)
        else:
            model = args.model
        (tmp / "media").mkdir()
        server = Server(model, tmp / "media")
        try:
            for direction in ("left", "right", "up", "down"):
                found = live_answers(server.base, camera_clip(direction, tmp / f"{direction}.y4m"), args.answers, 8, window_s, args.every_s)
                rows.append((direction, found))
        finally:
            server.stop()
    ttfts = [a["ttft_ms"] for _, found in rows for a in found]
    right = sum(a["answer"].strip().lower() == direction for direction, found in rows for a in found)
    import torch

    lines = [f"# bench_live ({date.today()}, {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; "
             f"model {args.model or 'tiny random (64 px, 8 frames)'})", "",
             f"Live mode in headless Chromium, fake camera = the demo's motion at {CAMERA_FPS} fps; window: 8 frames over "
             f"{window_s:g} s; a new answer every {args.every_s:g} s; time to first token measured in the page.", "",
             "| camera moves | answers | time to first token, median ms | min-max ms |", "| --- | --- | --- | --- |"]  # fmt: skip
    for direction, found in rows:
        t = [a["ttft_ms"] for a in found]
        lines.append(f"| {direction} | {', '.join(repr(a['answer'][:20]) for a in found)} | {statistics.median(t):.0f} | "
                     f"{min(t):.0f}-{max(t):.0f} |")  # fmt: skip
    lines += ["", f"camera frames as delivered by Chromium: {rows[0][1][0]['camera'][0]}x{rows[0][1][0]['camera'][1]} px"]
    lines += ["", f"all answers: time to first token median **{statistics.median(ttfts):.0f} ms**; "
              f"{right} of {len(ttfts)} answers name the camera's motion"]  # fmt: skip
    return emit(lines, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
