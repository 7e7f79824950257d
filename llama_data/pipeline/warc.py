"""Tolerant WET and WARC readers: Common Crawl files -> Documents, bad records -> dead letters.

Common Crawl ships `.warc.wet.gz` / `.warc.gz` files as one gzip member per record, so a damaged
member costs one record, not the rest of the file. warcio stops at the first surprise (it rejects
cc_net's own sample, which has `\\n` line ends), so this module parses records itself:

* `GzipMembers` decompresses member by member; a truncated or corrupt member raises
  `CorruptMember` and decompression resumes at the next gzip magic after the bad member's start.
* `_RecordParser` reads `WARC/1.x` records by their Content-Length and then checks that the next
  record (or EOF) really follows. When it does not (a wrong Content-Length, a broken header, junk
  between records) the record becomes a dead letter and parsing resumes at the next `WARC/` line.
* Payloads above `max_record_bytes` (a 50 MB single line, say) are skipped in chunks, never held
  in memory, and reported as `record_too_large`.

Document ids are `<file name>:<byte offset of the record in the decompressed stream>`: stable
across reruns and unique even where a file repeats a WARC-Record-ID (cc_net's sample does).
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from llama_data.pipeline.document import DeadLetter, Document
from llama_data.pipeline.io import (
    DecompressionLimit,
    FileSplit,
    OpenRaw,
    Reader,
    ReadResult,
    base_name,
    compression_of,
    inflate_bounded,
)

SOURCE = "commoncrawl"
GZIP_MAGIC = b"\x1f\x8b\x08"
CHUNK = 1 << 16
MAX_HEADER_LINE = 1 << 14
MAX_HEADER_LINES = 512
DEFAULT_MAX_RECORD_BYTES = 16 << 20
_VERSION_RE = re.compile(rb"WARC/1\.\d\r?\n")
_BOUNDARY_RE = re.compile(rb"\r?\n\r?\n(WARC/1\.\d\r?\n)")


class CorruptMember(Exception):
    """A gzip member that could not be decompressed; `offset` is its start in the raw file."""

    def __init__(self, offset: int, message: str, out_start: int = 0, resumed: int = 0) -> None:
        super().__init__(message)
        self.offset = offset
        self.out_start = out_start  # decompressed offset where the bad member's output began
        self.resumed = max(resumed, offset)  # raw offset of the next member (or the end)

    @property
    def skipped(self) -> int:
        """Compressed bytes skipped from the bad member's start to the next member."""
        return self.resumed - self.offset


