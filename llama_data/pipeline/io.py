"""Engine-free file access: readers turn a byte stream into Documents or DeadLetters.

Readers never open paths themselves: the engine hands them an `open_raw(path)` that returns a
binary stream (Beam's FileSystems for gs://, s3://, http(s)://; plain `open` locally), and the
reader decompresses by extension. A reader may split a file into byte ranges (`splits`) so that a
large file is read by several workers (multistream bz2, per-record gzip).
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import posixpath
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from llama_data.pipeline.document import DeadLetter, Document
from llama_data.pipeline.schema import row_to_document

OpenRaw = Callable[[str], BinaryIO]
ReadResult = Iterator[Document | DeadLetter]


def stream_failure(path: str, offset: int, exc: BaseException, after: str = "") -> DeadLetter:
    """The dead letter of a file that failed while being read: `unreadable_file` when nothing
    was read yet, `corrupt_stream` after `offset` records (`after` says what was read)."""
    return DeadLetter(
        file=path,
        offset=offset,
        error=f"{type(exc).__name__}: {exc}" + (f" (after {after})" if after else ""),
        reason="unreadable_file" if offset == 0 else "corrupt_stream",
    )


# A JSON `\uD800`-`\uDFFF` escape: only a line holding one can decode to a lone surrogate,
# which no UTF-8 writer (Parquet, JSON lines) accepts.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def replace_surrogates(value: Any) -> tuple[Any, int]:
    """`value` (a JSON value) with every lone UTF-16 surrogate in its strings and keys replaced
    by U+FFFD, and how many were replaced."""
    if isinstance(value, str):
        return _SURROGATE.subn("\ufffd", value)
    if isinstance(value, list):
        n = 0
        out = []
        for v in value:
            v, k = replace_surrogates(v)
            out.append(v)
            n += k
        return out, n
    if isinstance(value, dict):
        n = 0
        obj = {}
        for key, v in value.items():
            key, k1 = replace_surrogates(key)
            v, k2 = replace_surrogates(v)
            obj[key] = v
            n += k1 + k2
        return obj, n
    return value, 0


def loads_json_line(line: bytes) -> tuple[Any, int]:
    """One JSON line, its lone surrogates (legal JSON, common in scraped text) replaced by
    U+FFFD: (value, surrogates replaced). Raises what `json.loads` raises."""
    obj = json.loads(line)
    if b"\\u" in line and _SURROGATE_ESCAPE.search(line):
        return replace_surrogates(obj)
    return obj, 0


class DecompressionLimit(ValueError):
    """Untrusted compressed bytes inflated past their budget (a decompression bomb)."""


def limit_letter(path: str, offset: int, exc: DecompressionLimit, after: str) -> DeadLetter:
    """The dead letter of a file cut at its inflation budget; `after` says what was read."""
    return DeadLetter(
        file=path,
        offset=offset,
        reason="decompression_limit",
        error=f"{exc} (after {after}; the rest of the file is not read)",
    )


def inflate_bounded(data: bytes, wbits: int, limit: int, chunk: int = 1 << 16) -> bytes:
    """`data` inflated by zlib (`wbits` as for `zlib.decompressobj`), streamed `chunk` bytes at a
    time: raises `DecompressionLimit` as soon as the output passes `limit` bytes (memory stays
    within about `limit + chunk`), `zlib.error` for a corrupt or truncated stream."""
    d = zlib.decompressobj(wbits)
    out = bytearray()
    pending = data
    while not d.eof:
        piece = d.decompress(pending, chunk)
        out += piece
        if len(out) > limit:
            raise DecompressionLimit(f"inflates to more than {limit} bytes")
        pending = d.unconsumed_tail
        if not pending and not piece:
            raise zlib.error("incomplete or truncated stream")
    return bytes(out)


def local_open(path: str) -> BinaryIO:
    return open(path, "rb")  # noqa: SIM115 - the caller closes it


@dataclass(frozen=True)
class FileSplit:
    """A byte range of one file; `end=None` means to the end."""

    path: str
    start: int = 0
    end: int | None = None


def compression_of(path: str) -> str | None:
    name = path.lower()
    for ext, kind in ((".gz", "gzip"), (".bz2", "bz2"), (".zst", "zstd"), (".xz", "xz")):
        if name.endswith(ext):
            return kind
    return None


def open_decompressed(raw: BinaryIO, path: str) -> BinaryIO:
    """Wrap `raw` in the decompressor its extension names (multi-member gzip/bz2/zstd allowed)."""
    kind = compression_of(path)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if kind == "bz2":
        return bz2.BZ2File(raw, "rb")  # type: ignore[return-value]
    if kind == "xz":
        return lzma.LZMAFile(raw, "rb")  # type: ignore[return-value]
    if kind == "zstd":
        return io.BufferedReader(ZstdFrames(raw))  # type: ignore[return-value]
    return raw


# A JSON line longer than this (a 50 MB line, a decompression bomb with no newline) is skipped
# as it streams by, never held: a `line_too_long` dead letter with its size.
MAX_LINE_BYTES = 64 << 20


# A compressed file that inflates past this ratio, once past the floor, is a bomb: reading it
# stops there with a `decompression_limit` dead letter (text compresses ~3-20:1, never 1000:1).
MAX_INFLATION = 1000
INFLATION_FLOOR = 1 << 30


class InflationBudget:
    """The raw (compressed) stream of a file, counting what is read from it; `add(n)` counts
    decompressed bytes and raises `DecompressionLimit` past the budget."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.consumed = 0
        self.produced = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.consumed += len(data)
        return data

    def add(self, n: int) -> None:
        self.produced += n
        if self.produced > INFLATION_FLOOR and self.produced > MAX_INFLATION * self.consumed:
            raise DecompressionLimit(
                f"{self.consumed} compressed bytes inflated to more than {self.produced} "
                f"(over {MAX_INFLATION}:1 past {INFLATION_FLOOR} bytes)"
            )


