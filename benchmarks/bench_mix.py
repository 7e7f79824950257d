"""Mix throughput: rows/s and tokens/s of cutting shards from per-source token streams, one core.

Synthetic token streams (two sources, documents of 50-4000 tokens, seeded) in the exact format
`tokenize` writes, then `prepare_mix` + `run_mix_local` (what each Beam worker does per shard).
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
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llama_data.pipeline.mix_shards import prepare_mix, run_mix_local  # noqa: E402
from llama_data.pipeline.mixture import MixtureSpec, doc_key  # noqa: E402
from llama_data.pipeline.token_streams import summarize, token_file_schema  # noqa: E402

TOKENS = int(os.environ.get("BENCH_MIX_TOKENS", 20_000_000))
CONTEXT = 2048


def _write_source(root: Path, name: str, tokens: int, rng: np.random.Generator) -> None:
    lengths = []
    while sum(lengths) < tokens:
        lengths.append(int(rng.integers(50, 4000)))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = [f"{name}-{i:08d}" for i in range(len(lengths))]
    schema = token_file_schema(np.dtype(np.uint16))
    values = rng.integers(3, 32000, size=int(offsets[-1]), dtype=np.uint16)
    batch = pa.record_batch(
        [
            pa.array(ids),
            pa.array(np.fromiter((doc_key(d) for d in ids), np.uint64, len(ids))),
            pa.array(np.asarray(lengths, dtype=np.int64) * 4),
            pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values)),
        ],
        schema=schema,
    )
    folder = root / name
    folder.mkdir(parents=True)
    counts = {"documents": len(ids), "tokens": int(offsets[-1]), "text_bytes": int(offsets[-1]) * 4}
    meta = {b"llama_data": json.dumps(counts).encode()}
    with (
        pa.OSFile(str(folder / "part-00000.arrow"), "wb") as sink,
        pa.ipc.new_file(sink, schema.with_metadata(meta)) as writer,
    ):
        writer.write_batch(batch)


def main() -> dict:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tokenized"
        root.mkdir()
        _write_source(root, "commoncrawl", int(TOKENS * 0.8), rng)
        _write_source(root, "wikipedia", int(TOKENS * 0.2), rng)
        summarize(
            root, {"path": None, "sha256": "0" * 64, "vocab_size": 32000, "bos_id": 1, "eos_id": 2}
        )
        spec = MixtureSpec({"commoncrawl": 0.8, "wikipedia": 0.2}, {}, "bench")
        start = time.perf_counter()
        job = prepare_mix(root, spec, context_length=CONTEXT, target_bytes=16 * 1024 * 1024)
        t_plan = time.perf_counter() - start
        start = time.perf_counter()
        manifest = run_mix_local(job, Path(tmp) / "shards")
        t_mix = time.perf_counter() - start
    rows = manifest["total_rows"]
    result = {
        "benchmark": "mix",
        "stream_tokens": TOKENS,
        "rows": rows,
        "shards": len(manifest["shards"]),
        "plan_s": round(t_plan, 3),
        "mix_s": round(t_mix, 3),
        "rows_per_s": round(rows / t_mix),
        "tokens_per_s": round(rows * CONTEXT / t_mix),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