class GzipMembers:
    """Decompressed chunks of a multi-member gzip stream that survive a bad member.

    The compressed bytes of the current member are kept so that, after an error, the search for
    the next member starts right after the bad member's header (not where zlib gave up, which may
    be inside the next member).
    """

    def __init__(self, raw: BinaryIO, max_keep: int = 64 << 20) -> None:
        self._raw = raw
        self._max_keep = max_keep
        self._buf = b""  # compressed bytes not yet given to the decompressor
        self._buf_offset = 0  # raw-file offset of _buf[0]
        self._member: bytearray | None = None  # compressed bytes of the current member so far
        self._member_offset = 0
        self._d: zlib._Decompress | None = None
        self._raw_eof = False
        self._out = 0  # decompressed bytes delivered so far
        self._member_out = 0  # decompressed offset where the current member began

    def _fill(self) -> bool:
        if self._raw_eof:
            return False
        data = self._raw.read(CHUNK)
        if not data:
            self._raw_eof = True
            return False
        self._buf += data
        return True

    def _resync(self, start: int) -> None:
        """Drop state and continue at the first gzip magic at or after raw offset `start`."""
        pending = bytes(self._member or b"") + self._buf
        base = self._member_offset if self._member is not None else self._buf_offset
        skip = max(0, start - base)
        pending = pending[skip:]
        base += skip
        self._d, self._member = None, None
        while True:
            i = pending.find(GZIP_MAGIC)
            if i >= 0:
                self._buf, self._buf_offset = pending[i:], base + i
                return
            keep = pending[-2:]
            base += len(pending) - len(keep)
            pending = keep
            data = b"" if self._raw_eof else self._raw.read(CHUNK)
            if not data:
                self._raw_eof = True
                self._buf, self._buf_offset = b"", base + len(pending)
                return
            pending += data

    def read_chunk(self) -> bytes:
        """Next decompressed bytes; b"" at the end. Raises `CorruptMember` once per bad member."""
        while True:
            if not self._buf and not self._fill():
                if self._d is not None:
                    offset = self._member_offset
                    # zlib may have swallowed the next members as if they were this one's data
                    self._resync(offset + 1)
                    raise CorruptMember(
                        offset,
                        "truncated gzip member (unexpected end of file)",
                        self._member_out,
                        self._buf_offset,
                    )
                return b""
            if self._d is None:
                if len(self._buf) < 3 and self._fill():
                    continue
                if not self._buf.startswith(GZIP_MAGIC):
                    offset = self._buf_offset
                    self._resync(offset + 1)
                    raise CorruptMember(
                        offset,
                        "bytes between gzip members are not a gzip header",
                        self._out,
                        self._buf_offset,
                    )
                self._d = zlib.decompressobj(wbits=31)
                self._member = bytearray()
                self._member_offset = self._buf_offset
                self._member_out = self._out
            data = self._buf
            try:
                out = self._d.decompress(data, CHUNK * 4)
            except zlib.error as exc:
                offset = self._member_offset
                self._resync(offset + 1)
                raise CorruptMember(
                    offset, f"corrupt gzip member: {exc}", self._member_out, self._buf_offset
                ) from None
            rest = self._d.unused_data if self._d.eof else self._d.unconsumed_tail
            used = len(data) - len(rest)
            if self._member is not None:
                if len(self._member) + used <= self._max_keep:
                    self._member += data[:used]
                else:  # a huge member: give up the ability to rewind into it
                    self._member_offset = self._buf_offset + used
                    self._member = bytearray()
            self._buf, self._buf_offset = rest, self._buf_offset + used
            if self._d.eof:
                self._d, self._member = None, None
            if out:
                self._out += len(out)
                return out


class _Stream:
    """A small buffered byte stream with readline/read/peek/unread over a chunk source."""

    def __init__(self, chunks: Callable[[], bytes]) -> None:
        self._chunks = chunks
        self._buf = bytearray()
        self._eof = False
        self.offset = 0  # decompressed offset of the next byte returned
        self.error: CorruptMember | None = None

    def _more(self) -> bool:
        if self._eof or self.error is not None:
            return False
        try:
            data = self._chunks()
        except CorruptMember as exc:  # looks like EOF until the parser has reported it
            self.error = exc
            return False
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def resume(self) -> None:
        """After a corrupt member was reported: drop what is left of it and read on."""
        self.offset += len(self._buf)
        self._buf.clear()
        self.error = None

    def readline(self, limit: int) -> bytes:
        """Up to and including the next b"\\n", or `limit` bytes, or what is left."""
        start = 0
        while True:
            i = self._buf.find(b"\n", start)
            if i >= 0 and i < limit:
                return self._take(i + 1)
            if len(self._buf) >= limit:
                return self._take(limit)
            start = len(self._buf)
            if not self._more():
                return self._take(len(self._buf))

    def read(self, n: int) -> bytes:
        while len(self._buf) < n and self._more():
            pass
        return self._take(min(n, len(self._buf)))

    def skip(self, n: int) -> int:
        """Discard up to n bytes without keeping them; returns how many were skipped."""
        skipped = 0
        while skipped < n:
            if not self._buf and not self._more():
                break
            take = min(n - skipped, len(self._buf))
            self._take(take)
            skipped += take
        return skipped

    def skip_to_boundary(self, n: int) -> tuple[int, bool]:
        """Discard up to n bytes, but stop at a record boundary (`\\n\\nWARC/1.x` line) that
        starts within them: (bytes skipped, whether a boundary stopped it). Memory stays one
        chunk however large n is (a Content-Length of 10^20)."""
        keep = 16  # longer than a boundary: one cut between chunks is found in the next pass
        skipped = 0
        while skipped < n:
            if len(self._buf) < CHUNK:
                self._more()
            if not self._buf:
                break
            window = n - skipped
            m = _BOUNDARY_RE.search(self._buf, 0, min(len(self._buf), window + keep))
            if m and m.start(1) < window:
                self._take(m.start(1))
                return skipped + m.start(1), True
            final = self._eof or self.error is not None
            take = min(window, len(self._buf) - (0 if final else keep))
            if take <= 0:
                if self._more():
                    continue
                take = min(window, len(self._buf))
            self._take(take)
            skipped += take
        return skipped, False

    def peek(self, n: int) -> bytes:
        while len(self._buf) < n and self._more():
            pass
        return bytes(self._buf[:n])

    def unread(self, data: bytes) -> None:
        self._buf[0:0] = data
        self.offset -= len(data)

    def _take(self, n: int) -> bytes:
        out = bytes(self._buf[:n])
        del self._buf[:n]
        self.offset += n
        return out


