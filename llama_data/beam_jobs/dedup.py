"""Global exact dedup that shuffles only the documents whose key occurs more than once.

Shuffling every document to its key's reducer moves the whole corpus through the runner's
shuffle (on the local runner the dearest step of a stage: encode, copy, group, decode), while
most documents are unique. So the dedup runs in three passes over compact data first:

1. `BundleKeys`: each bundle packs the 64-bit keys it saw, split into `shards` by key, as one
   uint64 array per shard (8 bytes a document in the shuffle, not one element each).
2. `Duplicated`: each shard's reducer finds the keys seen at least twice; their count sizes a
   Bloom filter, each shard adds its keys to its own copy and the copies are OR-merged.
3. `Route`: with the filter as a side input (~10 bits a duplicated key, 1% false positives),
   a document whose key misses is unique and goes straight to the output; a hit goes through
   the exact document shuffle below, where the winner is picked by a stable order key. The
   side input grows with the duplicated keys, so past `MAX_BLOOM_KEYS` (67 million, an 80 MB
   filter) it is a 64-bit filter that every key hits: every document is then shuffled.

No process holds all keys: pass 1 holds a bundle's, pass 2 one shard's, and the filter is sized by
the duplicated keys only. The verdict never depends on the filter: a false positive only sends a
unique document through the shuffle, where it is alone in its group and kept.

Where the dedup is a stage's last step, the stage passes `kept_files` and the documents do not
wait for the filter at all: pass 1 writes them into provisional Parquet files as they come
(`WriteProvisional`), and pass 3 settles each file by its rows' keys (`Settle`): moved into the
kept folder as it is when no key hits the filter, else rewritten without the hits, which go
through the shuffle as above. Only file names and keys wait; on the local runner, which holds
everything that waits in memory and copies it through its data plane, this took the GitHub
stage's benchmark from 7.3 to ~5.8 CPU-s and its peak memory from 0.9 to 0.45 GB. Elsewhere
(a step follows the dedup) the documents wait, LZ4-packed.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

from llama_data.beam_jobs import fs
from llama_data.beam_jobs.harness import (
    KeptFiles,
    StageCounters,
    TableBuffer,
    flush_recorder,
    pack_document,
    record_kept_lengths,
    unpack_document,
    unwritable_letter,
)
from llama_data.pipeline.bloom import BloomFilter
from llama_data.pipeline.dedup import key64, order_key, repeated_keys
from llama_data.pipeline.document import Document, Rejected
from llama_data.pipeline.schema import row_to_document
from llama_data.pipeline.sketches import Recorder

DEFAULT_SHARDS = 64
BLOOM_ERROR_RATE = 0.01
MAX_BLOOM_KEYS = 1 << 26
"""Duplicated keys past which no filter is built (it would be given to every worker: 80 MB at
this count); every document then goes through the document shuffle, with the same verdicts."""


def default_order(doc: Document) -> tuple[str, ...]:
    """Among duplicates the smallest (id, source) is kept (see `order_key`)."""
    return order_key(doc.id, doc.source)


def _shard_chunks(keys: list[int], shards: int):
    """A bundle's keys as (shard, packed uint64 chunk) elements, one per shard it touched."""
    if not keys:
        return
    array = np.array(keys, dtype=np.uint64)
    shard = array % np.uint64(shards)
    for s in np.unique(shard):
        chunk = array[shard == s].tobytes()
        yield GlobalWindows.windowed_value_at_end_of_window((int(s), chunk))


class _BundleKeysFn(beam.DoFn):
    """(key, packed doc) -> per bundle and shard, the packed uint64 keys it saw."""

    def __init__(self, shards: int) -> None:
        self.shards = shards

    def start_bundle(self) -> None:
        self._keys: list[int] = []

    def process(self, item: tuple[bytes, bytes]):
        self._keys.append(key64(item[0]))
        return ()

    def finish_bundle(self):
        keys, self._keys = self._keys, []
        yield from _shard_chunks(keys, self.shards)


