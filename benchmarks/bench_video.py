"""Frames for one 8-frame sample at 1024 px: the seed's pipeline against ours, side by side.

Pipelines (each returns the (8, 3, 1024, 1024) pixels a FastVLM forward pass takes):
  (a) seed      decord ``get_batch`` at full resolution + per-frame PIL ``CLIPImageProcessorPil``
                with LLaVA's pad (expand to a black square first)
  (b) hf        ``transformers.video_utils.load_video`` (PyAV) + the same per-frame processor
  (c) exact     ours, uniform exact (``load_video_tensor``), PyAV; (c') the same with decord
  (d) keyframe  ours, keyframe mode
  (e) bound     the lower bound of (d): seek + decode only the keyframes (d) uses, nothing else

Reported: median wall seconds and median CPU seconds (all threads) per sample — on a shared
machine CPU time is the steadier number — ratios to (a), and, in a fresh subprocess per
pipeline, the peak RSS rise over the RSS after imports. Then DataLoader throughput.

    python benchmarks/bench_video.py --quick            # two small clips, a few repeats
    python benchmarks/bench_video.py                    # the acceptance rows (slow: encodes clips once)
    python benchmarks/bench_video.py --memory-only      # just the RSS rows
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, make_clip  # noqa: E402

NUM_FRAMES, SIZE = 8, 1024
PIPELINES = ("seed", "hf", "exact", "exact_decord", "keyframe", "bound")
# (seconds, resolution, gop): gop 0 = one keyframe for the whole clip
QUICK_CLIPS = [(10, "480p", 30), (60, "720p", 250)]
FULL_CLIPS = [(60, "720p", 250), (60, "720p", 30), (60, "720p", 0), (60, "1080p", 250), (300, "720p", 250), (10, "480p", 30)]
MEMORY_CLIP = (4, "4k", 250)


# ---------------------------------------------------------------- pipelines


def _processor():
    from transformers.models.clip import CLIPImageProcessorPil

    return CLIPImageProcessorPil(size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE}, image_mean=[0, 0, 0], image_std=[1, 1, 1])


def _pad_and_process(frames: np.ndarray, processor) -> torch.Tensor:
    """LLaVA's ``process_images`` with ``image_aspect_ratio="pad"``: one processor call per frame."""
    from PIL import Image

    out = []
    for frame in frames:
        image = Image.fromarray(frame)
        side = max(image.size)
        square = Image.new("RGB", (side, side), (0, 0, 0))
        square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
        out.append(processor(images=square, return_tensors="pt")["pixel_values"][0])
    return torch.stack(out)


def _keyframes_needed(path: str) -> list[int]:
    """The raw timestamps of the keyframes keyframe mode decodes (computed outside the timing)."""
    from fastvlm_video.media import pyav_backend
    from fastvlm_video.media.video import plan_frames

    index = pyav_backend.read_index(path)
    plan = plan_frames(index, NUM_FRAMES, "keyframe")
    return [index.pts[i] for i in sorted(set(plan.indices)) if index.is_keyframe(i)]


def _decode_keyframes_only(path: str, pts: list[int]) -> int:
    import av

    decoded = 0
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for ts in pts:
            container.seek(ts, stream=stream, backward=True, any_frame=False)
            packet = next(p for p in container.demux(stream) if p.pts == ts)
            decoded += len([*stream.decode(packet), *stream.decode(None)])
    return decoded


def build_pipeline(name: str, path: str) -> Callable[[], object]:
    """A zero-argument callable running pipeline ``name`` on ``path`` once."""
    from fastvlm_video.media.video import load_video_tensor

    if name == "seed":
        import decord

        processor = _processor()

        def seed():
            reader = decord.VideoReader(path, ctx=decord.cpu(0))
            indices = np.linspace(0, len(reader) - 1, NUM_FRAMES).astype(int)
            return _pad_and_process(reader.get_batch(indices).asnumpy(), processor)

        return seed
    if name == "hf":
        from transformers.video_utils import load_video

        processor = _processor()
        return lambda: _pad_and_process(load_video(path, num_frames=NUM_FRAMES, backend="pyav")[0], processor)
    if name in ("exact", "exact_decord", "keyframe"):
        backend = "decord" if name == "exact_decord" else "pyav"
        sampling = "keyframe" if name == "keyframe" else "uniform"
        return lambda: load_video_tensor(path, NUM_FRAMES, SIZE, sampling, "pad", backend).frames
    if name == "bound":
        pts = _keyframes_needed(path)
        return lambda: _decode_keyframes_only(path, pts)
    raise ValueError(name)


# ---------------------------------------------------------------- measurements