@dataclass
class WarcRecord:
    """One parsed record: its headers (names as written) and its payload bytes."""

    offset: int
    headers: dict[str, str]
    payload: bytes

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


class _RecordParser:
    """Iterates WarcRecord | DeadLetter over one decompressed stream."""

    def __init__(self, stream: _Stream, path: str, max_record_bytes: int) -> None:
        self.s = stream
        self.path = path
        self.max_record_bytes = max_record_bytes
        self._pending: DeadLetter | None = None  # junk found after the record just returned

    def _dead(
        self, reason: str, error: str, offset: int, record_id: str | None = None
    ) -> DeadLetter:
        return DeadLetter(
            file=self.path, error=error, reason=reason, offset=offset, record_id=record_id
        )

    def _skip_to_next_record(self) -> None:
        """Advance to the start of the next line beginning with `WARC/` (or EOF)."""
        at_line_start = True
        while True:
            if at_line_start and self.s.peek(5) == b"WARC/":
                return
            line = self.s.readline(MAX_HEADER_LINE)
            if not line:
                return
            at_line_start = line.endswith(b"\n")

    def __iter__(self) -> Iterator[WarcRecord | DeadLetter]:
        while True:
            item = self._next()
            err = self.s.error
            if err is not None and (
                item is None or (isinstance(item, DeadLetter) and item.reason == "truncated_record")
            ):  # the record in progress was cut by a bad gzip member: one dead letter for both
                self.s.resume()
                dead = self._dead(
                    "corrupt_gzip",
                    f"{err} (at compressed offset {err.offset}; {err.skipped} compressed bytes "
                    "skipped to the next gzip member)",
                    item.offset if item else self.s.offset,
                )
                dead.bytes_skipped = err.skipped
                yield dead
                continue
            if item is None:
                return
            if isinstance(item, DeadLetter) and item.offset is not None:
                # a bad record: reading resumes here, so what lies between was skipped
                item.bytes_skipped = max(0, self.s.offset - item.offset)
            yield item
            if self._pending is not None:
                yield self._pending
                self._pending = None

    def _next(self) -> WarcRecord | DeadLetter | None:
        s = self.s
        while True:  # skip blank lines between records
            start = s.offset
            line = s.readline(MAX_HEADER_LINE)
            if not line:
                return None
            if line.strip():
                break
        version_line = line
        if not line.startswith(b"WARC/"):
            self._skip_to_next_record()
            snippet = line[:60].decode("utf-8", "replace")
            return self._dead(
                "bad_record_header", f"expected a WARC/1.x line, got {snippet!r}", start
            )
        headers: dict[str, str] = {}
        last = ""
        for _ in range(MAX_HEADER_LINES):
            line = s.readline(MAX_HEADER_LINE)
            if not line:
                return self._dead("truncated_record", "end of input inside WARC headers", start)
            if not line.endswith(b"\n"):
                self._skip_to_next_record()
                return self._dead("bad_header", "WARC header line too long", start)
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if not text.strip():
                break
            if text[0] in " \t" and last:  # folded continuation line
                headers[last] += " " + text.strip()
                continue
            name, sep, value = text.partition(":")
            if not sep or not name.strip():
                self._skip_to_next_record()
                return self._dead("bad_header", f"malformed WARC header line {text[:60]!r}", start)
            last = name.strip().lower()
            headers[last] = value.strip()
        else:
            self._skip_to_next_record()
            return self._dead("bad_header", f"more than {MAX_HEADER_LINES} header lines", start)
        record_id = headers.get("warc-record-id")
        if not version_line.endswith(b"\r\n"):
            return self._read_lf_payload(start, headers, record_id)
        raw_length = headers.get("content-length", "")
        try:
            length = int(raw_length)
            if length < 0:
                raise ValueError
        except ValueError:
            self._skip_to_next_record()
            return self._dead(
                "bad_content_length", f"Content-Length is {raw_length!r}", start, record_id
            )
        if length > self.max_record_bytes:
            skipped, resynced = s.skip_to_boundary(length)
            if resynced:  # Content-Length runs past the next record: read on from there
                return self._dead(
                    "content_length_mismatch",
                    f"Content-Length {length} runs past the next record ({skipped} bytes skipped)",
                    start,
                    record_id,
                )
            if skipped < length:
                return self._dead(
                    "truncated_record", "end of input inside payload", start, record_id
                )
            if not self._at_boundary():
                self._skip_to_next_record()
            return self._dead(
                "record_too_large",
                f"payload of {length} bytes exceeds max_record_bytes={self.max_record_bytes}",
                start,
                record_id,
            )
        payload = s.read(length)
        if len(payload) < length:
            m = _BOUNDARY_RE.search(payload)
            if m:  # Content-Length runs past the end of the file: read on at the next record
                s.unread(payload[m.start(1) :])
                return self._dead(
                    "content_length_mismatch",
                    f"Content-Length {length} runs past the end of the input "
                    f"({m.start(1)} bytes skipped)",
                    start,
                    record_id,
                )
            return self._dead(
                "truncated_record",
                f"payload has {len(payload)} of {length} bytes",
                start,
                record_id,
            )
        if not self._at_boundary() and _block_digest_matches(headers, payload):
            # the payload is exactly the record (its digest says so): what follows is junk
            junk = s.offset
            self._skip_to_next_record()
            self._pending = self._dead(
                "junk_between_records",
                f"{s.offset - junk} bytes that are not a WARC record, skipped",
                junk,
            )
            self._pending.bytes_skipped = s.offset - junk
        elif not self._at_boundary():
            m = _BOUNDARY_RE.search(payload)
            if m:  # Content-Length too large: the next record starts inside this payload
                s.unread(payload[m.start(1) :])
            else:  # too small, or junk after the record
                self._skip_to_next_record()
            return self._dead(
                "content_length_mismatch",
                f"Content-Length {length} does not end the record",
                start,
                record_id,
            )
        if self.s.error is not None and self.s.offset > self.s.error.out_start:
            # the payload is complete but its gzip member failed (CRC, truncation): untrusted
            return self._dead("truncated_record", "gzip member of the record is corrupt", start)
        return WarcRecord(start, headers, payload)

    def _read_lf_payload(
        self, start: int, headers: dict[str, str], record_id: str | None
    ) -> WarcRecord | DeadLetter:
        """Records written with bare `\\n` line ends (cc_net's sample, hand-edited files) were
        not written by a WARC writer, and their Content-Length rarely matches: such a payload
        runs to the next `WARC/1.x` line or EOF, as cc_net's own parser reads it."""
        s = self.s
        payload = bytearray()
        while True:
            if _VERSION_RE.match(s.peek(10)):
                break
            line = s.readline(MAX_HEADER_LINE)
            if not line:
                break
            payload += line
            if len(payload) > self.max_record_bytes:
                self._skip_to_next_record()
                return self._dead(
                    "record_too_large",
                    f"payload exceeds max_record_bytes={self.max_record_bytes}",
                    start,
                    record_id,
                )
        headers["x-content-length-ignored"] = headers.get("content-length", "")
        return WarcRecord(start, headers, bytes(payload).rstrip(b"\n") + b"\n")

    def _at_boundary(self) -> bool:
        """After a payload: is EOF or the next record next (after blank separator lines)? The
        separators are consumed only when the answer is yes, so a wrong length can be undone."""
        head = self.s.peek(64)
        rest = head.lstrip(b"\r\n")
        if rest.startswith(b"WARC/") or (not rest and len(head) < 64):
            self.s.read(len(head) - len(rest))
            return True
        return False


