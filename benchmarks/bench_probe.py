"""Start-up header probe (``data/media_probe.py``): milliseconds per media file, and the cache's saving.

For each kind of file (the 10 s 480p and 60 s 720p H.264 clips of ``bench_video.py``, a 1080p JPEG,
and a broken half-uploaded MP4) it copies the file N times into a temporary folder (distinct paths,
page cache warm: the files were just written) and measures:

  cold, 1 thread    median wall ms of ``probe_file`` per file (PyAV open + stream check, or PIL header)
  probe_media xT    wall ms per file for the whole list with T threads and no cache
  cached            wall ms per file for the list when every outcome is in the probe cache (stat + lookup)

Timings are wall clock on a shared machine (neighbours add noise): compare the rows of one run.

    python benchmarks/bench_probe.py                      # N=200
    python benchmarks/bench_probe.py --n 50 --out benchmarks/results/bench_probe.txt
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, make_clip  # noqa: E402

from fastvlm_video.data.media_probe import probe_file, probe_media  # noqa: E402
from fastvlm_video.data.records import MediaRef  # noqa: E402


def sources(root: Path) -> dict[str, tuple[Path, str]]:
    """name -> (a file of that kind, its record kind)."""
    import numpy as np
    from PIL import Image

    jpeg = root / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), np.uint8)).save(jpeg, quality=90)
    clip = make_clip(10, "480p", 30)
    data = clip.read_bytes()
    half = root / "half.mp4"
    half.write_bytes(data[: len(data) // 2])  # moov at the end (x264 default): never arrived
    return {
        "480p 10 s H.264": (clip, "video"),
        "720p 60 s H.264": (make_clip(60, "720p", 250), "video"),
        "1080p JPEG": (jpeg, "image"),
        "half-uploaded MP4": (half, "video"),
    }


def copies(source: Path, folder: Path, n: int) -> list[str]:
    folder.mkdir(parents=True)
    paths = []
    for i in range(n):
        path = folder / f"{i:04d}{source.suffix}"
        shutil.copyfile(source, path)
        paths.append(str(path))
    return paths


def per_file_ms(seconds: float, n: int) -> str:
    return f"{1000 * seconds / n:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="copies of each file (default: 200)")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    lines = [f"# bench_probe: header probe cost per file (N={args.n} copies each; cpu_count={os.cpu_count()}; "
             "wall clock on a shared machine, compare rows of one run)", "",
             "| file | size MB | cold, 1 thread: median ms/file | probe_media x1: ms/file | probe_media x8: ms/file | cached: ms/file |",
             "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, (source, kind) in sources(root).items():
            folder = root / name.replace(" ", "_")
            paths = copies(source, folder, args.n)
            single = []
            for path in paths:
                started = time.perf_counter()
                probe_file(path, kind)
                single.append(time.perf_counter() - started)
            refs = [MediaRef(p, kind) for p in paths]
            timed = {}
            for threads in (1, 8):
                started = time.perf_counter()
                probe_media(refs, cache_path=None, threads=threads, progress=False)
                timed[threads] = time.perf_counter() - started
            cache = root / f"{folder.name}.json"
            probe_media(refs, cache_path=cache, progress=False)
            started = time.perf_counter()
            probe_media(refs, cache_path=cache, progress=False)
            cached = time.perf_counter() - started
            lines.append(f"| {name} | {source.stat().st_size / 1e6:.1f} | {1000 * statistics.median(single):.2f} | "
                         f"{per_file_ms(timed[1], len(paths))} | {per_file_ms(timed[8], len(paths))} | {per_file_ms(cached, len(paths))} |")  # fmt: skip
    return emit(lines, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
