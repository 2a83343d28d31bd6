"""``fastvlm-video doctor``: is this machine ready? Versions, video decoders, devices, disk, a smoke run.

Every check gives one line: OK, WARN (works, with a limit) or FAIL (fix it first), and the fix.
Nothing is downloaded: the smoke run uses a tiny random model and a generated H.264 clip.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

MIN_FREE_GB = 20  # a 0.5B checkpoint with optimizer state and a frame cache fits comfortably
REQUIRED = {"torch": "2.4", "transformers": "5.0", "timm": "1.0.20", "av": "14.0"}


@dataclass
class Check:
    status: str  # OK | WARN | FAIL
    name: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.status:<4}  {self.name:<14} {self.detail}" + (f"  -> {self.fix}" if self.fix else "")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _at_least(version: str, minimum: str) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        return tuple(int("".join(c for c in p if c.isdigit()) or 0) for p in v.split("+")[0].split(".")[:3])

    return parts(version) >= parts(minimum)


def check_versions() -> Iterator[Check]:
    yield Check(
        "OK" if sys.version_info >= (3, 10) else "FAIL",
        "python",
        platform.python_version(),
        "" if sys.version_info >= (3, 10) else "use Python >= 3.10",
    )
    for dist, minimum in REQUIRED.items():
        version = _version(dist)
        if version is None:
            yield Check(
                "FAIL", dist, "not installed", f"pip install 'fastvlm-video' (needs {dist}>={minimum})"
            )
        elif not _at_least(version, minimum):
            yield Check("FAIL", dist, version, f"pip install -U '{dist}>={minimum}'")
        else:
            yield Check("OK", dist, version)
    try:
        import av

        ffmpeg = ", ".join(
            f"{k} {'.'.join(map(str, v))}"
            for k, v in sorted(av.library_versions.items())
            if k in ("libavcodec", "libavformat")
        )
        yield Check("OK", "ffmpeg", f"PyAV's own FFmpeg: {ffmpeg}")
    except ImportError:
        pass
    decord = _version("decord")
    if decord:
        yield Check("OK", "decord", decord)
    elif sys.platform == "linux" and platform.machine() == "x86_64":
        yield Check("WARN", "decord", "not installed (optional, faster random access)", "pip install decord")
    else:
        yield Check("OK", "decord", f"none for {sys.platform}/{platform.machine()} (PyAV decodes everything)")
    mlx, mlx_vlm = _version("mlx"), _version("mlx-vlm")
    if mlx and mlx_vlm:
        yield Check(
            "OK",
            "mlx",
            f"mlx {mlx}, mlx-vlm {mlx_vlm}"
            + ("" if mlx_vlm == "0.7.10" else " (export --format mlx is tested with mlx-vlm 0.7.10)"),
        )
    else:
        yield Check(
            "WARN",
            "mlx",
            "not installed (only for export --format mlx / running on a Mac)",
            "pip install 'fastvlm-video[mlx]'",
        )
    hub = _version("huggingface_hub")
    yield Check(
        "OK" if hub else "WARN",
        "hub",
        f"huggingface_hub {hub}" if hub else "not installed",
        "" if hub else "pip install huggingface_hub (for push)",
    )


def check_decoders(clip: Path) -> Iterator[Check]:
    """Decode a generated numbered clip with each backend: 4 distinct frames in order, the same with every backend."""
    from ..demo.synthetic import frame_number_of
    from ..media.video import VIDEO_BACKENDS, load_video_tensor

    first = None
    for backend in VIDEO_BACKENDS[1:]:
        if importlib.util.find_spec("av" if backend == "pyav" else backend) is None:
            continue
        fix = f"pip install --force-reinstall {'av' if backend == 'pyav' else backend}, or use --video_backend with another one"
        try:
            frames = load_video_tensor(
                clip, num_frames=4, image_size=64, aspect="resize", backend=backend
            ).frames
        except Exception as exc:  # noqa: BLE001 - a decoder that fails is what this check reports
            yield Check("FAIL", f"decode/{backend}", f"{type(exc).__name__}: {exc}", fix)
            continue
        numbers = [frame_number_of(f.permute(1, 2, 0).numpy()) for f in frames]
        first = first or numbers
        ok = numbers == sorted(set(numbers)) and len(numbers) == 4 and numbers == first
        yield Check(
            "OK" if ok else "FAIL",
            f"decode/{backend}",
            f"frames {numbers} of a 40-frame H.264 clip",
            "" if ok else fix,
        )


def check_devices() -> Iterator[Check]:
    import psutil
    import torch

    memory = psutil.virtual_memory()
    yield Check(
        "OK",
        "cpu",
        f"{os.cpu_count()} cores, {memory.total / 2**30:.0f} GiB RAM ({memory.available / 2**30:.0f} GiB free), torch threads {torch.get_num_threads()}",
    )
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            bf16 = torch.cuda.is_bf16_supported()
            yield Check(
                "OK" if bf16 else "WARN",
                f"cuda:{i}",
                f"{torch.cuda.get_device_name(i)}, {total / 2**30:.0f} GiB ({free / 2**30:.0f} GiB free)",
                "" if bf16 else "no bf16: train with --fp16",
            )
    elif torch.backends.mps.is_available():
        yield Check("OK", "mps", "Apple GPU (Metal): predict/evaluate run on it; MLX export for speed")
    else:
        yield Check(
            "WARN",
            "gpu",
            f"none (torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'})",
            "fine for the demo and tests; training a real model needs a CUDA GPU",
        )


def check_disk(out: Path) -> Check:
    probe = out if out.exists() else next(p for p in out.parents if p.exists())
    free = shutil.disk_usage(probe).free / 2**30
    if free < 2:
        return Check("FAIL", "disk", f"{free:.1f} GiB free in {probe}", "free space or choose another --out")
    status = "OK" if free >= MIN_FREE_GB else "WARN"
    return Check(
        status,
        "disk",
        f"{free:.0f} GiB free in {probe}",
        "" if status == "OK" else f"checkpoints of a 0.5B model need ~{MIN_FREE_GB} GiB",
    )


def smoke_run(clip: Path, workdir: Path) -> Check:
    """One sample through the whole path: decode, chat encoding, a training step, save, load, generate."""
    import torch

    from ..data.chat import ChatEncoder
    from ..data.collate import Collator
    from ..data.dataset import load_media
    from ..data.records import MediaRef, Message
    from ..infer.predictor import Predictor
    from ..model.export import save_checkpoint
    from ..model.tiny import build_tiny_model, build_tiny_tokenizer
    from ..video_config import VideoConfig

    try:
        tokenizer = build_tiny_tokenizer()
        model = build_tiny_model(tokenizer, seed=0)
        video = VideoConfig(num_frames=4, image_size=64)
        frames, _ = load_media(MediaRef(str(clip), "video"), video)
        encoded = ChatEncoder(tokenizer, video.tokens_per_frame).encode(
            [Message("user", "<image>\nWhere?"), Message("assistant", "left")], [frames.shape[0]]
        )
        batch = Collator(tokenizer.pad_token_id)(
            [
                {
                    "input_ids": torch.tensor(encoded.input_ids),
                    "labels": torch.tensor(encoded.labels),
                    "pixel_values": frames,
                }
            ]
        )
        batch.pop("skipped")
        loss = model(**batch).loss
        loss.backward()
        save_checkpoint(model, tokenizer, video, workdir / "tiny")
        answer = Predictor.from_pretrained(workdir / "tiny", device="cpu").ask(
            clip, "Where?", max_new_tokens=2
        )
        return Check(
            "OK",
            "smoke run",
            f"tiny model: decode + train step (loss {loss.item():.2f}) + save + load + generate ({answer!r})",
        )
    except Exception as exc:  # the smoke run reports whatever breaks
        logger.debug("smoke run failed", exc_info=True)
        return Check(
            "FAIL",
            "smoke run",
            f"{type(exc).__name__}: {exc}",
            "run `fastvlm-video -v doctor` for the traceback; report it with this output",
        )


def run_checks(
    out: str | Path = ".", smoke: bool = True, report: Callable[[Check], None] = lambda c: None
) -> list[Check]:
    """All checks in order; ``report`` sees each as it finishes."""
    from ..demo.synthetic import numbered_frames, write_video

    checks: list[Check] = []

    def add(check: Check) -> None:
        checks.append(check)
        report(check)

    for check in check_versions():
        add(check)
    with tempfile.TemporaryDirectory(prefix="fastvlm-doctor-") as tmp:
        clip = write_video(Path(tmp) / "clip.mp4", numbered_frames(40), fps=10, gop=12)
        for check in check_decoders(clip):
            add(check)
        for check in check_devices():
            add(check)
        add(check_disk(Path(out).resolve()))
        if smoke:
            add(smoke_run(clip, Path(tmp)))
    return checks
