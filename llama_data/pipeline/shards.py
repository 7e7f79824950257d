"""The token shard format the trainer reads: Arrow IPC files plus a self-describing manifest.

A shard directory holds `manifest.json` and `shard-00000.arrow`, `shard-00001.arrow`, ... Each
shard is an Arrow IPC *file* (not stream: the footer gives random access to record batches),
uncompressed, so that memory-mapping it gives every row as a numpy view without copying or
decoding. Each row is one training sample:

    tokens: fixed_size_list<uint16|uint32>[context_length + 1]   (inputs are [:-1], targets [1:])
    source: dictionary<int32, string>                             (the mixture source of the row)

The manifest records everything needed to trust and reproduce the shards: the format version,
the tokenizer (path, sha256, vocabulary size, BOS/EOS ids), context length, dtype, mixture weights,
per-source accounting and, per shard, its file name, row count, byte size and sha256. It holds no
timestamps or absolute paths, so the same inputs give a byte-identical directory.

The writer builds the directory under a temporary name and renames it into place on `close()`,
so a reader never sees a half-written set of shards.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from llama_data.pipeline.digest import file_sha256

FORMAT_NAME = "llama-data.token-shards"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
DEFAULT_TARGET_BYTES = 256 * 1024 * 1024
# Record batches inside a shard are capped so a writer never builds one enormous array; readers
# handle any number of batches per shard.
MAX_BATCH_BYTES = 64 * 1024 * 1024
DTYPES: dict[str, np.dtype] = {"uint16": np.dtype(np.uint16), "uint32": np.dtype(np.uint32)}
ARROW_DTYPES: dict[str, pa.DataType] = {"uint16": pa.uint16(), "uint32": pa.uint32()}

Verify = Literal["sha256", "size", "none"]


class ShardError(ValueError):
    """A shard directory that cannot be trusted: missing, truncated, altered or inconsistent."""


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.arrow"


def dtype_for_vocab(vocab_size: int) -> str:
    """The narrowest token dtype that holds every id (uint16 halves disk and memory traffic)."""
    if vocab_size <= 0:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    return "uint16" if vocab_size <= 1 << 16 else "uint32"


def shard_schema(context_length: int, dtype: str) -> pa.Schema:
    if dtype not in ARROW_DTYPES:
        raise ValueError(f"dtype must be one of {sorted(ARROW_DTYPES)}, got {dtype!r}")
    return pa.schema(
        [
            pa.field(
                "tokens",
                pa.list_(pa.field("item", ARROW_DTYPES[dtype], nullable=False), context_length + 1),
                nullable=False,
            ),
            pa.field("source", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        ]
    )


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def write_shard_file(
    path: str | os.PathLike[str],
    rows: np.ndarray,
    source_ids: np.ndarray,
    source_names: Sequence[str],
    dtype: str,
) -> dict[str, Any]:
    """Write one shard (rows: (n, context_length + 1)); return its manifest entry.

    The same rows always give the same bytes, which is what lets shards be written by any worker.
    """
    path = Path(path)
    rows = np.ascontiguousarray(rows, dtype=DTYPES[dtype])
    n, row_length = rows.shape
    schema = shard_schema(row_length - 1, dtype)
    rows_per_batch = max(1, MAX_BATCH_BYTES // (row_length * rows.itemsize))
    dictionary = pa.array(list(source_names), pa.string())
    ids = np.ascontiguousarray(source_ids, dtype=np.int32)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for start in range(0, n, rows_per_batch):
            stop = min(n, start + rows_per_batch)
            values = pa.array(rows[start:stop].reshape(-1), ARROW_DTYPES[dtype])
            tokens = pa.FixedSizeListArray.from_arrays(values, type=schema.field("tokens").type)
            source = pa.DictionaryArray.from_arrays(pa.array(ids[start:stop]), dictionary)
            writer.write_batch(pa.record_batch([tokens, source], schema=schema))
    return {
        "file": path.name,
        "rows": int(n),
        "bytes": path.stat().st_size,
        "sha256": file_sha256(path),
    }


def build_manifest(
    context_length: int,
    dtype: str,
    shards: Sequence[Mapping[str, Any]],
    source_names: Sequence[str],
    rows_by_source: Mapping[str, int],
    manifest_extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest dict; `manifest_extra["sources"]` entries are merged with per-source rows."""
    extra = dict(manifest_extra or {})
    extra_sources: Mapping[str, Mapping[str, Any]] = extra.pop("sources", {}) or {}
    names = list(source_names) + [s for s in extra_sources if s not in source_names]
    sources = {
        name: {**dict(extra_sources.get(name, {})), "rows": int(rows_by_source.get(name, 0))}
        for name in names
    }
    manifest: dict[str, Any] = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "context_length": int(context_length),
        "dtype": dtype,
    }
    manifest.update(extra)
    manifest["sources"] = sources
    manifest["shards"] = [dict(s) for s in shards]
    manifest["total_rows"] = sum(int(s["rows"]) for s in shards)
    # Training tokens: rows overlap by one token (inputs [:-1], targets [1:]), so a row trains on
    # context_length positions.
    manifest["total_tokens"] = manifest["total_rows"] * int(context_length)
    return manifest


