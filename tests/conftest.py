"""Shared fixtures: a tiny tokenizer/model (FastViTHD topology, shrunk) and synthetic H.264 clips."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("FASTVLM_VIDEO_PROBE_CACHE", "off")  # tests never write the start-up probe cache into ~/.cache
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import pytest
import torch

from fastvlm_video.demo.synthetic import moving_square_frames, numbered_frames, write_video
from fastvlm_video.model.processor import make_processor
from fastvlm_video.model.tiny import build_tiny_model, build_tiny_tokenizer

SUITE_THREADS = max(1, min(2, os.cpu_count() or 1))
pytest_plugins = ["ci_skips"]  # CI=true: a skip for a missing browser or extra fails (tests/ci_skips.py)

torch.set_num_threads(SUITE_THREADS)


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Every test starts at the suite's thread count: a training run's adaptive threads (train/threads.py)
    must not leak a load-dependent count into the tests after it."""
    torch.set_num_threads(SUITE_THREADS)
    yield
    torch.set_num_threads(SUITE_THREADS)


@pytest.fixture
def pinned_threads():
    """One torch thread, whatever the machine's load: the same computation on the same memory then sums
    in one fixed order, so a bitwise comparison of *computed* tensors (logits, activations) repeats.
    Tests that compare computed floats bitwise request this fixture (tests/test_flakiness.py checks).
    Two models with equal weights in *different* memory (one read from safetensors, one built) may still
    differ in the last bits: BLAS picks kernels by alignment. Those compare with a justified tolerance.
    Issue 19: such a comparison failed beside a busy process, because a training test had dropped the
    thread count to 1 (adaptive threads) and leaked it; ``_restore_torch_threads`` now resets it."""
    torch.set_num_threads(1)
    yield 1
    torch.set_num_threads(SUITE_THREADS)


@pytest.fixture(scope="session")
def tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer):
    """A saved tiny FastVLM checkpoint (model + processor at 128 px) that training can start from."""
    path = tmp_path_factory.mktemp("tiny_model")
    build_tiny_model(tokenizer, seed=0).save_pretrained(path)
    make_processor(tokenizer, 128).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def numbered_video(tmp_path_factory):
    """50 frames at 10 fps, keyframe every 12; frame i has grey level 4*i."""
    return write_video(tmp_path_factory.mktemp("videos") / "numbered.mp4", numbered_frames(50), fps=10, gop=12)


@pytest.fixture(scope="session")
def media_folder(tmp_path_factory):
    """A folder with two motion clips, an image, a corrupt video and a text file."""
    from PIL import Image

    root = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    write_video(root / "left.mp4", moving_square_frames("left", rng), fps=8, gop=8)
    write_video(root / "up.MOV", moving_square_frames("up", rng), fps=8, gop=8)
    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(root / "still.png")
    (root / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    (root / "notes.txt").write_text("hello")
    return root


def header_only_mp4(source, dest):
    """An MP4 whose index (moov) comes first and whose frame data is cut off, as a copy interrupted after
    its header leaves it: the start-up header probe passes it, decoding fails."""
    import av

    full = dest.with_name(dest.stem + "_full.mp4")
    with av.open(str(source)) as src, av.open(str(full), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    data = full.read_bytes()
    full.unlink()
    dest.write_bytes(data[: data.index(b"mdat") + 20])
    return dest


@pytest.fixture(scope="session")
def broken_media_folder(tmp_path_factory, media_folder):
    """``media_folder``'s files, plus ``empty.mp4`` (0 bytes) and ``cut0..2.mp4`` (header only: they pass
    the start-up probe and fail when decoded)."""
    import shutil

    root = tmp_path_factory.mktemp("broken_media")
    for path in media_folder.iterdir():
        shutil.copy2(path, root / path.name)
    (root / "empty.mp4").write_bytes(b"")
    for i in range(3):
        header_only_mp4(media_folder / "left.mp4", root / f"cut{i}.mp4")
    return root
