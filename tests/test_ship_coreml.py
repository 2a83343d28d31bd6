"""export --format coreml: the tower converts on Linux; the package's input/output shapes match the checkpoint.
(Running the package needs macOS: only the conversion and its declared shapes are checked here.)"""

from __future__ import annotations

import pytest

ct = pytest.importorskip(
    "coremltools", reason="the coreml extra is not installed (pip install -e '.[coreml]')"
)

from fastvlm_video.cli import main
from fastvlm_video.model.export import save_checkpoint
from fastvlm_video.model.load import detect_format
from fastvlm_video.model.tiny import build_tiny_model
from fastvlm_video.video_config import VideoConfig


def test_coreml_tower_converts_with_the_checkpoints_shapes(tmp_path, tokenizer):
    save_checkpoint(
        build_tiny_model(tokenizer, seed=2), tokenizer, VideoConfig(image_size=128), tmp_path / "std"
    )
    assert main(["export", str(tmp_path / "std"), str(tmp_path / "out"), "--format", "coreml"]) == 0
    assert (
        detect_format(tmp_path / "out") == "llava_qwen2"
    )  # Apple's layout beside the package, as Apple's export leaves it
    spec = ct.utils.load_spec(str(tmp_path / "out" / "fastvithd.mlpackage"))
    (inp,), (out,) = spec.description.input, spec.description.output
    assert (inp.name, list(inp.type.multiArrayType.shape)) == ("images", [1, 3, 128, 128])
    assert (out.name, list(out.type.multiArrayType.shape)) == (
        "image_features",
        [1, 4, 256],
    )  # (128/64)^2 tokens x 2*128 channels
