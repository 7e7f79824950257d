"""The stage harness: read -> steps -> (global ops) -> three outputs, with stats and completeness.

A stage is a `StageSpec` whose `build(p, ctx)` composes PTransforms from this module and returns
`StageOutputs(kept, rejected, errors)`. `run_stage` then writes

    OUT/<stage>/part-*.parquet           kept documents (the stage's schema, zstd)
    OUT/<stage>/rejected/part-*.parquet  rejected documents with their `reason`
    OUT/<stage>/errors/part-*.jsonl      dead letters: file, offset or record id, reason, error
    OUT/<stage>/stats.json               Beam counters per stage and reason, accounting check
    OUT/<stage>/_SUCCESS                 written last: fingerprint of inputs + config, counts

Everything is written under `OUT/<stage>/_tmp-<run>/` and renamed into place only when the
pipeline has finished; a stage whose `_SUCCESS` fingerprint matches is skipped on rerun.
Non-Beam work with the same contract (training a model) goes through `run_task`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import resource
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.window import GlobalWindows

from llama_data import __version__
from llama_data.beam_jobs import beam_speedups, fs, orphans
from llama_data.beam_jobs.progress import ProgressDisplay, ProgressWriter
from llama_data.beam_jobs.runners import RunOptions, explain_runner_failure, pipeline_options
from llama_data.beam_jobs.worker_watch import WorkerFailed, watched_workers
from llama_data.pipeline.document import DeadLetter, Document, Rejected
from llama_data.pipeline.errors import UserError
from llama_data.pipeline.io import FileSplit, Reader
from llama_data.pipeline.schema import BASE_SCHEMA, DocumentSchema
from llama_data.pipeline.sketches import Recorder, RecordSpec, merge_samples, split_counters
from llama_data.pipeline.steps import Step, run_steps

log = logging.getLogger("llama_data")

SUCCESS = "_SUCCESS"
STATS = "stats.json"
SAMPLES = "samples.json"


def reason_key(reason: str) -> str:
    """Counter key of a reason: `duplicate_of:<id>` counts as `duplicate_of`."""
    return (
        reason.split(":", 1)[0]
        if reason.startswith(("duplicate_of", "near_duplicate_of"))
        else reason
    )


class StageCounters:
    """Beam counters created on first use, namespaced by stage (Metrics objects are cheap): the
    counter sink a DoFn binds its steps to (`step.bind_counters(StageCounters(stage))`)."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self._cache: dict[str, Any] = {}

    def __call__(self, key: str, n: int = 1) -> None:
        c = self._cache.get(key)
        if c is None:
            c = self._cache[key] = Metrics.counter(self.stage, key)
        c.inc(n)


def record_kept_lengths(recorder: Recorder, table: pa.Table) -> None:
    """A written table of kept documents: their lengths into `recorder`, read from the text
    column's offsets (Arrow strings are UTF-8: the offsets' differences are the byte lengths),
    with no step per document and no import of `pyarrow.compute` in every worker."""
    parts = []
    for chunk in table.column("text").chunks:
        if len(chunk):
            width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
            offsets = np.frombuffer(chunk.buffers()[1], dtype=width)
            parts.append(np.diff(offsets[chunk.offset : chunk.offset + len(chunk) + 1]))
    if parts:
        recorder.add_lengths("kept", "", np.concatenate(parts).astype(np.int64))


def flush_recorder(recorder: Recorder, samples_dir: str | None, counts: dict[str, int]) -> None:
    """A bundle's records out: counter increments added to `counts` (the caller adds those to
    the Beam counters), samples written as one small JSON-lines file under `samples_dir` (the
    run's temporary folder; merged into `samples.json` when the stage finishes)."""
    for key, n in recorder.take_counts().items():
        counts[key] = counts.get(key, 0) + n
    samples = recorder.take_samples()
    if samples and samples_dir is not None:
        body = "".join(json.dumps(r, sort_keys=True) + "\n" for r in samples)
        fs.write_text(fs.join(samples_dir, f"{uuid.uuid4().hex}.jsonl"), body)


# ---------------------------------------------------------------------------------------------
# Reading


class _PlanSplitsFn(beam.DoFn):
    def __init__(self, reader: Reader, stage: str) -> None:
        self.reader = reader
        self.stage = stage

    def process(self, path_size: tuple[str, int]):
        path, size = path_size
        try:
            yield from self.reader.splits(path, size, fs.open_raw)
        except Exception as exc:  # noqa: BLE001 - one unreadable file must not stop the job
            yield beam.pvalue.TaggedOutput(
                "errors",
                DeadLetter(
                    file=path,
                    reason="unreadable_file",
                    error=f"{type(exc).__name__}: {exc}",
                    stage=self.stage,
                ),
            )