class _WriteProvisionalFn(beam.DoFn):
    """Documents -> provisional Parquet files in the scratch folder (one per bundle and ~64 MB of
    text), each as (path, its rows' packed uint64 keys); per bundle and shard, the keys it saw
    (tagged `keys`); rows the schema cannot hold as `unwritable_value` dead letters (tagged
    `errors`), their keys dropped with them so a file's keys stay aligned with its rows.

    Written at once, the documents need not wait for the verdict: the runner would otherwise
    hold every one of them until the Bloom filter is ready (on the local runner, all in memory
    and each copied through its data plane), which cost the GitHub stage about a third of the
    filters' own time.
    """

    def __init__(
        self, stage: str, key_fn: Callable[[Document], bytes], files: KeptFiles, shards: int
    ):
        self.stage = stage
        self.key_fn = key_fn
        self.files = files
        self.shards = shards

    def setup(self) -> None:
        # recorded as kept when written (the report's lengths and samples); the rows later
        # found contested are taken back by `_SettleFileFn` and recorded where they end up
        self._recorder, self._count = _recorder_of(self.files)

    def start_bundle(self) -> None:
        self._buffer = TableBuffer(self.files.schema)
        self._keys: list[int] = []  # the bundle's; those from `_file_start` on are the file's
        self._file_start = 0

    def process(self, doc: Document):
        self._keys.append(key64(self.key_fn(doc)))
        if self._recorder is not None:
            self._recorder.observe_kept(doc)
        if self._buffer.add(self.files.schema.to_values(doc), len(doc.text)):
            yield from self._write(windowed=False)

    def finish_bundle(self):
        if self._file_start < len(self._keys):
            yield from self._write(windowed=True)
        _flush(self._recorder, self._count, self.files)  # after the last file's lengths
        keys, self._keys = self._keys, []
        for chunk in _shard_chunks(keys, self.shards):
            yield beam.pvalue.TaggedOutput("keys", chunk)

    def _write(self, windowed: bool):
        """The buffered rows as one provisional file (when any is writable) and dead letters."""
        table = self._buffer.flush()
        if self._recorder is not None and table.num_rows:
            record_kept_lengths(self._recorder, table)
        file_keys = self._keys[self._file_start :]
        if self._buffer.unwritable:
            dropped = {position for _, _, position in self._buffer.unwritable}
            file_keys = [k for i, k in enumerate(file_keys) if i not in dropped]
            del self._keys[self._file_start :]
            self._keys.extend(file_keys)  # the dead letters' keys take no part in the dedup
            for row, error, _ in self._buffer.unwritable:
                letter = unwritable_letter(self.stage, row, error)
                yield beam.pvalue.TaggedOutput(
                    "errors",
                    GlobalWindows.windowed_value_at_end_of_window(letter) if windowed else letter,
                )
            self._buffer.unwritable.clear()
        self._file_start = len(self._keys)
        if not table.num_rows:
            return
        keys = np.array(file_keys, dtype=np.uint64).tobytes()
        # Named by what the file holds, so the stage's files sort the same way in every run
        # (readers take a stage's files in name order), then made unique: two bundles holding
        # the same rows (one input given twice) must not overwrite each other.
        digest = hashlib.sha1(keys, usedforsecurity=False)
        for chunk in table.column("id").chunks:
            digest.update(chunk.buffers()[2] or b"")
        name = f"dedup-{digest.hexdigest()[:20]}-{uuid.uuid4().hex[:8]}.parquet"
        path = fs.join(self.files.scratch_dir, name)
        fs.write_parquet(path, table)
        value = (path, keys)
        yield GlobalWindows.windowed_value_at_end_of_window(value) if windowed else value


def _recorder_of(files: KeptFiles) -> tuple[Recorder | None, StageCounters | None]:
    if files.record is None or not files.record[1].enabled:
        return None, None
    stage, spec = files.record
    return Recorder(spec), StageCounters(stage)


def _flush(recorder: Recorder | None, count: StageCounters | None, files: KeptFiles) -> None:
    if recorder is None or count is None:
        return
    counts: dict[str, int] = {}
    flush_recorder(recorder, files.samples_dir, counts)
    for key, n in counts.items():
        if n:
            count(key, n)


def _duplicated_in_shard(item: tuple[int, Iterable[bytes]]) -> bytes:
    return repeated_keys(item[1]).tobytes()


class _BloomPartFn(beam.DoFn):
    """One shard's duplicated keys in a filter sized for all of them (so the parts OR-merge).

    Past `max_keys` duplicated keys in all, the part is a 64-bit filter with every bit set, in
    which every key hits: a side input that grows with the corpus is bounded this way, and the
    dedup falls back to shuffling every document (a false positive never changes a verdict)."""

    def __init__(self, max_keys: int = MAX_BLOOM_KEYS) -> None:
        self.max_keys = max_keys

    def process(self, packed: bytes, total: int):
        if not packed:
            return
        if total > self.max_keys:
            yield BloomFilter(64, 1, np.full(1, np.iinfo(np.uint64).max, dtype=np.uint64))
            return
        bloom = BloomFilter.for_capacity(total, BLOOM_ERROR_RATE)
        bloom.add(np.frombuffer(packed, dtype=np.uint64))
        yield bloom