def _no_budget(n: int) -> None:
    return None


def bounded_lines(
    stream: BinaryIO, limit: int, budget: Callable[[int], None] = _no_budget
) -> Iterator[bytes | int]:
    """Lines of `stream`; a line over `limit` bytes is read through in pieces and yielded as
    its length (an int) instead. `budget(n)` is told of every n bytes read."""
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        budget(len(line))
        if len(line) <= limit or line.endswith(b"\n"):
            yield line
            continue
        size = len(line)
        while not line.endswith(b"\n"):
            line = stream.readline(1 << 20)
            if not line:
                break
            budget(len(line))
            size += len(line)
        yield size


def gzip_member_lines(
    raw: BinaryIO, limit: int = MAX_LINE_BYTES, budget: Callable[[int], None] = _no_budget
) -> Iterator[bytes | Exception | int]:
    """Lines of a (multi-member) gzip stream that survives a bad member: the error of each bad
    member is yielded in its place (the line in progress is dropped) and reading resumes at the
    next gzip member, as the WARC reader does. A line over `limit` bytes is yielded as its
    length (an int), never held."""
    from llama_data.pipeline.warc import CorruptMember, GzipMembers

    members = GzipMembers(raw)
    pending = bytearray()
    skipped = 0  # > 0: inside an overlong line, this many bytes of it dropped so far
    while True:
        try:
            chunk = members.read_chunk()
        except CorruptMember as exc:
            pending.clear()
            skipped = 0
            yield exc
            continue
        if not chunk:
            if skipped:
                yield skipped + len(pending)
            elif pending:
                yield bytes(pending)
            return
        budget(len(chunk))
        pending += chunk
        start = 0
        while (i := pending.find(b"\n", start)) >= 0:
            if skipped or i + 1 - start > limit:
                yield skipped + i + 1 - start
                skipped = 0
            else:
                yield bytes(pending[start : i + 1])
            start = i + 1
        del pending[:start]
        if len(pending) > limit or (skipped and pending):
            skipped += len(pending)
            pending.clear()


