"""Writing the mixed shards: per-source token streams -> training rows -> shards + manifest.

`mixture.py` decides how many rows each source gets and in which order (Table 1 weights, epochs,
the largest-deficit schedule); this module cuts those rows out of the token streams and writes
them.

Each source's stream is its documents concatenated in a seeded order, epoch after epoch (a new
order each epoch). Row r of a source is stream[r * L : r * L + L + 1] (rows overlap by one token,
so every stream token is a target once). The global row sequence interleaves sources by the
periodic largest-deficit schedule, so where any row comes from, and from which stream position,
is a pure function of its index: every shard can be computed on its own, by any worker, and the
result is byte-identical whatever the number of workers.

Work splits into `prepare_mix` (plan + manifest skeleton, in the driver), `write_mix_shard`
(one shard, anywhere) and `finish_mix` (manifest, rename into place).
"""

from __future__ import annotations

import os
import shutil
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llama_data.pipeline.mixture import (
    MixturePlan,
    MixtureSpec,
    Schedule,
    SourceStats,
    epoch_order,
    plan_mixture,
)
from llama_data.pipeline.shards import (
    DEFAULT_TARGET_BYTES,
    DTYPES,
    MANIFEST_NAME,
    ShardError,
    build_manifest,
    dtype_for_vocab,
    run_tmp_dir,
    shard_name,
    write_manifest,
    write_shard_file,
)
from llama_data.pipeline.token_streams import TokenizedSource, read_summary


