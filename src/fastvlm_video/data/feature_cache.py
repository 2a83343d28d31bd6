"""Feature cache: a frozen vision tower's outputs, stored per media item in the first epoch and read back
on later ones, so that a hit skips both decoding and the tower (``--feature_cache DIR``).

It fills itself during training, in the process that runs the tower: a media item the cache lacks is
decoded and its frames go through the tower inside the model's forward, as without the cache; that
output is stored (each training process writes its own shards, published at every epoch end) and
read back, instead of the frames, from then on. So the stored features are exactly what the training
forward computed (same device, dtype, autocast and kernels), and the loss is the same with or without
the cache. One sample still goes JSON -> ``load_sample_media`` -> ``Collator`` -> model: on a hit,
``LoadedMedia.features`` replaces ``frames``, the collator passes a ``TowerInput`` as
``pixel_values``, and the tower (``attach``) runs only on the frames that were decoded.

Valid only while the tower's output is a pure function of the frames, so ``check_allowed`` refuses a
trainable tower and BatchNorm on batch statistics. Entries live in ``DIR/<fingerprint>/``, the
fingerprint being a hash of the tower's weights and buffers, the dtype and the device type; an entry
is keyed like a frame cache entry (resolved file, segment and decoding settings, checked against the
file's stamp: size, mtime and content fingerprint, see ``frame_cache``). Changed weights, dtype, device, settings or files never reuse an entry:
they are computed and stored again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import TrainerCallback
from transformers.modeling_outputs import BaseModelOutputWithPooling

from ..errors import ConfigError
from ..video_config import VideoConfig
from .media_source import LoadedMedia
from .frame_cache import ShardStore, ShardWriter, file_stamp, media_key, sample_media
from .records import MediaRef, Sample

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "features.json"


def check_allowed(train_tower: bool, tower_batchnorm: str, data_parallel: bool) -> None:
    """Refuse the settings under which a stored tower output would differ from a recomputed one."""
    if train_tower:
        raise ConfigError("--feature_cache stores the frozen tower's outputs: drop --unfreeze_mm_vision_tower, or drop --feature_cache")
    if tower_batchnorm != "frozen":
        raise ConfigError("--feature_cache needs the tower's BatchNorm on running statistics: use --vision_tower_batchnorm frozen, or drop --feature_cache")
    if data_parallel:
        raise ConfigError("--feature_cache does not split over DataParallel: launch one process per GPU with torchrun, or drop --feature_cache")


def tower_fingerprint(tower: nn.Module, dtype: torch.dtype, device: str) -> dict:
    """What a stored output depends on besides the frames: the tower's weights and buffers, dtype, device type."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(tower.state_dict().items()):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().reshape(-1).cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return {"format": FORMAT_VERSION, "tower": digest.hexdigest(), "dtype": str(dtype).removeprefix("torch."), "device": device}


def fingerprint_id(fingerprint: dict) -> str:
    return hashlib.blake2b(json.dumps(fingerprint, sort_keys=True).encode(), digest_size=8).hexdigest()