class _ReadSplitFn(beam.DoFn):
    def __init__(
        self,
        reader: Reader,
        stage: str,
        progress_dir: str | None,
        annotate: Callable[[Document, Any], Document] | None = None,
    ) -> None:
        self.reader = reader
        self.stage = stage
        self.progress_dir = progress_dir
        self.annotate = annotate

    def setup(self) -> None:
        orphans.die_with_driver()
        beam_speedups.freeze_long_lived()
        self._count = StageCounters(self.stage)
        self.reader.bind_counters(self._count)
        self._progress = ProgressWriter(self.progress_dir)

    def process(self, split: FileSplit, side: Any = None):
        annotate = self.annotate
        try:
            for rec in self.reader.read(split, fs.open_raw):
                self._count("in")
                if isinstance(rec, DeadLetter):
                    rec.stage = rec.stage or self.stage
                    if rec.bytes_skipped:
                        self._count("read.bytes_skipped", rec.bytes_skipped)
                    yield beam.pvalue.TaggedOutput("errors", rec)
                else:
                    text = rec.text
                    # isascii() is O(1) on CPython's compact strings: most texts skip the encode
                    nbytes = (
                        len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
                    )
                    self._count("read.bytes", nbytes)
                    self._progress.add(1, nbytes)
                    yield rec if annotate is None else annotate(rec, side)
        except Exception as exc:  # noqa: BLE001 - a reader bug or an I/O failure mid-file
            self._count("in")
            yield beam.pvalue.TaggedOutput(
                "errors",
                DeadLetter(
                    file=split.path,
                    offset=split.start,
                    reason="reader_error",
                    error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}",
                    stage=self.stage,
                ),
            )

    def finish_bundle(self) -> None:
        self._progress.flush()


SPREAD_DOCS_BYTES = 1 << 30
"""An input file larger than this that its reader cannot split gets its documents reshuffled."""


class ReadDocuments(beam.PTransform):
    """Files matching `patterns` -> documents (`.docs`) and dead letters (`.errors`).

    Files are matched in the driver (so a pattern matching nothing fails before any work), split
    by the reader, and the splits reshuffled so that workers share them. When a file over
    `spread_docs_bytes` cannot be split (`reader.may_split`: a 37 GB Books3 `.jsonl.zst`, Stack
    Overflow's 20 GB `.7z`), its documents would all be worked on by the one worker reading it,
    so the documents are reshuffled too (`SpreadDocs`): reading stays on one worker, the steps
    after it do not.

    `annotate(doc, side)` is applied to each document as it is read, with `side` the singleton
    side input `side` (a lookup table built by the same pipeline, e.g. GitHub's licences): the
    runner then holds back the few file splits until the table is ready, not every document.
    """

    def __init__(
        self,
        patterns: Sequence[str] | Sequence[fs.MatchedFile],
        reader: Reader,
        stage: str,
        progress_dir: str | None = None,
        annotate: Callable[[Document, Any], Document] | None = None,
        side: Any = None,
        spread_docs_bytes: int = SPREAD_DOCS_BYTES,
    ) -> None:
        super().__init__()
        self.spread_docs_bytes = spread_docs_bytes
        self.patterns = list(patterns)
        self.reader = reader
        self.stage = stage
        self.progress_dir = progress_dir
        self.annotate = annotate
        self.side = side

    def expand(self, pbegin):
        files = [p if isinstance(p, fs.MatchedFile) else None for p in self.patterns]
        if any(f is None for f in files):
            files = fs.match_inputs([str(p) for p in self.patterns])
        planned = (
            pbegin
            | "Files" >> beam.Create([(f.path, f.size) for f in files])
            | "Splits"
            >> beam.ParDo(_PlanSplitsFn(self.reader, self.stage)).with_outputs(
                "errors", main="splits"
            )
        )
        fn = _ReadSplitFn(self.reader, self.stage, self.progress_dir, self.annotate)
        side = {} if self.side is None else {"side": beam.pvalue.AsSingleton(self.side)}
        read = (
            planned.splits
            | "Spread" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(fn, **side).with_outputs("errors", main="docs")
        )
        errors = (planned.errors, read.errors) | "Errors" >> beam.Flatten()
        docs = read.docs
        if any(
            f.size > self.spread_docs_bytes and not self.reader.may_split(f.path) for f in files
        ):
            docs = docs | "SpreadDocs" >> beam.Reshuffle()
        return _Tagged(docs=docs, errors=errors)


@dataclass
class _Tagged:
    """Named outputs of a composite transform (`.docs`, `.kept`, `.rejected`, `.errors`)."""

    docs: Any = None
    kept: Any = None
    rejected: Any = None
    errors: Any = None