class _UnionFn(beam.CombineFn):
    """OR of same-shaped Bloom filters; None when no key is duplicated anywhere."""

    def create_accumulator(self) -> BloomFilter | None:
        return None

    def add_input(self, acc: BloomFilter | None, bloom: BloomFilter) -> BloomFilter:
        return bloom if acc is None else acc.union(bloom)

    def merge_accumulators(self, accs: Iterable[BloomFilter | None]) -> BloomFilter | None:
        out = None
        for acc in accs:
            if acc is not None:
                out = acc if out is None else out.union(acc)
        return out

    def extract_output(self, acc: BloomFilter | None) -> BloomFilter | None:
        return acc


class _RouteFn(beam.DoFn):
    """Unique documents to the main output; possible duplicates, keyed, to `contested`."""

    def __init__(self, stage: str, order_fn: Callable[[Document], tuple[str, ...]]) -> None:
        self.stage = stage
        self.order_fn = order_fn

    def setup(self) -> None:
        self._contested = Metrics.counter(self.stage, "dedup.contested")

    def process(self, item: tuple[bytes, bytes], bloom: BloomFilter | None):
        key, packed = item
        doc = unpack_document(packed)
        if bloom is None or key64(key) not in bloom:
            yield doc
            return
        self._contested.inc()
        value = (self.order_fn(doc), doc.id, packed)
        yield beam.pvalue.TaggedOutput("contested", (key, value))


class _SettleFileFn(beam.DoFn):
    """A provisional file by the Bloom filter: without a hit it is moved into the kept folder
    as it is; with hits, its other rows are written there and the hits become documents for the
    exact shuffle (tagged `contested`). Its rows are counted as kept here. The provisional file
    is only read, never changed, so a retried bundle finds it as the first attempt did."""

    def __init__(
        self,
        stage: str,
        key_fn: Callable[[Document], bytes],
        order_fn: Callable[[Document], tuple[str, ...]],
        files: KeptFiles,
    ) -> None:
        self.stage = stage
        self.key_fn = key_fn
        self.order_fn = order_fn
        self.files = files

    def setup(self) -> None:
        self._kept = Metrics.counter(self.stage, "kept")
        self._contested = Metrics.counter(self.stage, "dedup.contested")
        self._recorder, self._count = _recorder_of(self.files)

    def finish_bundle(self) -> None:
        _flush(self._recorder, self._count, self.files)

    def process(self, item: tuple[str, bytes], bloom: BloomFilter | None):
        path, packed_keys = item
        keys = np.frombuffer(packed_keys, dtype=np.uint64)
        hit = bloom.contains(keys) if bloom is not None else np.zeros(len(keys), dtype=bool)
        n_hit = int(hit.sum())
        self._kept.inc(len(keys) - n_hit)
        dest = fs.join(self.files.kept_dir, "part-" + fs.basename(path))
        if n_hit == 0:
            fs.move(path, dest)
            return
        self._contested.inc(n_hit)
        table = fs.read_parquet(path)
        if n_hit < len(keys):
            fs.write_parquet(dest, table.filter(pa.array(~hit)))
        for row in table.filter(pa.array(hit)).to_pylist():
            doc = row_to_document(row)
            if self._recorder is not None:  # recorded again where it ends up
                self._recorder.unobserve(doc)
            value = (self.order_fn(doc), doc.id, pack_document(doc))
            yield beam.pvalue.TaggedOutput("contested", (self.key_fn(doc), value))


def pick_first(item: tuple[bytes, Iterable[Any]], reason: str = "duplicate_of", name_winner=True):
    """Keep the document with the smallest order key; reject the others as its duplicates.

    Values are (order key, id, packed document). Two passes over the grouped values instead of a
    list: runners page large groups lazily, so a hot key (one page seen a million times) needs no
    memory per duplicate, and the first pass unpacks nothing. The rejected copies name the kept
    one in `meta["duplicate_of"]`, and in the reason (`duplicate_of:<id>`) when `name_winner`;
    their text, which the kept copy has, is not written again.
    """
    _, values = item
    winner = min((v[0], v[1]) for v in values)
    kept = False
    why = f"{reason}:{winner[1]}" if name_winner else reason
    for order, doc_id, packed in values:
        doc = unpack_document(packed)
        if not kept and (order, doc_id) == winner:
            kept = True
            yield doc
        else:
            dup = doc.with_text("", duplicate_of=winner[1])  # the kept copy has the text
            yield beam.pvalue.TaggedOutput("rejected", Rejected(dup, why))


