"""Runner overhead of the harness: exact dedup of JSON-lines documents.

Compares the engine-free work alone (read + parse + key every document, in one process) with the
whole `dedup-exact` stage on the local runner (read, shuffle by key, pick, write Parquet), on the
same synthetic input, and reports documents/s and MB/s per core for both.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from pathlib import Path

from llama_data.beam_jobs.documents import make_dedup_exact_stage
from llama_data.beam_jobs.harness import run_stage
from llama_data.beam_jobs.runners import RunOptions
from llama_data.pipeline.dedup import exact_text_key
from llama_data.pipeline.document import Document
from llama_data.pipeline.io import JsonlDocumentReader

N_DOCS = int(os.environ.get("BENCH_DOCS", "100000"))


def _make_input(folder: Path, n: int) -> tuple[list[str], int]:
    rng = random.Random(0)
    words = [f"w{i}" for i in range(5000)]
    paths = []
    size = 0
    for shard in range(4):
        path = folder / f"docs-{shard}.jsonl"
        with path.open("w") as f:
            for i in range(shard, n, 4):
                text = (
                    " ".join(rng.choices(words, k=rng.randint(50, 300)))
                    if i % 10
                    else f"dup {i % 97}"
                )
                f.write(json.dumps({"id": f"d{i:08d}", "text": text}) + "\n")
        paths.append(str(path))
        size += path.stat().st_size
    return paths, size


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths, size = _make_input(Path(tmp), N_DOCS)
        t = time.perf_counter()
        n = 0
        reader = JsonlDocumentReader()
        for p in paths:
            for rec in reader.read_path(p):
                if isinstance(rec, Document):
                    exact_text_key(rec.text)
                    n += 1
        bare = time.perf_counter() - t
        results = {"benchmark": "harness", "docs": n, "mb": round(size / 1e6, 1)}
        results["bare_docs_per_s"] = round(n / bare)
        results["bare_mb_per_s"] = round(size / 1e6 / bare, 2)
        for workers in (1, 2):
            t = time.perf_counter()
            run_stage(
                make_dedup_exact_stage(paths),
                str(Path(tmp) / f"out{workers}"),
                RunOptions(workers=workers, quiet=True),
            )
            el = time.perf_counter() - t
            results[f"stage_w{workers}_s"] = round(el, 2)
            results[f"stage_w{workers}_docs_per_s_per_core"] = round(n / el / workers)
            results[f"stage_w{workers}_mb_per_s"] = round(size / 1e6 / el, 2)
        print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