class ZstdFrames(io.RawIOBase):
    """Concatenated zstd frames, decompressed a small input chunk at a time. Input that ends
    inside a frame raises `zstandard.ZstdError`: zstandard's stream reader ends quietly when a
    file is cut at a block boundary, and the file's tail would be lost with no dead letter."""

    IN_CHUNK = 1 << 8  # bounds one step's output too: 8 MiB at most (128 KiB blocks of 4 bytes)

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._dctx = zstandard.ZstdDecompressor()
        self._d: zstandard.ZstdDecompressionObj | None = None
        self._in = b""  # input after the end of the last frame, not yet decompressed
        self._out = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        while not self._out:
            data = self._in or self._raw.read(self.IN_CHUNK)
            self._in = b""
            if not data:
                if self._d is not None:
                    raise zstandard.ZstdError("input ends inside a zstd frame (file cut short)")
                return 0
            if self._d is None:
                self._d = self._dctx.decompressobj()
            self._out = memoryview(self._d.decompress(data))
            if self._d.eof:
                self._in, self._d = self._d.unused_data, None
        n = min(len(b), len(self._out))
        b[:n] = self._out[:n]
        self._out = self._out[n:]
        return n


def base_name(path: str) -> str:
    return posixpath.basename(path.rstrip("/"))


class Reader:
    """Base of all readers. `source` names the mixture source the documents belong to."""

    name: str = "reader"

    def __init__(self, source: str = "documents") -> None:
        self.source = source

    def bind_counters(self, count: Callable[[str, int], None] | None) -> None:
        """Where `count(key, n)` goes (the engine binds its counters on each worker)."""
        self._counter = count

    def count(self, key: str, n: int = 1) -> None:
        """Count a repair the reader made (`read.<what>`): shown in the stage's stats.json."""
        counter = getattr(self, "_counter", None)
        if counter is not None and n:
            counter(key, n)

    def splits(self, path: str, size: int, open_raw: OpenRaw) -> list[FileSplit]:
        return [FileSplit(path)]

    def may_split(self, path: str) -> bool:
        """Whether `splits` may cut this file into byte ranges (judged by its name alone, in the
        driver): a large file that cannot be split is read by one worker, so the engine spreads
        its documents before the work on them."""
        return False

    def read(self, split: FileSplit, open_raw: OpenRaw) -> ReadResult:
        raise NotImplementedError

    def read_path(self, path: str, open_raw: OpenRaw = local_open) -> ReadResult:
        """Read a whole file (all of its splits) in this process: for tests and small inputs."""
        import os

        size = os.path.getsize(path) if open_raw is local_open and os.path.exists(path) else 0
        for split in self.splits(path, size, open_raw):
            yield from self.read(split, open_raw)


class JsonLinesReader(Reader):
    """One JSON record a line, through any decompressor; subclasses turn a line into a record.

    A corrupt compressed stream ends the file with one dead letter that says after which line,
    keeping every record before it.
    """

    name = "json-lines"

    def file_stem(self, path: str) -> str:
        """The file name used in line-based ids (`<stem>:<line>`)."""
        return base_name(path)

    def read(self, split: FileSplit, open_raw: OpenRaw) -> ReadResult:
        path = split.path
        fname = self.file_stem(path)
        lineno = 0
        try:
            with open_raw(path) as raw:
                counted = InflationBudget(raw)
                budget = counted.add if compression_of(path) else _no_budget
                if compression_of(path) == "gzip":
                    lines: Iterator[bytes | Exception | int] = gzip_member_lines(
                        counted,  # type: ignore[arg-type]
                        MAX_LINE_BYTES,
                        budget,
                    )
                else:
                    lines = bounded_lines(
                        open_decompressed(counted, path) if compression_of(path) else raw,  # type: ignore[arg-type]
                        MAX_LINE_BYTES,
                        budget,
                    )
                for line in lines:
                    if isinstance(line, Exception):  # a bad gzip member; read on after it
                        skipped = getattr(line, "skipped", None)
                        yield DeadLetter(
                            file=path,
                            offset=lineno,
                            reason="corrupt_stream",
                            error=f"{line} (after line {lineno}; the line in progress and the "
                            "rest of the member are lost, reading resumed at the next member"
                            + (f", {skipped} compressed bytes on)" if skipped else ")"),
                            bytes_skipped=skipped,
                        )
                        continue
                    lineno += 1
                    if isinstance(line, int):  # a line over the bound, skipped unread
                        yield DeadLetter(
                            file=path,
                            offset=lineno,
                            reason="line_too_long",
                            error=f"a line of {line} bytes exceeds {MAX_LINE_BYTES}: skipped",
                            bytes_skipped=line,
                        )
                    elif line.strip():
                        yield self._parse(line, path, fname, lineno)
        except DecompressionLimit as exc:
            yield limit_letter(path, lineno, exc, f"line {lineno}")
        except (
            OSError,
            EOFError,
            zlib.error,
            zstandard.ZstdError,
            lzma.LZMAError,
            ValueError,
        ) as exc:
            yield stream_failure(path, lineno, exc, f"line {lineno}")

    def _parse(self, line: bytes, path: str, fname: str, lineno: int) -> Document | DeadLetter:
        raise NotImplementedError