def time_pipeline(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds over ``repeats`` runs after one warm-up run."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_rss_mb() -> float:
    """VmHWM (peak RSS) of this process, MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def memory_child(name: str, path: str) -> dict:
    """Run in a fresh process: peak RSS rise of one pipeline run over the RSS after imports."""
    import av  # noqa: F401  (imports count as the baseline, as in a DataLoader worker)
    import decord  # noqa: F401
    import transformers.models.clip  # noqa: F401

    fn = build_pipeline(name, path)
    base = _rss_mb()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak to the current RSS
    out = fn()
    peak = _peak_rss_mb()
    out_mb = out.numel() * out.element_size() / 2**20 if isinstance(out, torch.Tensor) else 0.0
    return {"pipeline": name, "base_mb": base, "rise_mb": peak - base, "output_mb": out_mb}


def measure_memory(name: str, path: str) -> dict:
    cmd = [sys.executable, __file__, "--_memory-child", name, path]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


class _ClipDataset(torch.utils.data.Dataset):
    """``n`` samples of one clip, each a different 8-frame window (so nothing is cached)."""

    def __init__(self, path: str, n: int, sampling: str, as_float: bool):
        from fastvlm_video.media import pyav_backend

        self.path, self.n, self.sampling, self.as_float = path, n, sampling, as_float
        self.duration = pyav_backend.read_index(path).timestamps[-1]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        from fastvlm_video.media.video import load_video_tensor

        start = self.duration * 0.5 * i / self.n
        frames = load_video_tensor(self.path, NUM_FRAMES, SIZE, self.sampling, start=start).frames
        return frames.float().div_(255) if self.as_float else frames


def loader_throughput(path: str, workers: int, sampling: str, as_float: bool, n: int) -> float:
    """Samples per second through a DataLoader (batch 2) over ``n`` samples, worker start-up included."""
    loader = torch.utils.data.DataLoader(_ClipDataset(path, n, sampling, as_float), batch_size=2, num_workers=workers)
    start = time.perf_counter()
    for batch in loader:
        batch.float().div_(255) if batch.dtype == torch.uint8 else batch  # the collator's scaling
    return n / (time.perf_counter() - start)


# ---------------------------------------------------------------- report


def versions() -> str:
    import av
    import decord
    import transformers

    return (
        f"python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, "
        f"av {av.__version__} (FFmpeg libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}), decord {decord.__version__}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"
    )


def speed_table(clips: list[tuple[int, str, int]], pipelines: list[str], repeats: int) -> list[str]:
    rows = [
        "| clip | pipeline | wall s | CPU s | wall vs (a) | CPU vs (a) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for spec in clips:
        path = str(make_clip(*spec))
        label = f"{spec[0]} s {spec[1]} GOP {spec[2] or 'single'}"
        results = {}
        for name in pipelines:
            results[name] = time_pipeline(build_pipeline(name, path), repeats)
            print(f"{label:28s} {name:13s} wall {results[name][0]:.3f}s cpu {results[name][1]:.3f}s", file=sys.stderr, flush=True)
        ref = results.get("seed")
        for name, (wall, cpu) in results.items():
            ratio = f"{ref[0] / wall:.1f}x | {ref[1] / cpu:.1f}x" if ref else "- | -"
            rows.append(f"| {label} | {name} | {wall:.3f} | {cpu:.3f} | {ratio} |")
    return rows


def memory_table(pipelines: list[str]) -> list[str]:
    path = str(make_clip(*MEMORY_CLIP))
    rows = ["| clip | pipeline | RSS after imports MB | peak rise MB | output MB | budget (1.5 x output + 300) MB |", "|---|---|---:|---:|---:|---:|"]
    for name in pipelines:
        m = measure_memory(name, path)
        print(f"memory {name}: {m}", file=sys.stderr, flush=True)
        budget = f"{1.5 * m['output_mb'] + 300:.0f}" if m["output_mb"] else "-"
        rows.append(f"| {MEMORY_CLIP[0]} s 4K | {name} | {m['base_mb']:.0f} | {m['rise_mb']:.0f} | {m['output_mb']:.0f} | {budget} |")
    return rows


def loader_table(n: int) -> list[str]:
    path = str(make_clip(60, "720p", 250))
    rows = ["| sampling | dtype returned by the worker | workers | samples/s |", "|---|---|---:|---:|"]
    for sampling in ("uniform", "keyframe"):
        for as_float in (False, True):
            for workers in (0, 1, 2):
                rate = loader_throughput(path, workers, sampling, as_float, n)
                dtype = "float32" if as_float else "uint8"
                print(f"loader {sampling} {dtype} workers={workers}: {rate:.2f}/s", file=sys.stderr, flush=True)
                rows.append(f"| {sampling} | {dtype} | {workers} | {rate:.2f} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="two small clips, 3 repeats, no memory / loader rows")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per pipeline (default 5, quick 3)")
    parser.add_argument("--pipelines", nargs="+", default=list(PIPELINES), choices=PIPELINES)
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-loader", action="store_true")
    parser.add_argument("--loader-only", action="store_true", help="just the DataLoader rows")
    parser.add_argument("--loader-samples", type=int, default=12)
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--_memory-child", nargs=2, metavar=("PIPELINE", "CLIP"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._memory_child:
        print(json.dumps(memory_child(*args._memory_child)))
        return 0

    lines = [f"Machine: {versions()}", ""]
    if args.loader_only:
        lines += loader_table(args.loader_samples)
    elif not args.memory_only:
        clips = QUICK_CLIPS if args.quick else FULL_CLIPS
        lines += speed_table(clips, args.pipelines, args.repeats or (3 if args.quick else 5)) + [""]
    if args.memory_only or not (args.quick or args.no_memory or args.loader_only):
        lines += memory_table([p for p in args.pipelines if p != "exact_decord"]) + [""]
    if not (args.quick or args.memory_only or args.no_loader or args.loader_only):
        lines += loader_table(args.loader_samples)
    return emit(lines, args.markdown)


if __name__ == "__main__":
    raise SystemExit(main())