class ExactDedup(beam.PTransform):
    """Global exact dedup by `key_fn(doc)` (a digest of 8+ bytes): `.kept`, `.rejected` and
    `.errors` (see `_DedupOutputs`).

    The scope is the whole input, not a file or a worker; the kept copy is chosen by `order_fn`
    (default: smallest (id, source)), so the result does not depend on worker count or arrival
    order. `reason` is the rejection reason (`duplicate_of:<kept id>` by default, the bare
    `reason` when `name_winner` is False).
    """

    def __init__(
        self,
        key_fn: Callable[[Document], bytes],
        stage: str,
        order_fn: Callable[[Document], tuple[str, ...]] = default_order,
        reason: str = "duplicate_of",
        name_winner: bool = True,
        shards: int = DEFAULT_SHARDS,
        kept_files: KeptFiles | None = None,
        max_bloom_keys: int = MAX_BLOOM_KEYS,
    ) -> None:
        super().__init__()
        self.max_bloom_keys = max_bloom_keys
        self.key_fn = key_fn
        self.stage = stage
        self.order_fn = order_fn
        self.reason = reason
        self.name_winner = name_winner
        self.shards = shards
        self.kept_files = kept_files

    def expand(self, docs):
        key_fn, reason, name_winner = self.key_fn, self.reason, self.name_winner
        files = self.kept_files
        if files is not None:
            staged = docs | "WriteProvisional" >> beam.ParDo(
                _WriteProvisionalFn(self.stage, key_fn, files, self.shards)
            ).with_outputs("keys", "errors", main="files")
            shard_keys = staged.keys
            errors = [staged.errors]
        else:
            errors = []
        if files is None:
            # packed (LZ4): the runner buffers these until the Bloom filter is ready; as bytes
            # they are half the size and cross with one pickle of a plain tuple (GitHub: -4%)
            keyed = docs | "Key" >> beam.Map(lambda d: (key_fn(d), pack_document(d)))
            shard_keys = keyed | "BundleKeys" >> beam.ParDo(_BundleKeysFn(self.shards))
        duplicated = (
            shard_keys
            | "ByShard" >> beam.GroupByKey()
            | "Duplicated" >> beam.Map(_duplicated_in_shard)
        )
        total = (
            duplicated
            | "Count" >> beam.Map(lambda packed: len(packed) // 8)
            | "Total" >> beam.CombineGlobally(sum)
        )
        bloom = (
            duplicated
            | "BloomParts"
            >> beam.ParDo(_BloomPartFn(self.max_bloom_keys), total=beam.pvalue.AsSingleton(total))
            | "Bloom" >> beam.CombineGlobally(_UnionFn())
        )
        bloom_side = beam.pvalue.AsSingleton(bloom)
        if files is not None:
            routed = staged.files | "Settle" >> beam.ParDo(
                _SettleFileFn(self.stage, key_fn, self.order_fn, files), bloom=bloom_side
            ).with_outputs("contested", main="unique")
            unique = None  # written to the kept folder by `Settle`
        else:
            routed = keyed | "Route" >> beam.ParDo(
                _RouteFn(self.stage, self.order_fn), bloom=bloom_side
            ).with_outputs("contested", main="unique")
            unique = routed.unique
        picked = (
            routed.contested
            | "Group" >> beam.GroupByKey()
            | "Pick"
            >> beam.FlatMap(pick_first, reason=reason, name_winner=name_winner).with_outputs(
                "rejected", main="kept"
            )
        )
        kept = [picked.kept] if unique is None else [unique, picked.kept]
        return _DedupOutputs(kept, picked.rejected, errors)


class _DedupOutputs:
    """`.kept` is a list: the unique documents and the winners of the contested groups, which
    come from different stages (flattening them would buffer every document once more; the
    harness writes a list of PCollections as it is). `.errors` is a list too: with `kept_files`,
    the dead letters of rows the schema could not hold (the dedup wrote them), else empty."""

    def __init__(self, kept: list, rejected, errors: list) -> None:
        self.kept = kept
        self.rejected = rejected
        self.errors = errors


__all__ = ["ExactDedup", "default_order", "pick_first"]
