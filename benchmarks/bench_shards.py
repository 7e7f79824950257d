"""Shard reader throughput: rows/s and tokens/s, zero-copy, on one core.

Writes a shard directory (LLaMA's context length, uint16), then measures
- open: ShardDataset(verify="size") and verify="sha256" (MB/s);
- random access: `tokens(i)` views at random rows (what a shuffled sampler does);
- sequential: `iter_rows()` from a resume point;
- batch: `take()` of 8 random rows into one array (a training batch, this one copies);
each reading every token of the rows it touches (a sum), so nothing is measured that was not read.
Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llama_data.pipeline.shards import ShardDataset, ShardWriter  # noqa: E402

CONTEXT = 2048
ROWS = int(os.environ.get("BENCH_SHARD_ROWS", 8192))


def _best(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> dict:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "shards"
        with ShardWriter(out, CONTEXT, "uint16", target_bytes=16 * 1024 * 1024) as w:
            for start in range(0, ROWS, 1024):
                w.add_many(
                    rng.integers(
                        0, 32000, size=(min(1024, ROWS - start), CONTEXT + 1), dtype=np.uint16
                    ),
                    "commoncrawl" if start % 3 else "c4",
                )
            manifest = w.close({"tokenizer": {"vocab_size": 32000, "bos_id": 1, "eos_id": 2}})
        total_bytes = sum(s["bytes"] for s in manifest["shards"])
        t_open = _best(lambda: ShardDataset(out, verify="size"))
        t_sha = _best(lambda: ShardDataset(out, verify="sha256"), repeat=1)
        ds = ShardDataset(out, verify="none")
        n = len(ds)
        row_tokens = CONTEXT + 1
        order = rng.permutation(n)

        def random_access() -> int:
            acc = 0
            for i in order:
                acc += int(ds.tokens(int(i)).sum())
            return acc

        def sequential() -> int:
            acc = 0
            for row in ds.iter_rows(start=n // 3):
                acc += int(row.sum())
            return acc

        def views_only() -> None:
            for i in order:
                ds.tokens(int(i))

        batches = order[: (n // 8) * 8].reshape(-1, 8)

        def batch_take() -> int:
            acc = 0
            for b in batches:
                acc += int(ds.take(b).sum())
            return acc

        ds.tokens(0)
        random_access()  # warm the page cache: measure the reader, not the disk
        t_rand = _best(random_access)
        t_seq = _best(sequential)
        t_views = _best(views_only)
        t_batch = _best(batch_take)
        seq_rows = n - n // 3
        result = {
            "benchmark": "shards",
            "rows": n,
            "context_length": CONTEXT,
            "shards": len(manifest["shards"]),
            "bytes": total_bytes,
            "open_size_s": round(t_open, 4),
            "open_sha256_MBps": round(total_bytes / t_sha / 1e6, 1),
            "random_rows_per_s": round(n / t_rand),
            "random_tokens_per_s": round(n * row_tokens / t_rand),
            "sequential_rows_per_s": round(seq_rows / t_seq),
            "sequential_tokens_per_s": round(seq_rows * row_tokens / t_seq),
            "view_only_rows_per_s": round(n / t_views),
            "batch8_take_tokens_per_s": round(batches.size * row_tokens / t_batch),
            "target_tokens_per_s_per_core": 50_000_000,
        }
        result["meets_target"] = (
            min(result["random_tokens_per_s"], result["sequential_tokens_per_s"]) >= 50_000_000
        )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
