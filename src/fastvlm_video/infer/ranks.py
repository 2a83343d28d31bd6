"""Evaluation over several processes (``torchrun`` / ``accelerate launch``): who does which questions,
and how their predictions become one ``predictions.jsonl``.

Each rank answers every ``size``-th question still to do and appends its rows to its own
``predictions.rank{R}.jsonl`` in the output folder (a restart reuses it: ``--resume``). At the end
rank 0 gathers every rank's rows (over the process group, so nodes need not share a disk), writes
``predictions.jsonl`` in the data's order, and only then does each rank delete its part file. Metrics
and the report are rank 0's. The ranks agree on what is done before splitting the rest (all-gather of
the ids each one sees), so a restart with another number of processes still covers each question once.

The process group is gloo: evaluation exchanges only ids and result rows (no tensors), and gloo runs
on CPU machines and between nodes alike; the model of each rank sits on its own GPU (``LOCAL_RANK``).
"""

from __future__ import annotations

import datetime
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .predictions import PREDICTIONS

logger = logging.getLogger(__name__)

T = TypeVar("T")
PART = re.compile(r"^predictions\.rank(\d+)\.jsonl$")
TIMEOUT = datetime.timedelta(hours=24)  # ranks wait for the slowest shard; torchrun stops all if one fails


@dataclass(frozen=True)
class Ranks:
    """This process's place among the evaluation processes (``RANK``/``WORLD_SIZE``/``LOCAL_RANK``)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Ranks:
        """The launcher's ranks; a plain ``fastvlm-video evaluate`` is rank 0 of 1. Starts the process group."""
        size = int(os.environ.get("WORLD_SIZE", 1))
        ranks = cls(int(os.environ.get("RANK", 0)), size, int(os.environ.get("LOCAL_RANK", 0)))
        if size > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group("gloo", timeout=TIMEOUT)
        return ranks

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, device: str) -> str:
        """With several processes on GPUs, each rank takes its own (``cuda:LOCAL_RANK``)."""
        if self.size == 1 or device not in ("auto", "cuda"):
            return device
        import torch

        if device == "cuda" or torch.cuda.is_available():
            torch.cuda.set_device(self.local_rank)
            return f"cuda:{self.local_rank}"
        return device

    def shard(self, items: Sequence[T]) -> list[T]:
        """Every ``size``-th item from this rank's index: shards differ by at most one item, long and short mixed."""
        return list(items[self.rank :: self.size])

    def part_file(self, out: Path) -> Path:
        """Where this rank appends its rows: ``predictions.jsonl`` itself when it is the only one."""
        return out / PREDICTIONS if self.size == 1 else out / f"predictions.rank{self.rank}.jsonl"

    def barrier(self) -> None:
        if self.size > 1:
            import torch.distributed as dist

            dist.barrier()

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (just ``[obj]`` alone)."""
        if self.size == 1:
            return [obj]
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.size
        dist.all_gather_object(gathered, obj)
        return gathered

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` on rank 0, in rank order; ``None`` on the others."""
        if self.size == 1:
            return [obj]
        import torch.distributed as dist

        gathered: list[Any] | None = [None] * self.size if self.is_main else None
        dist.gather_object(obj, gathered, dst=0)
        return gathered


def part_files(out: Path) -> list[Path]:
    """Every rank's part file in ``out`` (of this run or of an earlier one with another number of ranks)."""
    return sorted(p for p in out.glob("predictions.rank*.jsonl") if PART.match(p.name))


def merge_rows(order: Sequence[str], *groups: Sequence[dict]) -> list[dict]:
    """One row per id (the first seen wins), the ids of ``order`` first and in that order, then any others."""
    by_id: dict[str, dict] = {}
    for rows in groups:
        for row in rows:
            by_id.setdefault(row["id"], row)
    position = {sid: i for i, sid in enumerate(order)}
    return sorted(by_id.values(), key=lambda r: position.get(r["id"], len(position)))