class JsonlDocumentReader(JsonLinesReader):
    """JSON lines of documents (`.jsonl`, `.jsonl.gz`, `.jsonl.zst`, ...), as users bring them.

    `text` is required. `id` defaults to `<file name>:<line number>` (stable, from the input);
    `source` to the reader's source; keys other than id/source/text/meta go into meta.
    """

    name = "jsonl"

    def _parse(self, line: bytes, path: str, fname: str, lineno: int) -> Document | DeadLetter:
        def dead(reason: str, error: str, record_id: str | None = None) -> DeadLetter:
            return DeadLetter(
                file=path, offset=lineno, reason=reason, error=error, record_id=record_id
            )

        try:
            obj, repaired = loads_json_line(line)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            return dead("bad_json", f"{type(exc).__name__}: {exc}")
        self.count("read.surrogates_replaced", repaired)
        if not isinstance(obj, dict):
            return dead("bad_json", f"expected a JSON object, got {type(obj).__name__}")
        doc_id = obj.pop("id", None)
        doc_id = f"{fname}:{lineno}" if doc_id in (None, "") else str(doc_id)
        text = obj.pop("text", None)
        if not isinstance(text, str):
            what = "missing" if text is None else f"not a string ({type(text).__name__})"
            return dead("missing_text", f"'text' is {what}", doc_id)
        source = obj.pop("source", None) or self.source
        meta = obj.pop("meta", None) or {}
        if not isinstance(meta, dict):
            meta = {"meta": meta}
        meta.update(obj)
        return Document(id=doc_id, source=str(source), text=text, meta=meta)


class ParquetDocumentReader(Reader):
    """Parquet files of documents: our own stage outputs, or a user's with id/text columns."""

    name = "parquet"

    def read(self, split: FileSplit, open_raw: OpenRaw) -> ReadResult:
        path = split.path
        fname = base_name(path)
        row_no = 0
        try:
            with open_raw(path) as raw:
                pf = pq.ParquetFile(raw)
                if "text" not in pf.schema_arrow.names:
                    yield DeadLetter(file=path, reason="missing_text", error="no 'text' column")
                    return
                for batch in pf.iter_batches(batch_size=1024):
                    for row in batch.to_pylist():
                        row_no += 1
                        if not isinstance(row.get("text"), str):
                            yield DeadLetter(
                                file=path,
                                offset=row_no,
                                reason="missing_text",
                                error="'text' is null",
                                record_id=None if row.get("id") is None else str(row["id"]),
                            )
                            continue
                        if row.get("id") in (None, ""):
                            row["id"] = f"{fname}:{row_no}"
                        if row.get("source") in (None, ""):
                            row["source"] = self.source
                        try:
                            yield row_to_document(row)
                        except (ValueError, TypeError, RecursionError) as exc:
                            yield DeadLetter(
                                file=path,
                                offset=row_no,
                                reason="bad_meta",
                                error=f"'meta' is not a JSON object: {type(exc).__name__}: {exc}",
                                record_id=str(row["id"]),
                            )
        except (OSError, pa.ArrowException, ValueError) as exc:
            yield stream_failure(path, row_no, exc)


def document_reader_for(path: str, source: str = "documents") -> Reader:
    """The document reader for a path by extension (Parquet, else JSON lines)."""
    if path.lower().endswith(".parquet"):
        return ParquetDocumentReader(source)
    return JsonlDocumentReader(source)


class DocumentReader(Reader):
    """Parquet or JSON lines, chosen per file: what every `--input` of documents accepts."""

    name = "documents"

    def read(self, split: FileSplit, open_raw: OpenRaw) -> ReadResult:
        yield from document_reader_for(split.path, self.source).read(split, open_raw)
