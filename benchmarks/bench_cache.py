"""Frame cache against exact decoding: CPU seconds per 8-frame 1024 px sample, side by side in one run.

For each clip (the 60 s 720p GOP 250 and the 10 s 480p clips of ``bench_video.py``):
  exact        training's ``load_media`` without a cache (uniform exact sampling, auto backend)
  cache CODEC  ``FrameCache.get`` on an entry ``fastvlm-video cache`` built with that codec

Reported: median wall and CPU seconds per sample (after a warm-up read, so the shard is in the page
cache, as it is on a second epoch), the CPU ratio exact / cache, bytes stored per sample, CPU
seconds to build the entry (decode + encode, paid once), and the pixel error against exact decoding.

    python benchmarks/bench_cache.py                 # both acceptance clips
    python benchmarks/bench_cache.py --quick         # the 10 s 480p clip only, 3 repeats
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, make_clip  # noqa: E402
from bench_video import time_pipeline, versions  # noqa: E402

from fastvlm_video.data.cache_build import build_cache  # noqa: E402
from fastvlm_video.data.dataset import load_media  # noqa: E402
from fastvlm_video.data.frame_cache import FrameCache  # noqa: E402
from fastvlm_video.data.records import load_samples  # noqa: E402
from fastvlm_video.video_config import VideoConfig  # noqa: E402

VIDEO = VideoConfig(num_frames=8, image_size=1024)
CLIPS = [(60, "720p", 250), (10, "480p", 30)]
CODECS = [("raw", 0), ("png", 0), ("jpeg", 95), ("jpeg", 90)]


def clip_samples(clip: Path, root: Path) -> list:
    """One record naming this clip, loaded as the cache build and training load it."""
    data = root / f"{clip.stem}.json"
    record = {"id": "clip", "video": clip.name, "conversations": [{"from": "human", "value": "<video>\nWhat?"}, {"from": "gpt", "value": "x"}]}
    data.write_text(json.dumps([record]))
    return load_samples(data, clip.parent)[0]


def build_entry(samples: list, out: Path, codec: str, quality: int) -> float:
    """Cache the clip; returns the CPU seconds the build took (in this process)."""
    cpu = time.process_time()
    build_cache(samples, VIDEO, out, codec=codec, quality=quality or 95, workers=1, progress=False)
    return time.process_time() - cpu


def clip_rows(spec: tuple[int, str, int], repeats: int, root: Path) -> list[str]:
    clip = make_clip(*spec)
    label = f"{spec[0]} s {spec[1]} GOP {spec[2]}"
    samples = clip_samples(clip, root)
    ref = samples[0].media[0]
    exact_frames = load_media(ref, VIDEO)[0]
    exact_wall, exact_cpu = time_pipeline(lambda: load_media(ref, VIDEO), max(3, repeats // 2))
    print(f"{label}: exact wall {exact_wall:.3f}s cpu {exact_cpu:.3f}s", file=sys.stderr, flush=True)
    rows = [f"| {label} | exact decode | {exact_wall:.3f} | {exact_cpu:.3f} | 1x | - | - | - |"]
    for codec, quality in CODECS:
        name = f"{codec}{quality or ''}"
        out = root / f"{spec[1]}-{name}"
        build_cpu = build_entry(samples, out, codec, quality)
        cache = FrameCache(out, VIDEO)
        frames = cache.get(ref, VIDEO).frames
        diff = (frames.int() - exact_frames.int()).abs()
        wall, cpu = time_pipeline(lambda: cache.get(ref, VIDEO), repeats)
        size = sum(p.stat().st_size for p in out.glob("shard-*.bin")) / 1e6
        print(f"{label}: cache {name} wall {wall:.4f}s cpu {cpu:.4f}s ({exact_cpu / cpu:.0f}x) {size:.1f} MB", file=sys.stderr, flush=True)
        error = f"{diff.float().mean():.2f} / {diff.max()}"
        name = f"cache, {codec}" + (f" q{quality}" if quality else "")
        rows.append(f"| | {name} | {wall:.4f} | {cpu:.4f} | **{exact_cpu / cpu:.0f}x** | {size:.2f} | {build_cpu:.2f} | {error} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the 10 s 480p clip only, 3 repeats")
    parser.add_argument("--repeats", type=int, help="timed reads per codec (default 9, quick 3)")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    lines = [
        f"Machine: {versions()}; {time.strftime('%Y-%m-%d')}",
        "",
        "| clip | pipeline | wall s | CPU s | CPU exact / this | MB per sample | build CPU s | pixel error mean / max |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory(prefix="bench_cache_") as tmp:
        for spec in CLIPS[1:] if args.quick else CLIPS:
            lines += clip_rows(spec, args.repeats or (3 if args.quick else 9), Path(tmp))
    return emit(lines, args.markdown)


if __name__ == "__main__":
    raise SystemExit(main())
