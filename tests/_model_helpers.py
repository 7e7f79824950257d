"""Shared by the model tests: small shard directories built with the real ShardWriter."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llama_data.pipeline.shards import ShardWriter


def make_shards(
    directory: Path,
    rows: int = 64,
    context: int = 16,
    vocab: int = 64,
    sources: tuple[str, ...] = ("web", "code"),
    seed: int = 0,
    rows_per_shard: int = 24,
) -> Path:
    """Rows that follow a per-source rule (next = a*prev + b mod vocab), so a model can learn.

    Sources alternate row by row, as the mixture step interleaves them.
    """
    rng = np.random.default_rng(seed)
    writer = ShardWriter(
        directory, context, "uint16", rows_per_shard=rows_per_shard, sources=sources
    )
    for i in range(rows):
        k = i % len(sources)
        a, b = 3 + 2 * k, 1 + k
        row = np.empty(context + 1, dtype=np.int64)
        row[0] = rng.integers(0, vocab)
        for t in range(1, context + 1):
            row[t] = (a * row[t - 1] + b) % vocab
        writer.add(row, sources[k])
    writer.close({"tokenizer": {"vocab_size": vocab, "bos_id": 1, "eos_id": 2}})
    return directory
