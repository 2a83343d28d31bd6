"""Load on ``fastvlm-video serve`` over loopback: concurrent clients, micro-batching vs one at a time, 429s, memory.

Starts the real server (a subprocess, as users run it) on a free loopback port and drives it with real HTTP
clients (httpx, one thread each). Bounded in count and time; talks to 127.0.0.1 only.

    python benchmarks/bench_serve.py                                   # the tiny random model, built on the fly
    python benchmarks/bench_serve.py --model runs/demo/model --media_folder runs/demo/data/clips
    python benchmarks/bench_serve.py --soak_s 600 --out benchmarks/results/bench_serve_soak.txt

Phases:
  throughput  ``--clients`` clients x ``--requests`` requests each, against ``--max_batch 1`` (one request at a
              time, as the server did before batching) and ``--max_batch 8``, alternated ``--rounds`` times;
              p50/p99 latency and requests/s, errors counted (any status but 200).
  overload    the same clients at once against ``--max_queue 4``: how many got 429 with ``Retry-After``.
  soak        (``--soak_s`` > 0) continuous load for that long; the server's RSS sampled every 10 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import emit  # noqa: E402

from fastvlm_video.demo.synthetic import moving_square_frames, write_video  # noqa: E402

QUESTION = "Which way does the square move?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``fastvlm-video serve`` in a subprocess on a free loopback port."""

    def __init__(self, model: Path, media: Path, **options):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        flags = [x for k, v in options.items() for x in (f"--{k}", str(v))]
        cmd = [sys.executable, "-m", "fastvlm_video.cli", "serve", "--model", str(model), "--media_folder", str(media),
               "--port", str(self.port), "--device", "cpu", *flags]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.base}/v1/models", timeout=1)
                return
            except httpx.TransportError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the server exited: {' '.join(cmd)}") from None
                time.sleep(0.2)
        raise RuntimeError("the server did not start within 300 s")

    def rss_mb(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def ask(http: httpx.Client, base: str, clip: str, max_tokens: int) -> tuple[int, float, dict]:
    body = {"max_tokens": max_tokens, "messages": [{"role": "user", "content": [
        {"type": "video_url", "video_url": {"url": clip}}, {"type": "text", "text": QUESTION}]}]}  # fmt: skip
    start = time.perf_counter()
    response = http.post(f"{base}/v1/chat/completions", json=body, timeout=600)
    return response.status_code, time.perf_counter() - start, dict(response.headers)


def load(base: str, clips: list[str], clients: int, requests: int, max_tokens: int, until: float | None = None) -> dict:
    """``clients`` threads, each ``requests`` requests back to back (or until ``until``); latencies and statuses."""
    latencies, statuses, lock = [], [], threading.Lock()

    def client(i: int) -> None:
        n, http = 0, httpx.Client()  # one keep-alive connection per client, as OpenAI clients do
        while (n < requests) if until is None else (time.monotonic() < until):
            status, seconds, _ = ask(http, base, clips[(i + n) % len(clips)], max_tokens)
            with lock:
                statuses.append(status)
                latencies.append(seconds)
            n += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ok = sorted(s for s, code in zip(latencies, statuses) if code == 200)
    return {"n": len(statuses), "errors": sum(code != 200 for code in statuses), "wall": wall, "rps": len(ok) / wall,
            "p50": float(np.percentile(ok, 50)) if ok else float("nan"),
            "p99": float(np.percentile(ok, 99)) if ok else float("nan")}  # fmt: skip


def overload(base: str, clip: str, clients: int, max_tokens: int) -> dict:
    results, barrier = [], threading.Barrier(clients)

    def client() -> None:
        with httpx.Client() as http:
            barrier.wait()
            results.append(ask(http, base, clip, max_tokens))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refused = [headers for status, _, headers in results if status == 429]
    return {"ok": sum(s == 200 for s, _, _ in results), "429": len(refused),
            "retry_after": all("retry-after" in h for h in refused), "other": sum(s not in (200, 429) for s, _, _ in results)}  # fmt: skip


def tiny_setup(root: Path) -> tuple[Path, Path]:
    from fastvlm_video.model.tiny import save_tiny_checkpoint

    model = save_tiny_checkpoint(root / "tiny", image_size=64, num_frames=8)
    media = root / "clips"
    rng = np.random.default_rng(0)
    for i, direction in enumerate(["left", "right", "up", "down"] * 2):
        write_video(media / f"{direction}_{i}.mp4", moving_square_frames(direction, rng, num_frames=16), fps=8, gop=8)
    return model, media


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="checkpoint (default: a tiny random model built on the fly)")
    parser.add_argument("--media_folder", type=Path, help="clips the clients ask about (default: synthetic)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=16, help="requests per client per round (a few seconds of load at least)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max_tokens", type=int, default=8)
    parser.add_argument("--soak_s", type=float, default=0.0, help="seconds of continuous load for the memory check")
    parser.add_argument("--out", type=Path, help="also write the table here (markdown)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        model, media = (args.model, args.media_folder) if args.model else tiny_setup(Path(tmp))
        clips = sorted(p.relative_to(media).as_posix() for p in media.rglob("*.mp4"))[:32]
        runs: dict[int, list[dict]] = {1: [], 8: []}
        for _ in range(args.rounds):
            for batch in (1, 8):
                server = Server(model, media, max_batch=batch, max_queue=256)
                try:
                    load(server.base, clips, 2, 1, args.max_tokens)  # warm-up
                    runs[batch].append(load(server.base, clips, args.clients, args.requests, args.max_tokens))
                finally:
                    server.stop()
        server = Server(model, media, max_batch=8, max_queue=4)
        try:
            over = overload(server.base, clips[0], args.clients, args.max_tokens)
        finally:
            server.stop()
        soak = None
        if args.soak_s > 0:
            server = Server(model, media, max_batch=8, max_queue=256)
            try:
                samples, stop = [], time.monotonic() + args.soak_s
                sampler_done = threading.Event()

                def sample() -> None:
                    while not sampler_done.wait(10):
                        samples.append((time.monotonic(), server.rss_mb()))

                sampler = threading.Thread(target=sample)
                sampler.start()
                before = server.rss_mb()
                soak = load(server.base, clips, args.clients, 0, args.max_tokens, until=stop)
                sampler_done.set()
                sampler.join()
                soak.update(before=before, samples=samples)
            finally:
                server.stop()

    def med(batch: int, key: str) -> float:
        return statistics.median(r[key] for r in runs[batch])

    import torch

    lines = [
        f"# bench_serve ({date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}; model {args.model or 'tiny random (64 px, 8 frames)'})",
        "",
        f"{args.clients} concurrent clients x {args.requests} requests, max_tokens {args.max_tokens}, "
        f"{args.rounds} rounds alternated; medians over rounds. The machine may be shared: compare the rows of one run.",
        "",
        "| server | requests | errors | p50 latency s | p99 latency s | requests/s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for batch, name in ((1, "one at a time (--max_batch 1)"), (8, "micro-batched (--max_batch 8)")):
        lines.append(f"| {name} | {sum(r['n'] for r in runs[batch])} | {sum(r['errors'] for r in runs[batch])} | "
                     f"{med(batch, 'p50'):.2f} | {med(batch, 'p99'):.2f} | {med(batch, 'rps'):.2f} |")  # fmt: skip
    lines += ["", f"throughput ratio (batched / one at a time): **{med(8, 'rps') / med(1, 'rps'):.2f}x**", "",
              f"overload ({args.clients} at once, --max_queue 4): {over['ok']} answered, {over['429']} got 429 "
              f"(Retry-After on all: {over['retry_after']}), {over['other']} other statuses"]  # fmt: skip
    if soak:
        steady = [mb for t, mb in soak["samples"]][len(soak["samples"]) // 10 :] or [soak["before"]]
        lines += ["", f"soak: {args.soak_s:.0f} s, {soak['n']} requests, {soak['errors']} errors, {soak['rps']:.2f} requests/s; "
                  f"RSS before load {soak['before']:.0f} MB, first sample {soak['samples'][0][1]:.0f} MB, "
                  f"last {soak['samples'][-1][1]:.0f} MB, max {max(mb for _, mb in soak['samples']):.0f} MB; "
                  f"after the first 10% of samples: {min(steady):.0f}-{max(steady):.0f} MB "
                  f"({100 * (max(steady) - min(steady)) / min(steady):.1f}% spread)",
                  "", "RSS every minute (MB): " + ", ".join(f"{mb:.0f}" for _, mb in soak["samples"][5::6])]  # fmt: skip
    return emit(lines, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