# ---------------------------------------------------------------------------------------------
# Documents through shuffles


# LZ4 (~1 GB/s) halves what a shuffle moves: the local runner copies each shuffled value
# several times into fresh buffers (page faults were a third of the GitHub stage's CPU).
_LZ4 = pa.Codec("lz4_raw")


def pack_document(doc: Document) -> bytes:
    """A document as bytes for a shuffle value: its uncompressed size (8 bytes), then LZ4.

    Beam's local runner decodes and re-encodes every shuffled value while it groups them; as
    bytes that is a copy, as a `Document` two more pickle round trips. One pickle of a plain
    tuple each way is all that is left.
    """
    raw = pickle.dumps((doc.id, doc.source, doc.text, doc.meta), pickle.HIGHEST_PROTOCOL)
    return len(raw).to_bytes(8, "little") + _LZ4.compress(raw, asbytes=True)


def unpack_document(value: bytes | Document) -> Document:
    """The document of a shuffled value (a `Document` as is: group functions run on lists too)."""
    if isinstance(value, Document):
        return value
    size = int.from_bytes(value[:8], "little")
    return Document(*pickle.loads(_LZ4.decompress(value[8:], decompressed_size=size, asbytes=True)))


# ---------------------------------------------------------------------------------------------
# Steps and dedup


class _StepsFn(beam.DoFn):
    def __init__(self, steps: Sequence[Step], stage: str) -> None:
        self.steps = list(steps)
        self.stage = stage

    def setup(self) -> None:
        orphans.die_with_driver()
        beam_speedups.freeze_long_lived()
        counters = StageCounters(self.stage)
        for step in self.steps:
            step.bind_counters(counters)
            step.setup()

    def process(self, doc: Document):
        for out in run_steps(self.steps, [doc], self.stage):
            if isinstance(out, Document):
                yield out
            elif isinstance(out, Rejected):
                yield beam.pvalue.TaggedOutput("rejected", out)
            else:
                out.stage = out.stage or self.stage
                yield beam.pvalue.TaggedOutput("errors", out)


class ApplySteps(beam.PTransform):
    """Apply engine-free `Step`s in order: `.kept`, `.rejected`, `.errors`."""

    def __init__(self, steps: Sequence[Step], stage: str) -> None:
        super().__init__()
        self.steps = list(steps)
        self.stage = stage

    def expand(self, docs):
        out = docs | "Steps" >> beam.ParDo(_StepsFn(self.steps, self.stage)).with_outputs(
            "rejected", "errors", main="kept"
        )
        return _Tagged(kept=out.kept, rejected=out.rejected, errors=out.errors)


# ---------------------------------------------------------------------------------------------
# Stage specification and running


@dataclass
class StageOutputs:
    """What a stage writes. `kept` is one PCollection or a list of them (written without
    flattening the documents first)."""

    kept: Any
    rejected: list[Any] = field(default_factory=list)
    errors: list[Any] = field(default_factory=list)


@dataclass
class StageContext:
    """What a stage's build function may use: its name, folders, runner and a stats dict."""

    name: str
    output_root: str
    stage_dir: str
    run: RunOptions
    progress_dir: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)  # extra entries for stats.json
    tmp_dir: str | None = None  # this run's folder, renamed into `stage_dir` when it succeeds
    record: RecordSpec = field(default_factory=RecordSpec)  # what is recorded for the report

    def kept_files(self, schema: DocumentSchema) -> KeptFiles | None:
        """Where a transform may write kept documents itself (see `KeptFiles`)."""
        if self.tmp_dir is None:
            return None
        return KeptFiles(
            schema,
            fs.join(self.tmp_dir, "kept"),
            fs.join(self.tmp_dir, "scratch"),
            (self.name, self.record),
            fs.join(self.tmp_dir, "samples"),
        )


@dataclass(frozen=True)
class KeptFiles:
    """A stage's kept-documents folder, for a transform that writes Parquet files there itself
    (the exact dedup, which writes documents before their verdict is known rather than have
    the runner hold them). Files in `kept_dir` are the stage's output, their rows counted as
    `kept` by the writer; `scratch_dir` is for files not yet final. Both are under the run's
    temporary folder, so nothing appears in the stage's folder unless the whole run succeeds,
    and files a failed bundle left behind are deleted with it.
    """

    schema: DocumentSchema
    kept_dir: str
    scratch_dir: str
    # (stage, what to record) for the documents written here, and where their samples go
    record: tuple[str, RecordSpec] | None = None
    samples_dir: str | None = None


