"""Batches of token rows from the mixture shards, for one data-parallel rank.

Rows are read in manifest order (the mixture step already interleaved the sources in their exact
proportions), memory-mapped by `ShardDataset`. Rank r of W takes every W-th row: a global batch of
R rows starting at row p is rows p..p+R-1, and rank r reads p+r, p+r+W, ... The cursor is the
*global* row position, so a run can resume with a different number of ranks and read the same rows.
When fewer rows remain than one step across all ranks, the loader starts the next epoch at row 0
(the tail is skipped so that all ranks stay in lockstep).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from llama_data.pipeline.shards import ShardDataset


@dataclass
class Batch:
    inputs: torch.Tensor  # (B, T) int64
    targets: torch.Tensor  # (B, T) int64
    source_ids: torch.Tensor  # (B,) int64, index into the dataset's `sources`


def open_shards(directory: str | Path, verify: str = "size") -> ShardDataset:
    """Open a shard directory; `verify` is sha256/size/none (the manifest is always checked)."""
    return ShardDataset(directory, verify=verify)


class ShardLoader:
    """Iterates micro-batches of `micro_batch` rows for `rank` of `world`; checkpointable."""

    def __init__(self, dataset: ShardDataset, micro_batch: int, rank: int = 0, world: int = 1):
        if micro_batch <= 0:
            raise ValueError("micro_batch must be positive")
        if len(dataset) < micro_batch * world:
            raise ValueError(
                f"the shards hold {len(dataset)} rows, fewer than one micro-batch across all "
                f"ranks ({micro_batch} x {world}); use a smaller --micro-batch or more data"
            )
        self.dataset = dataset
        self.micro_batch = micro_batch
        self.rank = rank
        self.world = world
        self.position = 0  # next global row
        self.epoch = 0

    @property
    def rows_per_micro_step(self) -> int:
        return self.micro_batch * self.world

    def next_batch(self) -> Batch:
        span = self.rows_per_micro_step
        if self.position + span > len(self.dataset):
            self.position, self.epoch = 0, self.epoch + 1
        first = self.position + self.rank
        idx = range(first, first + span, self.world)
        rows = self.dataset.take(idx).astype(np.int64)
        sources = np.fromiter((self.dataset.source_index(i) for i in idx), dtype=np.int64)
        self.position += span
        t = torch.from_numpy(rows)
        return Batch(t[:, :-1], t[:, 1:], torch.from_numpy(sources))

    def state_dict(self) -> dict:
        return {"position": self.position, "epoch": self.epoch, "rows": len(self.dataset)}

    def load_state_dict(self, state: dict) -> None:
        if state.get("rows", len(self.dataset)) != len(self.dataset):
            raise ValueError(
                f"data cursor is for {state['rows']} rows but the shards hold {len(self.dataset)}"
            )
        self.position = int(state["position"])
        self.epoch = int(state["epoch"])
