"""What recording for the build report costs a stage (issue #18: at most 2%).

Every document leaving a stage goes through `sketches.Recorder.observe` (length and byte
counters, declared histograms and categories, the sample pick). Measured two ways, on the
harness benchmark's input (`bench_harness`: synthetic JSON-lines documents, 10% short
duplicates), the cheapest stages per document there are, so the worst case for a relative cost:

1. `observe` alone: CPU per document beside the stage's own CPU per document;
2. whole stages on the local runner, 1 worker, recording on and off (`RecordSpec(enabled=False)`)
   in interleaved rounds (off, on, off, on, ...) so machine load drifts over both alike:
   `read` (every document through the harness's writer) and `dedup-exact` (documents written
   provisionally, contested ones taken back). CPU seconds of the process (steadier than wall
   time on a shared machine) and wall seconds; medians over the rounds. On a shared machine the
   rounds vary by more than the cost, so `<stage>_implied_overhead_pct` also divides (1) by the
   stage's CPU per document in its fastest round without recording.

`BENCH_DOCS` (default 100,000) and `BENCH_ROUNDS` (default 3) set the size.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.bench_harness import _make_input
from llama_data.beam_jobs.documents import make_dedup_exact_stage, make_read_stage
from llama_data.beam_jobs.harness import run_stage
from llama_data.beam_jobs.runners import RunOptions
from llama_data.pipeline.document import Document
from llama_data.pipeline.io import JsonlDocumentReader
from llama_data.pipeline.sketches import Category, Histogram, Recorder, RecordSpec

N_DOCS = int(os.environ.get("BENCH_DOCS", "100000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _observe_cost(docs: list[Document]) -> dict[str, float]:
    """ns per document of the recording as the harness's writer does it: `observe_kept` or
    `observe` per document
    (samples, declared histograms; a rejected one's length), kept lengths from each written
    table's Arrow text column (`record_kept_lengths`, tables of 1,000 rows here), counters out
    per bundle (`take_counts`). With
    the default spec and with a histogram and a category declared (what the CommonCrawl and
    GitHub stages declare); the bare loop's time subtracted; best of 5."""
    import pyarrow as pa

    from llama_data.beam_jobs.harness import record_kept_lengths

    tables = [
        pa.table({"text": [d.text for d in docs[i : i + 1000]]}) for i in range(0, len(docs), 1000)
    ]
    kinds = ["kept" if i % 10 else "rejected" for i in range(len(docs))]
    out = {}
    full = RecordSpec(
        histograms=(Histogram("score", "score", 0.0, 1.0, 50),),
        categories=(Category("ext", "path", derive="extension"),),
    )

    def bare() -> float:
        t = time.process_time()
        for _d, _kind in zip(docs, kinds, strict=True):
            pass
        return time.process_time() - t

    def recorded(spec: RecordSpec) -> float:
        rec = Recorder(spec)
        t = time.process_time()
        for d, kind in zip(docs, kinds, strict=True):
            if kind == "kept":
                rec.observe_kept(d)
            else:
                rec.observe(d, kind, "too_short", "too_short")
        for table in tables:
            record_kept_lengths(rec, table)
        rec.take_counts()
        rec.take_samples()
        return time.process_time() - t

    loop = min(bare() for _ in range(5))
    for label, spec in (("default", RecordSpec()), ("histogram_and_category", full)):
        best = min(recorded(spec) for _ in range(5))
        out[f"observe_ns_per_doc_{label}"] = round(1e9 * (best - loop) / len(docs))
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths, size = _make_input(Path(tmp), N_DOCS)
        docs = [
            Document(d.id, d.source, d.text, {**d.meta, "score": 0.5, "path": "a/b.py"})
            for p in paths
            for d in JsonlDocumentReader().read_path(p)
            if isinstance(d, Document)
        ]
        results: dict[str, object] = {"benchmark": "report", "docs": len(docs)}
        results["mb"] = round(size / 1e6, 1)
        results.update(_observe_cost(docs))
        del docs
        stages = {"read": lambda: make_read_stage(paths, "bench", "read")}
        stages["dedup-exact"] = lambda: make_dedup_exact_stage(paths)
        for name, make in stages.items():
            times: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
            for r in range(ROUNDS):
                for enabled in (False, True):
                    spec = dataclasses.replace(make(), record=RecordSpec(enabled=enabled))
                    wall, cpu = time.perf_counter(), _cpu()
                    run_stage(
                        spec,
                        str(Path(tmp) / f"{name}-{r}-{enabled}"),
                        RunOptions(workers=1, quiet=True),
                    )
                    times[enabled].append((time.perf_counter() - wall, _cpu() - cpu))
            for enabled, label in ((False, "off"), (True, "on")):
                results[f"{name}_{label}_wall_s"] = [round(w, 2) for w, _ in times[enabled]]
                results[f"{name}_{label}_cpu_s"] = [round(c, 2) for _, c in times[enabled]]
            off = statistics.median(c for _, c in times[False])
            on = statistics.median(c for _, c in times[True])
            results[f"{name}_cpu_overhead_pct"] = round(100 * (on - off) / off, 2)
            pairs = [
                100 * (b[1] - a[1]) / a[1] for a, b in zip(times[False], times[True], strict=True)
            ]
            results[f"{name}_cpu_overhead_pct_per_round"] = [round(x, 2) for x in pairs]
            offw = statistics.median(w for w, _ in times[False])
            onw = statistics.median(w for w, _ in times[True])
            results[f"{name}_wall_overhead_pct"] = round(100 * (onw - offw) / offw, 2)
            results[f"{name}_us_per_doc_on"] = round(1e6 * on / results["docs"], 1)
            # what `observe` alone adds to the stage's fastest round (its least-loaded one): the
            # figure machine load cannot blur, and the upper bound of the relative cost
            fastest = min(c for _, c in times[False]) / results["docs"]
            results[f"{name}_implied_overhead_pct"] = round(
                100 * results["observe_ns_per_doc_default"] * 1e-9 / fastest, 2
            )
        print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
