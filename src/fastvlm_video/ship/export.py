"""``fastvlm-video export --format apple|mlx``: a checkpoint (any format) in Apple's layout, or as an mlx-vlm folder.

MLX goes through Apple's layout and mlx-vlm's own converter (called as a library), so the folder is
exactly what mlx-vlm makes of an Apple checkpoint. Apple's code (``fastvithd`` is built with
``inference_mode=True``) and mlx-vlm build only the reparameterised (inference) tower: a tower saved with
its train-time branches is reparameterised first for both (timm's ``reparameterize_model``: the same
function, up to float rounding; tests/test_apple_golden.py).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from ..constants import VIDEO_CONFIG_NAME
from ..errors import ConfigError
from ..file_modes import share_like_other_files
from ..model.export import export_checkpoint, refuse_existing, save_checkpoint
from .apple import reparameterise_tower, save_original

logger = logging.getLogger(__name__)

FORMATS = ("standard", "apple", "mlx", "coreml")


def save_reparameterised(model, tokenizer, video, out: str | Path) -> Path:
    """Apple's layout with the reparameterised tower: Apple's ``fastvithd`` and mlx-vlm build only that one."""
    reparameterise_tower(model)
    return save_original(model, tokenizer, video, out)


def to_mlx(apple_dir: str | Path, dst: str | Path, quantize: int | None = None) -> Path:
    """mlx-vlm's converter on an Apple-layout folder (LLM quantized to ``quantize`` bits if given)."""
    from .mlx_runtime import require_mlx, tower_shape

    require_mlx()
    from mlx_vlm.convert import convert

    with tower_shape(apple_dir):
        convert(str(apple_dir), mlx_path=str(dst), quantize=quantize is not None, q_bits=quantize or 4)
    for name in (VIDEO_CONFIG_NAME, "preprocessor_config.json"):
        if not (Path(dst) / name).exists():
            shutil.copy(Path(apple_dir) / name, Path(dst) / name)
    share_like_other_files(dst)
    return Path(dst)


def export(
    src: str | Path,
    dst: str | Path,
    fmt: str = "standard",
    merge_lora: bool = False,
    dtype: str = "auto",
    quantize: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``src`` as ``fmt``: ``standard`` (fast_vlm), ``apple`` (llava_qwen2), ``mlx`` (mlx-vlm) or ``coreml``.

    Every cheap check (format, flags, an existing ``dst``, the optional packages) runs before the model loads.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"format {fmt!r}: choose one of {FORMATS}")
    if quantize is not None and fmt != "mlx":
        raise ConfigError("--quantize applies to --format mlx only")
    refuse_existing(dst, overwrite)
    options = {"merge_lora": merge_lora, "dtype": dtype, "overwrite": overwrite}
    if fmt == "standard":
        return export_checkpoint(src, dst, save=save_checkpoint, **options)
    if fmt == "apple":
        return export_checkpoint(src, dst, save=save_reparameterised, **options)
    if fmt == "coreml":
        from .coreml import require_coremltools, save_with_coreml_tower

        require_coremltools()
        return export_checkpoint(src, dst, save=save_with_coreml_tower, **options)
    from .mlx_runtime import require_mlx

    require_mlx()
    with tempfile.TemporaryDirectory(prefix="fastvlm-apple-") as tmp:
        apple = export_checkpoint(src, Path(tmp) / "apple", save=save_reparameterised, **options)
        return to_mlx(apple, dst, quantize)