@dataclass
class StageSpec:
    name: str
    build: Callable[[beam.Pipeline, StageContext], StageOutputs]
    inputs: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    schema: DocumentSchema = BASE_SCHEMA
    check_accounting: bool = True
    record: RecordSpec = field(default_factory=RecordSpec)  # histograms, samples for the report


@dataclass
class StageResult:
    name: str
    stage_dir: str
    skipped: bool
    stats: dict[str, Any]
    kind: str = "stage"  # "task": work that writes files rather than documents; "graph": dry run

    def summary(self) -> str:
        s = self.stats
        if self.kind == "graph":
            names = ", ".join(s["job_graph"])
            return f"[{self.name}] job graph built, not submitted (dry run): {names}"
        if self.kind == "task" and "in" not in s:
            if self.skipped:
                return f"[{self.name}] complete already, skipped -> {self.stage_dir}"
            return f"[{self.name}] done in {s.get('elapsed_s', 0):.1f}s -> {self.stage_dir}"
        if self.skipped:
            return f"[{self.name}] complete already, skipped ({s.get('kept', 0):,} kept) -> {self.stage_dir}"
        parts = [f"[{self.name}] {s.get('in', 0):,} in, {s.get('kept', 0):,} kept"]
        for label in ("rejected", "errors"):
            by = s.get(label, {})
            if by:
                detail = ", ".join(f"{k}: {v:,}" for k, v in sorted(by.items()))
                parts.append(f"{sum(by.values()):,} {label} ({detail})")
            else:
                parts.append(f"0 {label}")
        return ", ".join(parts) + f" in {s.get('elapsed_s', 0):.1f}s -> {self.stage_dir}"