class SourceStream:
    """Random access to the rows of one source's epoch-after-epoch stream."""

    def __init__(self, source: TokenizedSource, seed: int, context_length: int) -> None:
        self.source = source
        self.seed = seed
        self.context_length = context_length
        self.total = source.tokens
        self._epochs: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def _epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(document order, cumulative token starts) of one epoch, two epochs kept in memory."""
        cached = self._epochs.get(epoch)
        if cached is None:
            order = epoch_order(self.source.keys, self.seed, self.source.name, epoch)
            starts = np.zeros(len(order) + 1, dtype=np.int64)
            np.cumsum(self.source.lengths[order], out=starts[1:])
            cached = self._epochs[epoch] = (order, starts)
            while len(self._epochs) > 2:
                self._epochs.popitem(last=False)
        return cached

    def slice(self, start: int, stop: int) -> np.ndarray:
        """Stream tokens [start, stop) (crossing documents and epochs as needed)."""
        out = np.empty(stop - start, dtype=self.source.dtype)
        filled, pos = 0, start
        while pos < stop:
            epoch, offset = divmod(pos, self.total)
            order, starts = self._epoch(epoch)
            k = int(np.searchsorted(starts, offset, side="right")) - 1
            skip = offset - int(starts[k])
            while pos < stop and k < len(order):
                tokens = self.source.doc_tokens(int(order[k]))[skip:]
                take = min(tokens.shape[0], stop - pos)
                out[filled : filled + take] = tokens[:take]
                filled += take
                pos += take
                skip = 0
                k += 1
        return out

    def rows(self, first_row: int, n_rows: int) -> np.ndarray:
        """Rows first_row .. first_row + n_rows - 1, each context_length + 1 tokens (a view)."""
        length = self.context_length
        flat = self.slice(first_row * length, (first_row + n_rows) * length + 1)
        return np.lib.stride_tricks.as_strided(
            flat, shape=(n_rows, length + 1), strides=(length * flat.itemsize, flat.itemsize)
        )


@dataclass(frozen=True)
class MixJob:
    """Everything a worker needs to write any shard (picklable)."""

    tokenized_dir: str
    plan: MixturePlan
    seed: int
    dtype: str
    rows_per_shard: int
    manifest_extra: dict[str, Any]

    @property
    def n_shards(self) -> int:
        return -(-self.plan.total_rows // self.rows_per_shard)

    def shard_range(self, index: int) -> tuple[int, int]:
        start = index * self.rows_per_shard
        return start, min(self.plan.total_rows, start + self.rows_per_shard)


def prepare_mix(
    tokenized_dir: str | os.PathLike[str],
    spec: MixtureSpec,
    context_length: int = 2048,
    total_tokens: int | None = None,
    renormalize: bool = False,
    seed: int = 0,
    target_bytes: int = DEFAULT_TARGET_BYTES,
    rows_per_shard: int | None = None,
    output_dir: str | os.PathLike[str] | None = None,
) -> MixJob:
    """Plan the mixture from the tokenized streams' summary; raises MixtureError for the user."""
    summary = read_summary(tokenized_dir)
    available = {
        name: SourceStats(s["documents"], s["tokens"], s["text_bytes"])
        for name, s in summary["sources"].items()
    }
    plan = plan_mixture(available, spec, context_length, total_tokens, renormalize)
    tok = dict(summary["tokenizer"])
    dtype = dtype_for_vocab(int(tok["vocab_size"]))
    if rows_per_shard is None:
        row_bytes = (context_length + 1) * DTYPES[dtype].itemsize
        rows_per_shard = max(1, target_bytes // row_bytes)
    # The manifest names the tokenizer relative to itself, so moving a whole build keeps it valid
    # and the same build in another folder gives the same bytes.
    path = tok.get("path")
    if path and output_dir is not None and "://" not in str(path):
        tok["path"] = os.path.relpath(path, os.path.abspath(output_dir))
    extra = {
        "tokenizer": {k: tok.get(k) for k in ("path", "sha256", "vocab_size", "bos_id", "eos_id")},
        "seed": seed,
        "row_layout": "tokens[:-1] are inputs, tokens[1:] targets; rows overlap by one token",
        **plan.to_manifest(),
    }
    if plan.warnings:
        extra["warnings"] = list(plan.warnings)
    # Absolute: workers may run elsewhere in the file tree than the driver.
    return MixJob(os.path.abspath(tokenized_dir), plan, seed, dtype, int(rows_per_shard), extra)


class ShardBuilder:
    """Computes the rows of any shard of a job (one per worker; streams are opened lazily)."""

    def __init__(self, job: MixJob) -> None:
        self.job = job
        self.schedule: Schedule = job.plan.schedule()
        self._streams: dict[int, SourceStream] = {}

    def stream(self, s: int) -> SourceStream:
        stream = self._streams.get(s)
        if stream is None:
            name = self.job.plan.sources[s].name
            source = TokenizedSource(self.job.tokenized_dir, name)
            if source.tokens != self.job.plan.sources[s].tokens_available:
                raise ShardError(
                    f"{self.job.tokenized_dir}/{name}: holds {source.tokens} tokens, the "
                    f"summary says {self.job.plan.sources[s].tokens_available}"
                )
            stream = self._streams[s] = SourceStream(
                source, self.job.seed, self.job.plan.context_length
            )
        return stream

    def rows(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, source index per row) for global rows [start, stop)."""
        length = self.job.plan.context_length
        sources = self.schedule.sources(start, stop)
        first = self.schedule.counts(start)
        out = np.empty((stop - start, length + 1), dtype=DTYPES[self.job.dtype])
        for s in range(len(self.job.plan.sources)):
            mask = sources == s
            n = int(mask.sum())
            if n:
                out[mask] = self.stream(s).rows(int(first[s]), n)
        return out, sources.astype(np.int32)

    def write_shard(self, index: int, directory: str | os.PathLike[str]) -> dict[str, Any]:
        start, stop = self.job.shard_range(index)
        rows, sources = self.rows(start, stop)
        names = [s.name for s in self.job.plan.sources]
        info = write_shard_file(
            Path(directory) / shard_name(index), rows, sources, names, self.job.dtype
        )
        info["index"] = index
        return info


def write_mix_shard(job: MixJob, index: int, directory: str | os.PathLike[str]) -> dict[str, Any]:
    return ShardBuilder(job).write_shard(index, directory)


def finish_mix(
    job: MixJob,
    infos: Sequence[dict[str, Any]],
    tmp_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
) -> dict[str, Any]:
    """Write the manifest (shards in index order) and move the directory into place."""
    infos = sorted(infos, key=lambda i: i["index"])
    if [i["index"] for i in infos] != list(range(job.n_shards)):
        raise ShardError(
            f"mix: expected shards 0..{job.n_shards - 1}, got {[i['index'] for i in infos]}"
        )
    shards = [{k: v for k, v in i.items() if k != "index"} for i in infos]
    names = [s.name for s in job.plan.sources]
    rows_by_source = {s.name: s.rows for s in job.plan.sources}
    manifest = build_manifest(
        job.plan.context_length, job.dtype, shards, names, rows_by_source, job.manifest_extra
    )
    if manifest["total_rows"] != job.plan.total_rows:
        raise ShardError(f"mix: wrote {manifest['total_rows']} rows, planned {job.plan.total_rows}")
    write_manifest(tmp_dir, manifest)
    out = Path(output_dir)
    tmp = Path(tmp_dir)
    if tmp.resolve() != out.resolve():
        if out.exists():
            if any(out.iterdir()) and not (out / MANIFEST_NAME).exists():
                raise ShardError(f"{out} exists and is not a shard directory; not replacing it")
            shutil.rmtree(out)
        os.replace(tmp, out)
    return manifest


def run_mix_local(job: MixJob, output_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """All shards in this process (what every worker does, in sequence)."""
    out = Path(output_dir)
    tmp = run_tmp_dir(out)
    builder = ShardBuilder(job)
    infos = [builder.write_shard(i, tmp) for i in range(job.n_shards)]
    return finish_mix(job, infos, tmp, out)