def write_manifest(directory: str | os.PathLike[str], manifest: Mapping[str, Any]) -> None:
    path = Path(directory) / MANIFEST_NAME
    tmp = path.with_name(MANIFEST_NAME + ".tmp")
    tmp.write_text(_dumps(manifest), encoding="utf-8")
    os.replace(tmp, path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_tmp_dir(out: Path) -> Path:
    """A new temporary folder beside `out`, unique to this run (`<name>.tmp-<pid>-<random>`),
    to be renamed to `out` when the run is done. Leftovers of runs whose process is gone (and
    the unnamed `<name>.tmp` of older versions) are removed first; a live run's folder is left
    alone, so two runs on one output never delete each other's files."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for old in out.parent.glob(glob.escape(out.name) + ".tmp*"):
        m = re.fullmatch(r"\.tmp(?:-(\d+)-[0-9a-f]+)?", old.name[len(out.name) :])
        if m and (m.group(1) is None or not _pid_alive(int(m.group(1)))):
            shutil.rmtree(old, ignore_errors=True)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    return tmp


class ShardWriter:
    """Appends rows to fixed-size shards and writes the manifest last.

    Rows are buffered per shard (at most one shard in memory) so each shard's source dictionary is
    known before its first record batch is written. `sources` fixes the order of the manifest's
    source list (and so of `ShardDataset.source_index`); sources not named there are appended in
    order of first appearance.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        context_length: int,
        dtype: str = "uint16",
        rows_per_shard: int | None = None,
        target_bytes: int | None = None,
        sources: Sequence[str] = (),
    ) -> None:
        if context_length < 1:
            raise ValueError(f"context_length must be >= 1, got {context_length}")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        if rows_per_shard is not None and target_bytes is not None:
            raise ValueError("give rows_per_shard or target_bytes, not both")
        self.directory = Path(directory)
        self.context_length = int(context_length)
        self.row_length = self.context_length + 1
        self.dtype = dtype
        self._np_dtype = DTYPES[dtype]
        self._max_id = np.iinfo(self._np_dtype).max
        row_bytes = self.row_length * self._np_dtype.itemsize
        if rows_per_shard is None:
            rows_per_shard = max(1, (target_bytes or DEFAULT_TARGET_BYTES) // row_bytes)
        if rows_per_shard < 1:
            raise ValueError(f"rows_per_shard must be >= 1, got {rows_per_shard}")
        self.rows_per_shard = int(rows_per_shard)
        self._sources: list[str] = list(dict.fromkeys(sources))
        self._source_ids: dict[str, int] = {s: i for i, s in enumerate(self._sources)}
        self._rows_by_source: dict[str, int] = {s: 0 for s in self._sources}
        self._buffer = np.empty((0, self.row_length), dtype=self._np_dtype)
        self._buffer_sources = np.empty(0, dtype=np.int32)
        self._filled = 0
        self._shards: list[dict[str, Any]] = []
        self._closed = False
        self._tmp = run_tmp_dir(self.directory)

    @property
    def total_rows(self) -> int:
        return sum(s["rows"] for s in self._shards) + self._filled

    def add(self, tokens: np.ndarray, source: str) -> None:
        """Append one row of exactly context_length + 1 token ids."""
        self.add_many(np.asarray(tokens).reshape(1, -1), source)

    def add_many(self, rows: np.ndarray, source: str | np.ndarray) -> None:
        """Append a (n, context_length + 1) block of rows.

        `source` is one name for all rows, or per row an index into the `sources` the writer was
        made with.
        """
        if self._closed:
            raise RuntimeError("ShardWriter is closed")
        rows = np.asarray(rows)
        if rows.ndim != 2 or rows.shape[1] != self.row_length:
            raise ValueError(
                f"rows must have shape (n, {self.row_length}) (context_length + 1), "
                f"got {rows.shape}"
            )
        if rows.shape[0] == 0:
            return
        if not np.issubdtype(rows.dtype, np.integer):
            raise ValueError(f"token ids must be integers, got {rows.dtype}")
        if rows.dtype != self._np_dtype and (rows.min() < 0 or rows.max() > self._max_id):
            raise ValueError(f"token ids out of range for {self.dtype}")
        if isinstance(source, str):
            sid: int | np.ndarray = self._source_id(source)
            self._rows_by_source[source] += rows.shape[0]
        else:
            sid = np.asarray(source, dtype=np.int32).reshape(-1)
            if sid.shape[0] != rows.shape[0]:
                raise ValueError("one source index per row is needed")
            if sid.size and (sid.min() < 0 or sid.max() >= len(self._sources)):
                raise ValueError("source index outside the writer's sources")
            for i, c in enumerate(np.bincount(sid, minlength=len(self._sources))):
                self._rows_by_source[self._sources[i]] += int(c)
        start = 0
        while start < rows.shape[0]:
            take = min(rows.shape[0] - start, self.rows_per_shard - self._filled)
            self._reserve(self._filled + take)
            self._buffer[self._filled : self._filled + take] = rows[start : start + take]
            self._buffer_sources[self._filled : self._filled + take] = (
                sid if isinstance(sid, int) else sid[start : start + take]
            )
            self._filled += take
            start += take
            if self._filled == self.rows_per_shard:
                self._flush()

    def _source_id(self, source: str) -> int:
        sid = self._source_ids.get(source)
        if sid is None:
            sid = self._source_ids[source] = len(self._sources)
            self._sources.append(source)
            self._rows_by_source[source] = 0
        return sid

    def _reserve(self, rows: int) -> None:
        if rows <= self._buffer.shape[0]:
            return
        size = min(self.rows_per_shard, max(rows, 2 * self._buffer.shape[0], 64))
        buffer = np.empty((size, self.row_length), dtype=self._np_dtype)
        buffer[: self._filled] = self._buffer[: self._filled]
        sources = np.empty(size, dtype=np.int32)
        sources[: self._filled] = self._buffer_sources[: self._filled]
        self._buffer, self._buffer_sources = buffer, sources

    def _flush(self) -> None:
        if self._filled == 0:
            return
        name = shard_name(len(self._shards))
        self._shards.append(
            write_shard_file(
                self._tmp / name,
                self._buffer[: self._filled],
                self._buffer_sources[: self._filled],
                self._sources,
                self.dtype,
            )
        )
        self._filled = 0

    def close(self, manifest_extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Write the last shard and the manifest, move the directory into place, return the manifest.

        `manifest_extra` adds keys (tokenizer, weights, renormalized, ...); its `sources` mapping
        is merged into the per-source entries the writer keeps (each gets its `rows`).
        """
        if self._closed:
            raise RuntimeError("ShardWriter is already closed")
        self._flush()
        self._closed = True
        manifest = build_manifest(
            self.context_length,
            self.dtype,
            self._shards,
            self._sources,
            self._rows_by_source,
            manifest_extra,
        )
        write_manifest(self._tmp, manifest)
        if self.directory.exists():
            leftovers = [p.name for p in self.directory.iterdir()]
            if leftovers and MANIFEST_NAME not in leftovers:
                raise ShardError(
                    f"{self.directory} exists and is not a shard directory; not replacing it"
                )
            shutil.rmtree(self.directory)
        os.replace(self._tmp, self.directory)
        return manifest

    def abort(self) -> None:
        """Drop everything written so far (the final directory is left untouched)."""
        self._closed = True
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None and not self._closed:
            self.abort()


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        raise ShardError(f"{directory}: no {MANIFEST_NAME} (not a finished shard directory)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ShardError(f"{path}: unreadable manifest: {exc}") from exc
    if manifest.get("format") != FORMAT_NAME:
        raise ShardError(f"{path}: format is {manifest.get('format')!r}, expected {FORMAT_NAME!r}")
    if manifest.get("version") != FORMAT_VERSION:
        raise ShardError(
            f"{path}: format version {manifest.get('version')!r}, this reader knows "
            f"{FORMAT_VERSION}"
        )
    for key in ("context_length", "dtype", "shards", "total_rows", "sources"):
        if key not in manifest:
            raise ShardError(f"{path}: manifest lacks {key!r}")
    if manifest["dtype"] not in DTYPES:
        raise ShardError(f"{path}: unknown dtype {manifest['dtype']!r}")
    rows = sum(int(s["rows"]) for s in manifest["shards"])
    if rows != manifest["total_rows"]:
        raise ShardError(
            f"{path}: shards hold {rows} rows but total_rows says {manifest['total_rows']}"
        )
    return manifest


class _Shard:
    """One memory-mapped shard: per record batch a 2-D token view and the source index view."""

    __slots__ = ("batch_starts", "tokens", "sources", "lut", "mmap")

    def __init__(self, path: Path, manifest: Mapping[str, Any], names: Sequence[str]) -> None:
        context_length = int(manifest["context_length"])
        dtype = manifest["dtype"]
        expected = shard_schema(context_length, dtype)
        try:
            self.mmap = pa.memory_map(str(path), "r")
            reader = pa.ipc.open_file(self.mmap)
        except FileNotFoundError as exc:
            raise ShardError(f"{path}: shard file is missing") from exc
        except (pa.ArrowInvalid, OSError) as exc:
            raise ShardError(f"{path}: truncated or corrupt Arrow IPC file ({exc})") from exc
        if not reader.schema.remove_metadata().equals(expected):
            raise ShardError(
                f"{path}: schema {reader.schema} does not match the manifest "
                f"(context_length={context_length}, dtype={dtype})"
            )
        self.tokens: list[np.ndarray] = []
        self.sources: list[np.ndarray] = []
        starts = [0]
        dictionary: list[str] | None = None
        try:
            for b in range(reader.num_record_batches):
                batch = reader.get_batch(b)
                tokens_col = batch.column(0)
                source_col = batch.column(1)
                if tokens_col.null_count or source_col.null_count:
                    raise ShardError(f"{path}: null rows in batch {b}")
                values = tokens_col.values
                flat = np.frombuffer(values.buffers()[1], dtype=DTYPES[dtype])
                # `.values` ignores the list array's own offset: add both.
                start = values.offset + tokens_col.offset * (context_length + 1)
                n = len(tokens_col)
                view = flat[start : start + n * (context_length + 1)].reshape(n, context_length + 1)
                self.tokens.append(view)
                indices = source_col.indices
                self.sources.append(
                    np.frombuffer(indices.buffers()[1], dtype=np.int32)[
                        indices.offset : indices.offset + n
                    ]
                )
                batch_dict = source_col.dictionary.to_pylist()
                if dictionary is None:
                    dictionary = batch_dict
                elif batch_dict != dictionary:
                    raise ShardError(f"{path}: record batches disagree on the source dictionary")
                starts.append(starts[-1] + n)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ShardError(f"{path}: truncated or corrupt Arrow IPC file ({exc})") from exc
        self.batch_starts = np.asarray(starts, dtype=np.int64)
        index = {name: i for i, name in enumerate(names)}
        unknown = [s for s in dictionary or [] if s not in index]
        if unknown:
            raise ShardError(f"{path}: sources {unknown} are not in the manifest")
        self.lut = np.asarray([index[s] for s in dictionary or []], dtype=np.int32)

    @property
    def rows(self) -> int:
        return int(self.batch_starts[-1])

    def locate(self, row: int) -> tuple[int, int]:
        if len(self.tokens) == 1:
            return 0, row
        b = int(np.searchsorted(self.batch_starts, row, side="right")) - 1
        return b, row - int(self.batch_starts[b])


class ShardDataset:
    """Random access to the rows of a shard directory, zero-copy over memory-mapped files.

    `verify` decides how much is checked when opening: "sha256" hashes every file against the
    manifest (reads everything once), "size" compares byte sizes (catches truncation cheaply),
    "none" trusts the files. Schema, row counts and the manifest's own consistency are always
    checked. The dataset pickles without its memory maps (they are reopened lazily), so it can be
    handed to DataLoader worker processes.
    """

    def __init__(self, directory: str | os.PathLike[str], verify: Verify = "size") -> None:
        if verify not in ("sha256", "size", "none"):
            raise ValueError(f"verify must be 'sha256', 'size' or 'none', got {verify!r}")
        self.directory = Path(directory)
        self.verify = verify
        self.manifest = read_manifest(self.directory)
        self.context_length = int(self.manifest["context_length"])
        self.dtype = np.dtype(DTYPES[self.manifest["dtype"]])
        self.sources: list[str] = list(self.manifest["sources"])
        tok = self.manifest.get("tokenizer") or {}
        self.vocab_size: int | None = tok.get("vocab_size")
        self.bos_id: int | None = tok.get("bos_id")
        self.eos_id: int | None = tok.get("eos_id")
        self._files = [self.directory / s["file"] for s in self.manifest["shards"]]
        rows = [int(s["rows"]) for s in self.manifest["shards"]]
        self._starts = np.concatenate([[0], np.cumsum(rows, dtype=np.int64)])
        self._uniform = len(rows) > 0 and all(r == rows[0] for r in rows[:-1])
        self._rows_per_shard = rows[0] if rows else 0
        self._shards: list[_Shard | None] = [None] * len(rows)
        self._verify_files()
        for i in range(len(self._shards)):
            self._open(i)

    def _verify_files(self) -> None:
        for info, path in zip(self.manifest["shards"], self._files, strict=True):
            if not path.is_file():
                raise ShardError(f"{path}: shard file listed in the manifest is missing")
            if self.verify in ("size", "sha256") and "bytes" in info:
                size = path.stat().st_size
                if size != info["bytes"]:
                    kind = "truncated" if size < info["bytes"] else "longer than recorded"
                    raise ShardError(
                        f"{path}: {kind}: {size} bytes, the manifest says {info['bytes']}"
                    )
            if self.verify == "sha256":
                digest = file_sha256(path)
                if digest != info["sha256"]:
                    raise ShardError(
                        f"{path}: sha256 {digest} does not match the manifest's {info['sha256']}"
                    )

    def _open(self, i: int) -> _Shard:
        shard = self._shards[i]
        if shard is None:
            shard = _Shard(self._files[i], self.manifest, self.sources)
            expected = int(self.manifest["shards"][i]["rows"])
            if shard.rows != expected:
                raise ShardError(
                    f"{self._files[i]}: holds {shard.rows} rows, the manifest says {expected}"
                )
            self._shards[i] = shard
        return shard

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _locate(self, i: int) -> tuple[_Shard, int, int]:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"row {i} out of range for {n} rows")
        if self._uniform:
            s = min(i // self._rows_per_shard, len(self._shards) - 1)
        else:
            s = int(np.searchsorted(self._starts, i, side="right")) - 1
        shard = self._shards[s] or self._open(s)
        b, j = shard.locate(i - int(self._starts[s]))
        return shard, b, j

    def tokens(self, i: int) -> np.ndarray:
        """Row i as a read-only view into the mapped file, shape (context_length + 1,)."""
        shard, b, j = self._locate(i)
        return shard.tokens[b][j]

    def source_index(self, i: int) -> int:
        """Index of row i's source in `self.sources`."""
        shard, b, j = self._locate(i)
        return int(shard.lut[shard.sources[b][j]])

    def source(self, i: int) -> str:
        return self.sources[self.source_index(i)]

    def __getitem__(self, i: int) -> np.ndarray:
        return self.tokens(i)

    def take(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Gather rows into one new (n, context_length + 1) array (a batch; this copies)."""
        out = np.empty((len(indices), self.context_length + 1), dtype=self.dtype)
        for k, i in enumerate(indices):
            out[k] = self.tokens(int(i))
        return out

    def iter_rows(self, start: int = 0, step: int = 1) -> Iterator[np.ndarray]:
        """Rows start, start + step, ... as views; resuming a run is starting at its next row."""
        if step < 1:
            raise ValueError(f"step must be >= 1, got {step}")
        n = len(self)
        if start < 0:
            start += n
        i = start
        while i < n:
            shard, b, j = self._locate(i)
            view = shard.tokens[b]
            # Walk one record batch by plain indexing: one lookup per batch, not per row.
            count = min((view.shape[0] - j + step - 1) // step, (n - i + step - 1) // step)
            for k in range(j, j + count * step, step):
                yield view[k]
            i += count * step

    def source_counts(self) -> dict[str, int]:
        """Rows per source, counted from the files themselves (for audits and tests)."""
        counts = np.zeros(len(self.sources), dtype=np.int64)
        for s in range(len(self._shards)):
            shard = self._open(s)
            for src in shard.sources:
                counts += np.bincount(shard.lut[src], minlength=len(self.sources))
        return {name: int(c) for name, c in zip(self.sources, counts, strict=True)}

    def close(self) -> None:
        """Drop the memory maps (views handed out before stay valid until garbage-collected)."""
        self._shards = [None] * len(self._shards)

    def __enter__(self) -> ShardDataset:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"ShardDataset({str(self.directory)!r}, rows={len(self)}, "
            f"context_length={self.context_length}, dtype={self.dtype.name}, "
            f"sources={self.sources})"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_shards"] = [None] * len(self._shards)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