def write_manifest_once(path: Path, data: dict) -> None:
    """Write ``data`` to ``path`` unless it exists; never overwrites (many processes may race here)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # unique across processes and nodes
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    try:
        os.link(tmp, path)  # atomic, and fails when the file exists
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


class FeatureCache(ShardStore):
    """Stored tower outputs for one tower fingerprint: read in the data path, filled by the tower (``attach``)."""

    name = "feature cache"

    def __init__(self, root: str | Path, fingerprint: dict, shard_entries: int = 64):
        directory = Path(root) / fingerprint_id(fingerprint)
        directory.mkdir(parents=True, exist_ok=True)
        write_manifest_once(directory / MANIFEST, fingerprint)
        super().__init__(directory)
        self.fingerprint, self.shard_entries = fingerprint, shard_entries
        self.stats: Counter[str] = Counter()  # media read from the cache (cached) / run through the tower (computed)
        self._writer: ShardWriter | None = None
        self._stored: set[tuple] = set()

    def __getstate__(self) -> dict:  # workers only read; the writer stays in the training process
        return {**super().__getstate__(), "_writer": None}

    # -- read side (DataLoader workers) --

    def lookup(self, ref: MediaRef, video: VideoConfig) -> tuple[str, dict | None]:
        """(status, entry): hit | missing | stale; a missing key first looks for shards published since."""
        key = media_key(ref, video)
        status, entry = self.status(ref, key)
        if status == "missing" and self.refresh():
            status, entry = self.status(ref, key)
        return status, entry

    def get(self, ref: MediaRef, video: VideoConfig) -> LoadedMedia | None:
        """``ref``'s stored tower output (with its frame times) as ``LoadedMedia.features``, or ``None``: decode it."""
        status, entry = self.lookup(ref, video)
        self.counts[status] += 1
        if status != "hit":
            if status == "stale":  # missing ones are the first epoch's rule: counted in ``epoch_line``, not logged each
                self._note(ref.path, status)
            return None
        data = np.array(self.entry_bytes(entry))  # one copy out of the read-only mapping
        features = torch.from_numpy(data).view(getattr(torch, entry["dtype"])).reshape(entry["shape"])
        window = tuple(entry["window"]) if entry.get("window") is not None else None
        return LoadedMedia(None, entry["timestamps"], window, features=features)

    def slot(self, ref: MediaRef, video: VideoConfig) -> dict:
        """Where the tower's output for ``ref`` goes (key, and the file's stamp before it is decoded)."""
        return {"key": media_key(ref, video), "stamp": file_stamp(ref.path)}

    def coverage(self, samples: Iterable[Sample], video: VideoConfig) -> dict[str, int]:
        counts = Counter(self.lookup(ref, settings)[0] for ref, settings in sample_media(samples, video).values())
        return {status: counts.get(status, 0) for status in ("hit", "missing", "stale")}

    def describe(self, samples: Iterable[Sample], video: VideoConfig) -> str:
        c = self.coverage(samples, video)
        return (f"feature cache {self.directory}: {c['hit']} media stored; {c['missing']} missing and {c['stale']} "
                "changed since will be decoded, run through the tower and stored")  # fmt: skip

    # -- write side (the training process) --

    def store(self, slot: dict, features: torch.Tensor, timestamps: list[float] | None, window: list[float] | None) -> None:
        """Keep one media item's tower output (T, C, h, w); visible to readers once ``flush`` publishes it."""
        if (slot["key"], slot["stamp"]) in self._stored:  # already stored by this process (media shared by samples)
            return
        self._stored.add((slot["key"], slot["stamp"]))
        if self._writer is None:
            self._writer = ShardWriter(self.directory, self.shard_entries)
        data = features.detach().cpu().contiguous()
        self._writer.add(slot["key"], slot["stamp"], [data.view(torch.uint8).numpy().tobytes()], shape=list(data.shape),
                         dtype=str(data.dtype).removeprefix("torch."), timestamps=timestamps, window=window)  # fmt: skip

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    @property
    def bytes_written(self) -> int:
        return self._writer.bytes_written if self._writer else 0

    def attach(self, tower: nn.Module) -> None:
        """Let ``tower`` take a ``TowerInput``: stored rows pass through, decoded frames run through it and are stored.

        Plain pixel tensors still run as before; parameters and saved weights are untouched.
        """
        if tower.training or any(p.requires_grad for p in tower.parameters()):
            raise ConfigError("--feature_cache needs a frozen tower in eval mode: drop --unfreeze_mm_vision_tower, or drop --feature_cache")
        original = tower.forward

        def forward(pixel_values, *args, **kwargs):
            if not isinstance(pixel_values, TowerInput):
                return original(pixel_values, *args, **kwargs)
            return self._run(original, pixel_values, *args, **kwargs)

        tower.forward = forward

    def _run(self, tower_forward, batch: TowerInput, *args, **kwargs):
        self.stats["cached"] += batch["hits"]
        self.stats["computed"] += len(batch["slots"])
        if batch["pixels"] is None:  # every media item of the batch was stored
            return BaseModelOutputWithPooling(last_hidden_state=batch["features"])
        output = tower_forward(batch["pixels"], *args, **kwargs)
        computed, start = output.last_hidden_state, 0
        for slot in batch["slots"]:
            self.store(slot, computed[start : start + slot["frames"]], slot["timestamps"], slot["window"])
            start += slot["frames"]
        if batch["features"] is None:
            return output
        rows = computed.new_empty((len(batch["from_cache"]), *computed.shape[1:]))
        rows[batch["from_cache"]] = batch["features"].to(rows.dtype)
        rows[~batch["from_cache"]] = computed
        return BaseModelOutputWithPooling(last_hidden_state=rows)

    def epoch_line(self) -> str:
        s = self.stats
        return (f"feature cache: {s['cached']} media read from the cache, {s['computed']} decoded and run through the tower "
                f"({self.bytes_written / 1e6:.3g} MB stored by this process so far)")  # fmt: skip


