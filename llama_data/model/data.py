"""Batches of token rows from the mixture shards, for one data-parallel rank.

Rows are read in manifest order, memory-mapped by `ShardDataset`: the mixture step already fixed
the global order of the samples (its seeded document order, the sources interleaved in their exact
proportions), so the order does not depend on the number of processes. A global batch of R rows
starting at row p is rows p..p+R-1 whatever the number of processes W: each micro-step takes the
next micro_batch x W of them, and rank r reads every W-th (p+r, p+r+W, ...). The cursor is the
*global* row position, and a new epoch starts (at row 0) only at a global batch boundary, when fewer
than R rows remain; so a run resumed with another number of processes (and the same global batch)
reads the same rows in the same global batches.
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
    """Iterates micro-batches of `micro_batch` rows for `rank` of `world`; checkpointable.

    `global_batch`: rows of one optimizer step across all ranks (a multiple of micro_batch x
    world; default one micro-step); epochs wrap only at its boundaries.
    """

    def __init__(
        self,
        dataset: ShardDataset,
        micro_batch: int,
        rank: int = 0,
        world: int = 1,
        global_batch: int | None = None,
    ):
        if micro_batch <= 0:
            raise ValueError("micro_batch must be positive")
        global_batch = global_batch or micro_batch * world
        if global_batch % (micro_batch * world):
            raise ValueError(
                f"global batch {global_batch} is not a multiple of micro-batch x ranks "
                f"({micro_batch} x {world})"
            )
        if len(dataset) < micro_batch * world:
            raise ValueError(
                f"the shards hold {len(dataset)} rows, fewer than one micro-batch across all "
                f"ranks ({micro_batch} x {world}); use a smaller --micro-batch or more data"
            )
        if len(dataset) < global_batch:
            raise ValueError(
                f"the shards hold {len(dataset)} rows, fewer than one global batch "
                f"({global_batch} rows); use a smaller --batch-tokens or more data"
            )
        self.dataset = dataset
        self.micro_batch = micro_batch
        self.rank = rank
        self.world = world
        self.global_batch = global_batch
        self.position = 0  # next global row
        self.epoch = 0
        self._in_batch = 0  # rows of the current global batch already read (across ranks)

    @property
    def rows_per_micro_step(self) -> int:
        return self.micro_batch * self.world

    def next_batch(self) -> Batch:
        span = self.rows_per_micro_step
        if self._in_batch == 0 and self.position + self.global_batch > len(self.dataset):
            self.position, self.epoch = 0, self.epoch + 1
        first = self.position + self.rank
        idx = range(first, first + span, self.world)
        rows = self.dataset.take(idx).astype(np.int64)
        sources = np.fromiter((self.dataset.source_index(i) for i in idx), dtype=np.int64)
        self.position += span
        self._in_batch = (self._in_batch + span) % self.global_batch
        t = torch.from_numpy(rows)
        return Batch(t[:, :-1], t[:, 1:], torch.from_numpy(sources))

    def state_dict(self) -> dict:
        return {"position": self.position, "epoch": self.epoch, "rows": len(self.dataset)}

    def load_state_dict(self, state: dict) -> None:
        """A cursor saved at a step boundary (checkpoints are taken between steps)."""
        if state.get("rows", len(self.dataset)) != len(self.dataset):
            raise ValueError(
                f"data cursor is for {state['rows']} rows but the shards hold {len(self.dataset)}"
            )
        self.position = int(state["position"])
        self.epoch = int(state["epoch"])
        self._in_batch = 0
