"""``fastvlm-video budget``'s tables: tokens per sample, memory per GPU, and the options that fit a GPU."""

from __future__ import annotations

from dataclasses import replace

from ..constants import VISION_STRIDE
from ..video_config import VideoConfig
from .memory import GiB, Estimate, ModelShape, Setting, estimate
from .tokens import LengthReport

FRAME_SIZES = (1024, 768, 512, 256)
BATCH_SIZES = (1, 2, 4, 8)
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
             f"{f', ZeRO-{setting.zero_stage} on {setting.num_gpus} GPUs' if setting.zero_stage else ''}):"]
    lines += [f"  {name:<30}{value / GiB:>8.2f} GiB" for name, value in result.rows()]
    lines.append("  (PyTorch's allocations; the CUDA context and allocator slack add ~0.5-1 GiB in nvidia-smi)")
    return lines


def fit_options(shape: ModelShape, setting: Setting, gpu_bytes: float, text_tokens: int, limit: int | None) -> list[dict]:
    """For each frame size and batch size: the most frames (<= 64) per sample that fit ``gpu_bytes``."""
    rows = []
    for size in FRAME_SIZES:
        k = (size // VISION_STRIDE) ** 2
        for batch in BATCH_SIZES:
            best = None
            for frames in range(1, MAX_FRAMES + 1):
                length = text_tokens + frames * k
                if limit and length > limit:
                    break
                trial = replace(setting, batch_size=batch, seq_len=length, frames=frames, image_size=size)
                total = estimate(shape, trial).total
                if total > gpu_bytes:
                    break
                best = {"frames": frames, "image_size": size, "batch_size": batch, "max_length": length, "gib": total / GiB}
            if best:
                rows.append(best)
    return rows


def fit_lines(rows: list[dict], gpu_bytes: float) -> list[str]:
    lines = [f"what fits {gpu_bytes / GiB:.0f} GiB per GPU (most frames per sample for each frame size and batch; same training setting):"]
    if not rows:
        return lines + ["  nothing: even 1 frame at 256 px does not fit; try LoRA/QLoRA, gradient checkpointing or ZeRO"]
    lines.append(f"  {'frames':>6} {'px':>5} {'batch':>5} {'max_length':>10} {'estimate':>10}")
    lines += [f"  {r['frames']:>6} {r['image_size']:>5} {r['batch_size']:>5} {r['max_length']:>10} {r['gib']:>7.1f} GiB" for r in rows]
    return lines