class TowerInput(dict):
    """``pixel_values`` of a batch read with the feature cache (a dict, so the Trainer moves its tensors).

    ``pixels``: the decoded frames (to run through the tower) or None; ``features``: the stored outputs
    or None; ``from_cache``: (N,) bool, which of the batch's N frames are stored; ``slots``: where each
    decoded media item's output is to be stored (key, stamp, frames, timestamps, window); ``hits``.
    """


def tower_input(media: list[LoadedMedia], to_pixels) -> TowerInput:
    """Batch one collated list of media items: ``LoadedMedia`` hits (features) and decoded items (frames + slot)."""
    pixels = [m.frames for m in media if m.features is None]
    stored = [m.features for m in media if m.features is not None]
    from_cache = torch.cat([torch.full((m.num_frames,), m.features is not None) for m in media])
    slots = [{**m.slot, "frames": m.num_frames, "timestamps": m.timestamps, "window": list(m.window) if m.window else None}
             for m in media if m.features is None]  # fmt: skip
    return TowerInput(
        pixels=to_pixels(torch.cat(pixels)) if pixels else None,
        features=torch.cat(stored) if stored else None,
        from_cache=from_cache,
        slots=slots,
        hits=len(stored),
    )


class FeatureCacheCallback(TrainerCallback):
    """Publishes this process's new entries at each epoch end and logs the counts. Under DDP the ranks
    then wait for each other, so the next epoch finds every rank's entries (none computed twice).

    On resume, checks that the checkpoint's tower (loaded by the Trainer after the cache was opened)
    is still the one the cache is keyed by.
    """

    def __init__(self, cache: FeatureCache, tower: nn.Module | None = None):
        self.cache, self.tower = cache, tower

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.global_step or self.tower is None:
            return
        if args.fsdp or args.deepspeed:  # the weights are sharded by now
            logger.warning("feature cache: cannot check the resumed checkpoint's tower under FSDP/DeepSpeed; it must be the original one")
            return
        expected = self.cache.fingerprint
        if tower_fingerprint(self.tower, getattr(torch, expected["dtype"]), expected["device"]) != expected:
            raise ConfigError(
                "the resumed checkpoint's vision tower differs from --model_name_or_path's (it was trained): "
                "--feature_cache needs the same frozen tower; drop --feature_cache to resume this run"
            )

    def on_epoch_end(self, args, state, control, **kwargs):
        self.cache.flush()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()
        logger.info("epoch %d: %s", round(state.epoch or 0), self.cache.epoch_line())
        self.cache.stats.clear()

    def on_train_end(self, args, state, control, **kwargs):
        self.cache.flush()


def open_feature_cache(root: str | Path | None, model, dtype: torch.dtype, device: str, samples: Iterable[Sample], video: VideoConfig) -> FeatureCache | None:
    """The cache for ``--feature_cache`` (``None`` without one) for this model's tower, its coverage logged."""
    if not root:
        return None
    cache = FeatureCache(root, tower_fingerprint(model.model.vision_tower, dtype, device))
    logger.info("%s", cache.describe(samples, video))
    return cache
