"""``fastvlm-video budget``'s tables: tokens per sample, memory per GPU, and the options that fit a GPU."""

from __future__ import annotations

from dataclasses import replace

from ..constants import VISION_STRIDE
from ..video_config import VideoConfig
from .memory import GiB, Estimate, ModelShape, Setting, estimate
from .tokens import LengthReport

FRAME_SIZES = (1024, 768, 512, 256)
BATCH_SIZES = (1, 2, 4, 8, 16, 32)
MAX_FRAMES = 64


def token_lines(report: LengthReport, max_length: int, video: VideoConfig) -> list[str]:
    table = report.table()
    lines = [f"tokens per sample ({len(report.lengths)} samples; {video.frames_per_video} frames x {video.tokens_per_frame} tokens at {video.image_size} px"
             f"{', time instruction' if video.time_instruction else ''}):",
             f"  {'':<8}{'p50':>8}{'p95':>8}{'max':>8}"]
    for part in ("image", "text", "total"):
        row = table[part]
        lines.append(f"  {part:<8}{row['p50']:>8}{row['p95']:>8}{row['max']:>8}")
    bad = report.too_long(max_length)
    lines.append(f"  {len(bad)} sample(s) cannot fit model_max_length={max_length}" + (f" (e.g. {bad[0].where}: {bad[0].total} tokens)" if bad else ""))
    if report.unreadable:
        lines.append(f"  {len(report.unreadable)} sample(s) not counted: media header unreadable (e.g. {report.unreadable[0]})")
    return lines


def memory_lines(result: Estimate, setting: Setting) -> list[str]:
    what = setting.train + (" + vision tower" if setting.train_vision_tower else "")
    lines = [f"estimated peak memory per GPU (batch {setting.batch_size} x {setting.seq_len} tokens, {setting.frames} frames x {setting.image_size} px, "
             f"{setting.precision}, trains: {what}, {result.trainable_params / 1e6:.1f} M parameters"
             f"{', gradient checkpointing' if setting.gradient_checkpointing else ''}"
             f"{f', ZeRO-{setting.zero_stage} on {setting.num_gpus} GPUs' if setting.zero_stage else ''}"
             f"{f', {setting.rows_per_sample} sequences per sample' if setting.rows_per_sample > 1 else ''}"
             f"{', a frozen reference copy' if setting.reference_copy else ''}):"]
    lines += [f"  {name:<30}{human(value):>10}" for name, value in result.rows()]
    lines.append("  (PyTorch's allocations; the CUDA context and allocator slack add ~0.5-1 GiB in nvidia-smi)")
    return lines


def fit_options(shape: ModelShape, setting: Setting, gpu_bytes: float, text_tokens: int, limit: int | None) -> list[dict]:
    """Per frame size: the most frames per sample at batch 1, and the largest batch at the run's frame count."""
    def row(frames: int, size: int, batch: int) -> dict | None:
        length = text_tokens + frames * (size // VISION_STRIDE) ** 2
        if limit and length > limit:
            return None
        total = estimate(shape, replace(setting, batch_size=batch, seq_len=length, frames=frames, image_size=size)).total
        if total > gpu_bytes:
            return None
        return {"frames": frames, "image_size": size, "batch_size": batch, "max_length": length, "bytes": total}

    rows: list[dict] = []
    for size in sorted({*FRAME_SIZES, setting.image_size}, reverse=True):
        most = _last(row(f, size, 1) for f in range(1, MAX_FRAMES + 1))
        widest = _last(row(setting.frames, size, b) for b in BATCH_SIZES)
        rows += [r for r in (most, widest) if r and r not in rows]
    return rows


def _last(candidates) -> dict | None:
    """The last option that fits before the first that does not."""
    best = None
    for option in candidates:
        if option is None:
            break
        best = option
    return best


def human(n: float) -> str:
    return f"{n / GiB:.1f} GiB" if n >= GiB else f"{n / 1024**2:.0f} MiB"


def fit_lines(rows: list[dict], gpu_bytes: float) -> list[str]:
    lines = [f"what fits {human(gpu_bytes)} per GPU (per frame size: most frames at batch 1, largest batch at the run's frames):"]
    if not rows:
        return lines + ["  nothing: even 1 frame at 256 px does not fit; try LoRA/QLoRA, gradient checkpointing or ZeRO"]
    lines.append(f"  {'frames':>6} {'px':>5} {'batch':>5} {'max_length':>10} {'estimate':>10}")
    lines += [f"  {r['frames']:>6} {r['image_size']:>5} {r['batch_size']:>5} {r['max_length']:>10} {human(r['bytes']):>10}" for r in rows]
    return lines