def iter_records(
    raw: BinaryIO, path: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
) -> Iterator[WarcRecord | DeadLetter]:
    """All records of a (possibly gzipped) WARC/WET stream, bad ones as dead letters."""
    if compression_of(path) == "gzip":
        chunks = GzipMembers(raw).read_chunk
    elif compression_of(path) is None:

        def chunks() -> bytes:
            return raw.read(CHUNK)

    else:
        from llama_data.pipeline.io import open_decompressed

        stream = open_decompressed(raw, path)

        def chunks() -> bytes:
            return stream.read(CHUNK)

    yield from _RecordParser(_Stream(chunks), path, max_record_bytes)


# --- payload checks shared by both readers -------------------------------------------------------

_CONTROL = bytes(c for c in range(32) if c not in (9, 10, 12, 13))
_CONTROL_TABLE = bytes.maketrans(b"", b"")


def looks_binary(payload: bytes) -> bool:
    """NUL bytes, or more than 1% C0 control bytes (other than tab/newlines/form feed)."""
    head = payload[: 1 << 16]
    if b"\x00" in head:
        return True
    controls = len(head) - len(head.translate(_CONTROL_TABLE, _CONTROL))
    return controls > max(2, len(head) // 100)


def decode_text(payload: bytes, max_bad_fraction: float = 0.01) -> tuple[str | None, int]:
    """UTF-8 text and the number of invalid bytes replaced; None when too much is invalid."""
    try:
        return payload.decode("utf-8"), 0
    except UnicodeDecodeError:
        pass
    text = payload.decode("utf-8", "replace")
    bad = text.count("\ufffd") - payload.count("\ufffd".encode())
    if bad > max(1, len(payload) * max_bad_fraction):
        return None, bad
    return text, bad


def _clean_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join([line.rstrip() for line in text.split("\n")]).strip("\n")


def _first_line(text: str) -> str:
    for line in text.split("\n"):
        if line.strip():
            return line.strip()[:1000]
    return ""


def _block_digest_matches(headers: dict[str, str], payload: bytes) -> bool:
    """Whether the record's `WARC-Block-Digest` (sha1, base32, as Common Crawl writes it) is the
    payload's: then its Content-Length was right, whatever follows it."""
    value = headers.get("warc-block-digest", "")
    if not value.lower().startswith("sha1:"):
        return False
    digest = base64.b32encode(hashlib.sha1(payload, usedforsecurity=False).digest()).decode()
    return value.split(":", 1)[1].strip().upper() == digest


def _digest(value: str) -> str:
    return value.split(":", 1)[1] if value.lower().startswith("sha1:") else value


class _WarcFamilyReader(Reader):
    """Shared options of the WET and WARC readers."""

    def __init__(
        self, source: str = SOURCE, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    ) -> None:
        super().__init__(source)
        self.max_record_bytes = max_record_bytes

    def read(self, split: FileSplit, open_raw: OpenRaw) -> ReadResult:
        path = split.path
        fname = base_name(path)
        try:
            with open_raw(path) as raw:
                for item in iter_records(raw, path, self.max_record_bytes):
                    if isinstance(item, DeadLetter):
                        yield item
                        continue
                    out = self.convert(item, path, fname)
                    if out is not None:
                        yield out
        except OSError as exc:
            yield DeadLetter(
                file=path, error=f"{type(exc).__name__}: {exc}", reason="unreadable_file"
            )

    def convert(self, rec: WarcRecord, path: str, fname: str) -> Document | DeadLetter | None:
        raise NotImplementedError

    def _dead(self, rec: WarcRecord, path: str, reason: str, error: str) -> DeadLetter:
        return DeadLetter(
            file=path,
            error=error,
            reason=reason,
            offset=rec.offset,
            record_id=rec.header("WARC-Record-ID") or None,
        )

    def _document(
        self, rec: WarcRecord, fname: str, path: str, text: str, **meta: object
    ) -> Document:
        return Document(
            id=f"{fname}:{rec.offset}",
            source=self.source,
            text=text,
            meta={
                "url": rec.header("WARC-Target-URI").strip("<>"),
                "date": rec.header("WARC-Date"),
                "record_id": rec.header("WARC-Record-ID"),
                "file": path,
                **meta,
            },
        )


class WetReader(_WarcFamilyReader):
    """`conversion` records of WET files (text already extracted by Common Crawl).

    The title is the first non-empty line: Common Crawl's WET writer puts the page's <title> there.
    """

    name = "wet"

    def convert(self, rec: WarcRecord, path: str, fname: str) -> Document | DeadLetter | None:
        if rec.header("WARC-Type").lower() != "conversion":
            return None  # warcinfo and metadata records carry no page text
        if looks_binary(rec.payload):
            return self._dead(rec, path, "binary_payload", "payload has NUL or control bytes")
        text, bad = decode_text(rec.payload)
        if text is None:
            return self._dead(rec, path, "invalid_utf8", f"{bad} invalid UTF-8 sequences")
        text = _clean_text(text)
        meta: dict[str, object] = {
            "digest": _digest(rec.header("WARC-Block-Digest")),
            "title": _first_line(text),
        }
        if bad:
            meta["utf8_errors"] = bad
        cc_lang = rec.header("WARC-Identified-Content-Language")
        if cc_lang:
            meta["cc_languages"] = cc_lang
        return self._document(rec, fname, path, text, **meta)


_HTML_TYPES = ("text/html", "application/xhtml+xml")
_CHARSET_RE = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)