def fingerprint(name: str, config: dict[str, Any], files: Sequence[fs.MatchedFile]) -> str:
    payload = {
        "stage": name,
        "version": __version__,
        "config": config,
        "inputs": [(f.path, f.size, f.mtime) for f in files],
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def read_success(stage_dir: str) -> dict[str, Any] | None:
    path = fs.join(stage_dir, SUCCESS)
    if not fs.exists(path):
        return None
    try:
        return json.loads(fs.read_text(path))
    except (OSError, ValueError):
        return None


def is_complete(stage_dir: str, fp: str) -> bool:
    done = read_success(stage_dir)
    return bool(done) and done.get("fingerprint") == fp


def _clear_stage_dir(stage_dir: str) -> None:
    """Remove a previous (complete or partial) run's outputs before writing anew."""
    if fs.exists(stage_dir):
        FileSystems.delete([stage_dir])


def _flatten(p: beam.Pipeline, pcolls: list[Any], label: str):
    if not pcolls:
        return p | f"No{label}" >> beam.Create([])
    return tuple(pcolls) | f"All{label}" >> beam.Flatten()


class _ToRowFn(beam.DoFn):
    """Counts the dead letters that leave the stage and encodes them as JSON lines."""

    def __init__(self, stage: str) -> None:
        self.stage = stage

    def setup(self) -> None:
        orphans.die_with_driver()
        self._count = StageCounters(self.stage)

    def process(self, item: DeadLetter):
        item.stage = item.stage or self.stage
        self._count(f"errors.{reason_key(item.reason)}")
        yield item.to_json()


_UNWRITABLE = (pa.ArrowException, OverflowError, UnicodeError, TypeError, ValueError)


class TableBuffer:
    """Rows -> record batches of 1,000 -> one table per ~64 MB of text.

    Tables that large are one Parquet row group each (as Beam's row-dict writer makes), so the
    writer does no per-row work, and what crosses a stage boundary is a few big buffers.
    """

    BATCH_ROWS = 1000
    FLUSH_BYTES = 64 * 1024 * 1024

    def __init__(self, schema: DocumentSchema, rejected: bool = False) -> None:
        self.schema = schema
        self.rejected = rejected
        self.arrow = schema.rejected_arrow if rejected else schema.arrow
        self._rows: list[tuple[Any, ...]] = []
        self._batches: list[pa.RecordBatch] = []
        self._bytes = 0
        # rows the schema cannot hold (a value of the wrong type, a lone surrogate, an integer
        # beyond int64), left out of the tables with their error and their position among the
        # rows added since the last flush (a caller keeping data aligned with the rows drops
        # theirs), for the caller to dead-letter
        self.unwritable: list[tuple[tuple[Any, ...], str, int]] = []
        self._first = 0  # position of `_rows[0]` among the rows added since the last flush

    def __len__(self) -> int:
        return len(self._rows) + sum(b.num_rows for b in self._batches)

    def add(self, row: tuple[Any, ...], text_bytes: int) -> bool:
        """Buffer one `to_values` row; True when the buffer should be flushed."""
        self._rows.append(row)
        self._bytes += text_bytes
        if len(self._rows) >= self.BATCH_ROWS:
            self._batches.append(self._batch(self._rows))
            self._first += len(self._rows)
            self._rows = []
        return self._bytes >= self.FLUSH_BYTES

    def _batch(self, rows: list[tuple[Any, ...]]) -> pa.RecordBatch:
        try:
            return self.schema.batch(rows, rejected=self.rejected)
        except _UNWRITABLE:
            pass
        good = []
        for i, row in enumerate(rows):  # only when a batch failed: find the rows at fault
            try:
                self.schema.batch([row], rejected=self.rejected)
            except _UNWRITABLE as exc:
                self.unwritable.append((row, f"{type(exc).__name__}: {exc}", self._first + i))
            else:
                good.append(row)
        return self.schema.batch(good, rejected=self.rejected)

    def flush(self) -> pa.Table:
        if self._rows:
            self._batches.append(self._batch(self._rows))
            self._rows = []
        table = pa.Table.from_batches(self._batches, schema=self.arrow)
        self._batches, self._bytes, self._first = [], 0, 0
        return table


def unwritable_letter(stage: str, row: tuple[Any, ...], error: str) -> DeadLetter:
    """The dead letter of a row `TableBuffer` could not hold (its id made printable)."""
    return DeadLetter(
        file="",
        record_id=str(row[0]).encode("utf-8", "backslashreplace").decode(),
        reason="unwritable_value",
        error=f"a value the {stage} schema cannot hold: {error}",
        stage=stage,
    )


class _ToTableFn(beam.DoFn):
    """Counts what leaves the stage (kept / rejected by reason) and turns it into Arrow tables
    (`TableBuffer`); counts are summed per bundle and added to the Beam counters once."""

    def __init__(
        self,
        stage: str,
        schema: DocumentSchema,
        kind: str,
        record: RecordSpec | None = None,
        samples_dir: str | None = None,
    ) -> None:
        self.stage = stage
        self.schema = schema
        self.kind = kind
        self.record = record
        self.samples_dir = samples_dir

    def setup(self) -> None:
        orphans.die_with_driver()
        self._count = StageCounters(self.stage)
        enabled = self.record is not None and self.record.enabled
        self._recorder = Recorder(self.record) if enabled else None

    def start_bundle(self) -> None:
        self._buffer = TableBuffer(self.schema, rejected=self.kind != "kept")
        self._counts: dict[str, int] = {}

    def process(self, item):
        if self.kind == "kept":
            key, row, text = "kept", self.schema.to_values(item), item.text
            if self._recorder is not None:  # lengths from the written table (`_recorded`)
                self._recorder.observe_kept(item)
        else:
            reason = reason_key(item.reason)
            key = f"rejected.{reason}"
            row, text = self.schema.to_values(item.doc, item.reason), item.doc.text
            if self._recorder is not None:
                self._recorder.observe(item.doc, "rejected", reason, item.reason)
        self._counts[key] = self._counts.get(key, 0) + 1
        if self._buffer.add(row, len(text)):
            yield self._recorded(self._buffer.flush())
        yield from self._unwritable()

    def _recorded(self, table: pa.Table) -> pa.Table:
        """Kept documents' lengths recorded from the table written (exactly its rows, no step
        per document); rejected ones, fewer, are recorded one by one with their reason."""
        if self._recorder is not None and self.kind == "kept" and table.num_rows:
            record_kept_lengths(self._recorder, table)
        return table

    def _unwritable(self, windowed: bool = False):
        """Rows the buffer could not hold, as dead letters (counted as such, not as written)."""
        for row, error, _ in self._buffer.unwritable:
            key = "kept" if self.kind == "kept" else f"rejected.{reason_key(row[-1])}"
            self._counts[key] -= 1
            letter = unwritable_letter(self.stage, row, error)
            value = GlobalWindows.windowed_value_at_end_of_window(letter) if windowed else letter
            yield beam.pvalue.TaggedOutput("errors", value)
        self._buffer.unwritable.clear()

    def finish_bundle(self):
        table = self._recorded(self._buffer.flush()) if len(self._buffer) else None
        yield from self._unwritable(windowed=True)
        if self._recorder is not None:
            flush_recorder(self._recorder, self.samples_dir, self._counts)
        for key, n in self._counts.items():
            self._count(key, n)
        self._counts = {}
        if table is not None and table.num_rows:
            yield GlobalWindows.windowed_value_at_end_of_window(table)


def _counters(result, stage: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in result.metrics().query(MetricsFilter())["counters"]:
        if c.key.metric.namespace != stage:
            continue
        value = c.committed if c.committed is not None else c.attempted
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + int(value or 0)
    return out


def stats_from_counters(counters: dict[str, int]) -> dict[str, Any]:
    rejected = {k.split(".", 1)[1]: v for k, v in counters.items() if k.startswith("rejected.")}
    errors = {k.split(".", 1)[1]: v for k, v in counters.items() if k.startswith("errors.")}
    kept = counters.get("kept", 0)
    n_in = counters.get("in", 0)
    n_out = kept + sum(rejected.values()) + sum(errors.values())
    return {
        "in": n_in,
        "kept": kept,
        "rejected": dict(sorted(rejected.items())),
        "errors": dict(sorted(errors.items())),
        "accounting": {"ok": n_in == n_out, "in": n_in, "out": n_out},
        "counters": dict(sorted(counters.items())),
    }


def _move_outputs(tmp: str, stage_dir: str) -> None:
    """Rename the finished files from the temp folder into their final places."""
    for sub, dest in (
        ("kept", stage_dir),
        ("rejected", fs.join(stage_dir, "rejected")),
        ("errors", fs.join(stage_dir, "errors")),
    ):
        srcs = fs.list_files(fs.join(tmp, sub))
        if not srcs:
            continue
        FileSystems.mkdirs(dest) if not fs.exists(dest) else None
        dsts = [fs.join(dest, FileSystems.split(s)[1]) for s in srcs]
        FileSystems.rename(srcs, dsts)
    fs.delete_tree(tmp)


def _local_progress_dir(run: RunOptions, stage_dir: str) -> str | None:
    if run.quiet or not run.is_local:
        return None
    return tempfile.mkdtemp(prefix=f"llama-data-progress-{Path(stage_dir).name}-")


@contextlib.contextmanager
def worker_logs_captured(run: RunOptions):
    """Send Beam's own log chatter (driver and local worker processes) to a file.

    Local SDK workers inherit file descriptor 2, so only a descriptor-level redirect silences
    them. The yielded stream is the real stderr, for the progress display. When the run fails,
    the log's tail is printed so nothing needed for a diagnosis is lost. LLAMA_DATA_VERBOSE=1
    turns the capture off.
    """
    if not run.is_local or os.environ.get("LLAMA_DATA_VERBOSE"):
        yield sys.stderr
        return
    sys.stderr.flush()
    saved = os.dup(2)
    log_file = tempfile.NamedTemporaryFile(prefix="llama-data-beam-", suffix=".log", delete=False)  # noqa: SIM115
    os.dup2(log_file.fileno(), 2)
    display = os.fdopen(os.dup(saved), "w", buffering=1)
    failed = False
    try:
        yield display
    except WorkerFailed as exc:  # one line: the log's last line says why, the log where it is
        sys.stderr.flush()
        lines = Path(log_file.name).read_text(errors="replace").splitlines()
        last = next((line.strip() for line in reversed(lines) if line.strip()), "")
        exc.args = (f"{exc.args[0]}; {last[:300]}" if last else exc.args[0], log_file.name)
        raise
    except BaseException:
        failed = True
        raise
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        display.close()
        log_file.close()
        if failed:
            tail = Path(log_file.name).read_text(errors="replace")[-4000:]
            if tail.strip():
                sys.stderr.write(f"--- last lines of the Beam log ({log_file.name}) ---\n{tail}\n")
        else:
            os.unlink(log_file.name)


def _tables(p: beam.Pipeline, pcolls: Any, spec: StageSpec, kind: str, tmp: str):
    """Each PCollection turned into Arrow tables where it is made, then the tables flattened.

    Flattening documents from several stages makes the runner buffer every document once more
    before the writer; turned into tables first, what crosses is one table per bundle. Returns
    the tables and the dead letters of rows the schema could not hold (`unwritable_value`).
    """
    parts = pcolls if isinstance(pcolls, list | tuple) else [pcolls]
    label = kind.capitalize()
    outs = [
        pc
        | f"{label}Rows{i or ''}"
        >> beam.ParDo(
            _ToTableFn(spec.name, spec.schema, kind, spec.record, fs.join(tmp, "samples"))
        ).with_outputs("errors", main="tables")
        for i, pc in enumerate(parts)
    ]
    tables = _flatten(p, [o.tables for o in outs], f"{label}Tables")
    return tables, [o.errors for o in outs]


def _write_stage_outputs(p: beam.Pipeline, spec: StageSpec, outs: StageOutputs, tmp: str) -> None:
    schema = spec.schema
    kept, kept_errors = _tables(p, outs.kept, spec, "kept", tmp)
    rejected, rejected_errors = _tables(p, outs.rejected, spec, "rejected", tmp)
    (
        kept
        | "WriteKept"
        >> beam.io.WriteToParquetBatched(
            fs.join(tmp, "kept", "part"), schema.arrow, codec="zstd", file_name_suffix=".parquet"
        )
    )
    (
        rejected
        | "WriteRejected"
        >> beam.io.WriteToParquetBatched(
            fs.join(tmp, "rejected", "part"),
            schema.rejected_arrow,
            codec="zstd",
            file_name_suffix=".parquet",
        )
    )
    (
        _flatten(p, [*outs.errors, *kept_errors, *rejected_errors], "Errors")
        | "ErrorRows" >> beam.ParDo(_ToRowFn(spec.name))
        | "WriteErrors"
        >> beam.io.WriteToText(fs.join(tmp, "errors", "part"), file_name_suffix=".jsonl")
    )


def run_pipeline(
    run: RunOptions,
    name: str,
    build: Callable[[beam.Pipeline], None],
    progress_dir: str | None = None,
) -> Any:
    """Build one pipeline with `build(p)` and run it to completion on `run`'s runner.

    Beam's log chatter is captured (`worker_logs_captured`), a runner that cannot be reached is
    explained in one line, and the progress written to `progress_dir` is shown while it runs.
    """
    try:
        with (
            orphans.driver_marked(),
            beam_speedups.tuned_run(),
            worker_logs_captured(run) as display_stream,
            watched_workers(run),
        ):
            p = beam.Pipeline(options=pipeline_options(run, name))
            build(p)
            display = (
                ProgressDisplay(progress_dir, name, stream=display_stream)
                if progress_dir
                else contextlib.nullcontext()
            )
            with display:
                result = p.run()
                result.wait_until_finish()
            return result
    except UserError:
        raise
    except WorkerFailed as exc:
        where = f" (Beam log: {exc.args[1]})" if len(exc.args) > 1 else ""
        raise UserError(
            f"[{name}] a local worker process could not start or died: {exc.args[0]}{where}"
        ) from None
    except Exception as exc:
        friendly = explain_runner_failure(run, exc)
        if friendly is not None:
            raise friendly from exc
        raise


def run_stage(
    spec: StageSpec, output_root: str, run: RunOptions, force: bool = False
) -> StageResult:
    """Run one Beam stage to completion (or skip it when complete with the same fingerprint)."""
    stage_dir = fs.join(output_root, spec.name)
    # The driver matches inputs before the pipeline exists: give the filesystems (s3://
    # endpoint, region, keys) the user's options now, or S3 matching fails without a client.
    FileSystems.set_options(PipelineOptions(list(run.pipeline_args)))
    files = fs.match_inputs(spec.inputs) if spec.inputs else []
    if run.graph_only:
        return _build_job_graph(spec, output_root, run)
    fp = fingerprint(spec.name, spec.config, files)
    if not force and is_complete(stage_dir, fp):
        stats = json.loads(fs.read_text(fs.join(stage_dir, STATS)))
        return StageResult(spec.name, stage_dir, True, stats)

    _clear_stage_dir(stage_dir)
    tmp = fs.join(stage_dir, f"_tmp-{uuid.uuid4().hex[:12]}")
    progress_dir = _local_progress_dir(run, stage_dir)
    ctx = StageContext(
        spec.name, output_root, stage_dir, run, progress_dir, tmp_dir=tmp, record=spec.record
    )
    started = time.time()
    cpu = _cpu_seconds()
    try:
        result = run_pipeline(
            run,
            spec.name,
            lambda p: _write_stage_outputs(p, spec, spec.build(p, ctx), tmp),
            progress_dir,
        )
    finally:
        if progress_dir:
            shutil.rmtree(progress_dir, ignore_errors=True)

    counters, sketches = split_counters(_counters(result, spec.name), spec.record)
    stats = stats_from_counters(counters)
    stats.update(
        stage=spec.name,
        runner=run.runner,
        workers=run.workers,
        elapsed_s=round(time.time() - started, 3),
        cpu_s=round(_cpu_seconds() - cpu, 3),
        sketches=sketches,
        inputs={"files": len(files), "bytes": sum(f.size for f in files)},
        config=spec.config,
        # callables are entries only known after the run (e.g. cutoffs the pipeline computed)
        extra={k: (v() if callable(v) else v) for k, v in ctx.stats.items()},
    )
    if spec.check_accounting and not stats["accounting"]["ok"]:
        raise RuntimeError(
            f"stage {spec.name}: accounting mismatch, in={stats['accounting']['in']} "
            f"!= kept+rejected+errors={stats['accounting']['out']}"
        )
    samples = _merged_samples(fs.join(tmp, "samples"), spec.record.samples)
    _move_outputs(tmp, stage_dir)
    fs.write_text(fs.join(stage_dir, SAMPLES), json.dumps(samples, indent=1, sort_keys=True))
    fs.write_text(
        fs.join(stage_dir, STATS), json.dumps(stats, indent=2, sort_keys=True, default=str)
    )
    _write_success(stage_dir, fp, stats)
    return StageResult(spec.name, stage_dir, False, stats)


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (local workers, `lmplz`): what a
    stage cost beside its wall time. Workers still alive (a pool kept between stages) are not
    counted until they exit."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _merged_samples(samples_dir: str, k: int) -> dict[str, Any]:
    """The bundles' sample files merged into the stage's pick (`sketches.merge_samples`)."""
    records = []
    for path in fs.list_files(samples_dir):
        records += [json.loads(line) for line in fs.read_text(path).splitlines() if line]
    return {"k": k, "samples": merge_samples(records, k)}


def job_graph_names(result: Any) -> list[str]:
    """The top-level transforms of the job a runner built (DataflowRunner's dry-run result)."""
    proto = result.job.proto_pipeline
    root = proto.components.transforms[proto.root_transform_ids[0]]
    return [proto.components.transforms[t].unique_name for t in root.subtransforms]


def _build_job_graph(spec: StageSpec, output_root: str, run: RunOptions) -> StageResult:
    """A dry run (`--runner DataflowRunner -- --dry_run=True`): the stage's whole job is built
    and translated by the runner, nothing is submitted, and nothing in the stage's folder is
    read, removed or written (its outputs would go to a temporary folder never made)."""
    stage_dir = fs.join(output_root, spec.name)
    tmp = fs.join(stage_dir, f"_tmp-{uuid.uuid4().hex[:12]}")
    ctx = StageContext(spec.name, output_root, stage_dir, run, None, tmp_dir=tmp)
    started = time.time()
    result = run_pipeline(
        run, spec.name, lambda p: _write_stage_outputs(p, spec, spec.build(p, ctx), tmp)
    )
    stats = {"dry_run": True, "job_graph": job_graph_names(result)}
    stats["elapsed_s"] = round(time.time() - started, 3)
    return StageResult(spec.name, stage_dir, False, stats, kind="graph")


def _write_success(stage_dir: str, fp: str, stats: dict[str, Any]) -> None:
    done = {
        "fingerprint": fp,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "version": __version__,
        "in": stats.get("in"),
        "kept": stats.get("kept"),
    }
    fs.write_text(fs.join(stage_dir, SUCCESS), json.dumps(done, indent=2, sort_keys=True))


# ---------------------------------------------------------------------------------------------
# Non-Beam tasks (model training) with the same completeness contract


@dataclass
class TaskSpec:
    """Work that produces files rather than documents (a trained model, a card).

    `run(workdir, ctx)` writes its files into the local folder `workdir` and returns stats; the
    harness moves them into `OUT/<name>/` and writes stats.json and `_SUCCESS`.
    """

    name: str
    run: Callable[[str, StageContext], dict[str, Any]]
    inputs: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


def run_task(spec: TaskSpec, output_root: str, run: RunOptions, force: bool = False) -> StageResult:
    stage_dir = fs.join(output_root, spec.name)
    files = fs.match_inputs(spec.inputs) if spec.inputs else []
    fp = fingerprint(spec.name, spec.config, files)
    if not force and is_complete(stage_dir, fp):
        stats = json.loads(fs.read_text(fs.join(stage_dir, STATS)))
        return StageResult(spec.name, stage_dir, True, stats, kind="task")
    _clear_stage_dir(stage_dir)
    started = time.time()
    cpu = _cpu_seconds()
    ctx = StageContext(spec.name, output_root, stage_dir, run)
    with tempfile.TemporaryDirectory(prefix=f"llama-data-{spec.name}-") as workdir:
        stats = dict(spec.run(workdir, ctx) or {})
        produced = sorted(p for p in Path(workdir).rglob("*") if p.is_file())
        FileSystems.mkdirs(stage_dir) if not fs.exists(stage_dir) else None
        for src in produced:
            rel = src.relative_to(workdir).as_posix()
            dst = fs.join(stage_dir, rel)
            parent = FileSystems.split(dst)[0]
            if not fs.exists(parent):
                FileSystems.mkdirs(parent)
            FileSystems.copy([str(src)], [dst])
    stats.update(
        stage=spec.name,
        elapsed_s=round(time.time() - started, 3),
        cpu_s=round(_cpu_seconds() - cpu, 3),
        config=spec.config,
    )
    stats.setdefault("inputs", {"files": len(files), "bytes": sum(f.size for f in files)})
    fs.write_text(
        fs.join(stage_dir, STATS), json.dumps(stats, indent=2, sort_keys=True, default=str)
    )
    _write_success(stage_dir, fp, stats)
    return StageResult(spec.name, stage_dir, False, stats, kind="task")