def _dechunk(body: bytes) -> bytes | None:
    """Undo HTTP chunked transfer coding; None when the framing is broken."""
    out = bytearray()
    pos = 0
    while True:
        eol = body.find(b"\n", pos)
        if eol < 0:
            return None
        size_field = body[pos:eol].split(b";")[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            return None
        pos = eol + 1
        if size == 0:
            return bytes(out)
        out += body[pos : pos + size]
        pos += size
        while body[pos : pos + 1] in (b"\r", b"\n") and pos < len(body):
            pos += 1


class WarcReader(_WarcFamilyReader):
    """HTML `response` records of WARC files, converted to text with resiliparse.

    The charset comes from the HTTP header when it decodes cleanly, else from resiliparse's
    detector (which also reads <meta charset>); non-HTML responses and non-2xx statuses are skipped,
    as Common Crawl's own WET conversion skips them. `main_content=False` keeps all visible text,
    as WET files do: boilerplate removal is the job of line dedup, not of the extractor.
    """

    name = "warc"

    def __init__(
        self,
        source: str = SOURCE,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        main_content: bool = False,
    ) -> None:
        super().__init__(source, max_record_bytes)
        self.main_content = main_content

    def convert(self, rec: WarcRecord, path: str, fname: str) -> Document | DeadLetter | None:
        if rec.header("WARC-Type").lower() != "response":
            return None
        if not rec.header("Content-Type").lower().startswith("application/http"):
            return None
        head, sep, body = rec.payload.partition(b"\r\n\r\n")
        if not sep:
            head, sep, body = rec.payload.partition(b"\n\n")
        if not sep:
            return self._dead(rec, path, "bad_http", "no end of HTTP headers")
        lines = head.decode("latin-1").splitlines()
        status = lines[0].split() if lines else []
        if len(status) < 2 or not status[0].upper().startswith("HTTP/"):
            return self._dead(rec, path, "bad_http", f"bad HTTP status line {lines[:1]!r}")
        if not status[1].startswith("2"):
            return None
        http: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            http[name.strip().lower()] = value.strip()
        ctype = http.get("content-type", "").lower()
        if ctype and not ctype.startswith(_HTML_TYPES):
            return None
        if not ctype and b"<html" not in body[:2048].lower():
            return None
        if "chunked" in http.get("transfer-encoding", "").lower():
            dechunked = _dechunk(body)
            if dechunked is not None:
                body = dechunked  # crawlers often store the body already de-chunked
        encoding = http.get("content-encoding", "").lower()
        if encoding in ("gzip", "x-gzip", "deflate") and body[:2] in (
            b"\x1f\x8b",
            b"\x78\x9c",
            b"\x78\x01",
            b"\x78\xda",
        ):
            try:  # 47: zlib or gzip header, auto-detected; bounded like the record itself
                body = inflate_bounded(body, 47, self.max_record_bytes)
            except DecompressionLimit as exc:
                return self._dead(rec, path, "decompression_limit", f"{encoding}: {exc}")
            except zlib.error as exc:
                return self._dead(rec, path, "bad_content_encoding", f"{encoding}: {exc}")
        if b"\x00" in body[:4096]:
            return self._dead(rec, path, "binary_payload", "HTML body has NUL bytes")
        html, charset = _decode_html(body, ctype)
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.html import HTMLTree

        tree = HTMLTree.parse(html)
        text = extract_plain_text(
            tree, preserve_formatting=True, main_content=self.main_content, list_bullets=False
        )
        title = (tree.title or "").strip()
        return self._document(
            rec,
            fname,
            path,
            _clean_text(text),
            digest=_digest(rec.header("WARC-Payload-Digest")),
            title=title[:1000],
            charset=charset,
        )


def _decode_html(body: bytes, ctype: str) -> tuple[str, str]:
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    m = _CHARSET_RE.search(ctype)
    if m:
        declared = m.group(1).lower()
        try:
            return body.decode(declared), declared
        except (LookupError, UnicodeDecodeError):
            pass
    detected = detect_encoding(body)
    return bytes_to_str(body, detected), detected


def is_wet_path(path: str) -> bool:
    name = base_name(path).lower()
    return ".wet" in name


class CommonCrawlReader(Reader):
    """WET or WARC by file name (`*.wet*` is WET), so one `--input` glob may mix both."""

    name = "commoncrawl"

    def __init__(
        self,
        source: str = SOURCE,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        main_content: bool = False,
    ) -> None:
        super().__init__(source)
        self.max_record_bytes = max_record_bytes
        self.main_content = main_content

    def read(self, split: FileSplit, open_raw: OpenRaw) -> ReadResult:
        reader: Reader
        if is_wet_path(split.path):
            reader = WetReader(self.source, self.max_record_bytes)
        else:
            reader = WarcReader(self.source, self.max_record_bytes, self.main_content)
        yield from reader.read(split, open_raw)
