"""Stack Exchange's dump as Documents: sites, Posts.xml rows, .7z members, one Document per post.

Rows are cut out of the byte stream and parsed one at a time (a bad row costs that row), with
entity resolution and DTDs refused. Formats: the 2017-2023 dumps (`Tags="&lt;a&gt;&lt;b&gt;"`, no
licence attribute) and the 2024 dumps (`ContentLicense`, `Tags="|a|b|"`, UTF-8 BOM).
"""

from __future__ import annotations

import os
import posixpath
import queue
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from lxml import etree

from llama_data.pipeline.document import DeadLetter, Document
from llama_data.pipeline.io import (
    INFLATION_FLOOR,
    INT64_MAX,
    INT64_MIN,
    MAX_INFLATION,
    DecompressionLimit,
    FileSplit,
    OpenRaw,
    Reader,
    ReadResult,
    base_name,
    compression_of,
    limit_letter,
    open_decompressed,
)
from llama_data.pipeline.xmlsafe import (
    DTD_ERROR,
    as_chunks,
    declares_dtd,
    read_chunks,
    safe_parser,
    utf8_chunks,
)

QUESTION = 1
ANSWER = 2
POST_TYPES = {1: "question", 2: "answer", 3: "orphaned_tag_wiki", 4: "tag_wiki_excerpt",
              5: "tag_wiki", 6: "moderator_nomination", 7: "wiki_placeholder",
              8: "privilege_wiki"}  # fmt: skip
MAX_ROW_BYTES = 64 << 20
SEVEN_ZIP_BLOCK = 64 << 10  # packed bytes py7zr decompresses at once (see `_small_blocks`)
ZSTD_7Z_BLOCK = 256  # the same for a zstd folder, whose output py7zr does not bound

# Stack Exchange's licence by the post's creation date (before 2024 dumps named it per post).
LICENSE_CUTOFFS = (("2011-04-08", "CC BY-SA 2.5"), ("2018-05-02", "CC BY-SA 3.0"))
LATEST_LICENSE = "CC BY-SA 4.0"


# ---------------------------------------------------------------------------------------------
# Sites


def site_of(path: str) -> str:
    """The site a file belongs to: `beer.stackexchange.com.7z`, `stackoverflow.com-Posts.7z`,
    or the folder holding `Posts.xml` (`.../beer.stackexchange.com/Posts.xml`)."""
    name = base_name(path)
    lower = name.lower()
    if lower.endswith(".7z"):
        stem = name[:-3]
        return re.sub(r"-posts$", "", stem, flags=re.IGNORECASE)
    stem = re.sub(r"(\.(bz2|gz|xz|zst))$", "", name, flags=re.IGNORECASE)
    if stem.lower() == "posts.xml":
        parent = posixpath.basename(posixpath.dirname(path.rstrip("/")))
        return parent or "unknown"
    m = re.match(r"(.+?)[-_.]posts\.xml$", stem, flags=re.IGNORECASE)
    return m.group(1) if m else stem


def is_meta_site(site: str) -> bool:
    """`meta.stackexchange.com`, `beer.meta.stackexchange.com`, `meta.stackoverflow.com`."""
    return "meta" in site.lower().split(".")


def license_for(creation_date: str, content_license: str | None) -> str:
    if content_license:
        return content_license
    for cutoff, name in LICENSE_CUTOFFS:
        if creation_date and creation_date < cutoff:
            return name
    return LATEST_LICENSE


def parse_tags(tags: str | None) -> list[str]:
    """`<a><b>` (old dumps) or `|a|b|` (2024 dumps) to ["a", "b"]."""
    if not tags:
        return []
    if tags.startswith("|"):
        return [t for t in tags.split("|") if t]
    return re.findall(r"<([^<>]+)>", tags)


# ---------------------------------------------------------------------------------------------
# Rows


@dataclass(slots=True)
class Post:
    id: int
    post_type: int
    parent_id: int | None
    score: int
    title: str
    body: str  # HTML as in the dump
    tags: list[str]
    creation_date: str
    license: str
    answer_count: int | None
    accepted_answer_id: int | None


def _int(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    n = int(value)
    if not INT64_MIN <= n <= INT64_MAX:  # the output's int64 columns
        raise ValueError(f"integer out of range: {value[:40]}")
    return n


def parse_row(row: bytes) -> Post:
    el = etree.fromstring(row, safe_parser())
    if el.tag != "row":
        raise ValueError(f"expected <row>, got <{el.tag}>")
    a = el.attrib
    post_id = _int(a.get("Id"))
    post_type = _int(a.get("PostTypeId"))
    if post_id is None or post_type is None:
        raise ValueError("row without Id or PostTypeId")
    created = a.get("CreationDate", "")
    return Post(
        id=post_id,
        post_type=post_type,
        parent_id=_int(a.get("ParentId")),
        score=_int(a.get("Score")) or 0,
        title=a.get("Title", ""),
        body=a.get("Body", ""),
        tags=parse_tags(a.get("Tags")),
        creation_date=created,
        license=license_for(created, a.get("ContentLicense")),
        answer_count=_int(a.get("AnswerCount")),
        accepted_answer_id=_int(a.get("AcceptedAnswerId")),
    )


def _scan_rows(
    chunks: Iterable[bytes], start: int = 0, end: int | None = None
) -> Iterator[tuple[str, int, bytes, int]]:
    """("prolog", 0, bytes, 0) once, then ("row", offset, bytes, 0) per `<row`, up to the next
    `<` (`<` never occurs unescaped inside attribute values, so that is where the element
    ends), or ("too_large", offset, head, bytes skipped) for a row beyond MAX_ROW_BYTES, after
    which it resyncs.

    With `start > 0` the chunks begin at byte `start` of the file (a split): there is no prolog,
    and the rows taken are those whose `<row` begins in [start, end).
    """
    it = iter(chunks)
    buf = bytearray()
    base = start  # stream offset of buf[0]
    done = False

    def pull() -> bool:
        nonlocal done
        chunk = next(it, None) if not done else None
        if chunk is None:
            done = True
            return False
        buf.extend(chunk)
        return True

    if start == 0:
        while b"<row" not in buf and len(buf) <= MAX_ROW_BYTES and pull():
            pass
        first = buf.find(b"<row")
        yield "prolog", 0, bytes(buf[: first if first >= 0 else len(buf)]), 0
        if first < 0:
            return
        del buf[:first]
        base = first
    else:
        first = -1
        while first < 0:
            first = buf.find(b"<row")
            if first < 0:
                keep = max(0, len(buf) - 3)
                del buf[:keep]
                base += keep
                if not pull():
                    return
        del buf[:first]
        base += first
    while True:  # here buf starts with "<row"
        if end is not None and base >= end:
            return  # the next split's row
        stop_at = buf.find(b"<", 1)
        scanned = len(buf)
        while stop_at < 0 and len(buf) <= MAX_ROW_BYTES and pull():
            stop_at = buf.find(b"<", scanned)
            scanned = len(buf)
        if stop_at < 0 and len(buf) > MAX_ROW_BYTES:
            row_at, head = base, bytes(buf[:200])
            base += len(buf)
            buf.clear()
            try:
                while pull():  # drop the rest of the row, up to the next "<"
                    k = buf.find(b"<")
                    if k >= 0:
                        del buf[:k]
                        base += k
                        break
                    base += len(buf)
                    buf.clear()
            except Exception:  # the stream failed inside the row: it is still reported
                yield "too_large", row_at, head, base - row_at
                raise
            yield "too_large", row_at, head, base - row_at
        else:
            stop = stop_at if stop_at >= 0 else len(buf)
            yield "row", base, bytes(buf[:stop]).rstrip(), 0
            if stop_at < 0:
                return
            del buf[:stop]
            base += stop
        while True:  # on to the next "<row"
            k = buf.find(b"<row")
            if k >= 0:
                del buf[:k]
                base += k
                break
            keep = max(0, len(buf) - 3)
            del buf[:keep]
            base += keep
            if not pull():
                return


def iter_posts(
    stream: BinaryIO | Iterable[bytes], path: str = "", start: int = 0, end: int | None = None
) -> Iterator[Post | DeadLetter]:
    """Posts of a Posts.xml byte stream (or chunks), dead letters for rows that do not parse.
    `start`/`end`: the stream begins at byte `start` of the file; take rows starting before `end`."""
    last = start
    try:
        chunks = utf8_chunks(as_chunks(stream)) if start == 0 else as_chunks(stream)
        for kind, offset, data, skipped in _scan_rows(chunks, start, end):
            last = offset
            if kind == "prolog":
                if declares_dtd(data):
                    yield DeadLetter(
                        file=path, offset=0, reason="xml_dtd_forbidden", error=DTD_ERROR
                    )
                    return
                if b"<posts" not in data:
                    yield DeadLetter(
                        file=path, offset=0, reason="not_posts_xml", error="no <posts> element"
                    )
                    return
                continue
            if kind == "too_large":
                yield DeadLetter(
                    file=path,
                    offset=offset,
                    reason="row_too_large",
                    error=f"a row longer than {MAX_ROW_BYTES} bytes: {data[:120]!r}...",
                    record_id=_row_id(data),
                    bytes_skipped=skipped,
                )
                continue
            if not data.endswith(b"/>"):
                reason = "truncated_row" if b"/>" not in data[-4:] else "bad_row_xml"
                yield DeadLetter(
                    file=path,
                    offset=offset,
                    reason=reason,
                    error=f"row not closed: {data[:120]!r}...",
                    record_id=_row_id(data),
                )
                continue
            try:
                yield parse_row(data)
            except (etree.XMLSyntaxError, ValueError) as exc:
                yield DeadLetter(
                    file=path,
                    offset=offset,
                    reason="bad_row_xml",
                    error=f"{type(exc).__name__}: {exc}",
                    record_id=_row_id(data),
                )
    except DecompressionLimit as exc:
        yield limit_letter(path, last, exc, f"the row at byte {last}")
    except (EOFError, OSError, UnicodeDecodeError, ValueError) as exc:
        yield DeadLetter(
            file=path,
            offset=last,
            reason="corrupt_stream",
            error=f"{type(exc).__name__}: {exc} (after the row at byte {last})",
        )


def _row_id(data: bytes) -> str | None:
    m = re.search(rb'\bId="(\d+)"', data)
    return m.group(1).decode() if m else None


# ---------------------------------------------------------------------------------------------
# 7z archives


class _Stop(Exception):
    pass


def _small_blocks(archive: Any) -> None:
    """Give each folder (compressed stream) of an opened archive a decompressor that reads
    `SEVEN_ZIP_BLOCK` packed bytes at a time, `ZSTD_7Z_BLOCK` for zstd.

    py7zr reads and decompresses packed data a block at a time (megabytes by default), and a
    decompressor that fails on damage takes its whole block's output with it: a small archive
    damaged anywhere lost every post, even those before the damage. Its folders take no block
    size from `SevenZipFile`, only py7zr's process-wide default, so each folder's decompressor
    (which py7zr creates on first use and keeps) is made here, for this archive only. py7zr's
    zstd decompressor ignores its output bound, and zstd inflates up to ~32,000:1: 256 packed
    bytes keep one step's output within 8 MiB.
    """
    from py7zr.compressor import SevenZipDecompressor, SupportedMethods
    from py7zr.properties import FILTER_ZSTD

    streams = getattr(archive.header, "main_streams", None)
    if streams is None:
        return
    for folder in streams.unpackinfo.folders:
        if not folder.files:
            continue
        zstd = any(SupportedMethods.get_filter_id(c) == FILTER_ZSTD for c in folder.coders)
        folder.decompressor = SevenZipDecompressor(
            folder.coders,
            folder.files[0].compressed,  # what py7zr passes on first use: the packed size
            folder.unpacksizes,
            folder.crc,
            folder.password,
            blocksize=ZSTD_7Z_BLOCK if zstd else SEVEN_ZIP_BLOCK,
        )


def seven_zip_budget(raw: BinaryIO) -> int:
    """How many bytes an archive's members may inflate to: `MAX_INFLATION` times its size, at
    least `INFLATION_FLOOR` (as for compressed JSON lines)."""
    here = raw.tell()
    size = raw.seek(0, os.SEEK_END)
    raw.seek(here)
    return max(INFLATION_FLOOR, MAX_INFLATION * size)


def iter_7z_member(
    raw: BinaryIO, want: str = "posts.xml", limit: int | None = None
) -> Iterator[bytes]:
    """Stream one member of a .7z archive as chunks, without holding it in memory. The archive
    is opened at once (a bad archive or a missing member raises here); chunks come lazily.
    Past `limit` decompressed bytes (`seven_zip_budget` by default) the chunks end with
    `DecompressionLimit`.

    py7zr pushes decompressed data into a writer; a thread runs the extraction into a bounded
    queue (of 1 MiB pieces) so that the caller pulls chunks at its own pace.
    """
    import py7zr
    from py7zr.exceptions import DecompressionBombError
    from py7zr.io import NullIO, Py7zIO, WriterFactory

    if limit is None:
        limit = seven_zip_budget(raw)
    chunks: queue.Queue[Any] = queue.Queue(maxsize=4)
    stop = threading.Event()
    done = object()

    class Sink(Py7zIO):
        def __init__(self) -> None:
            self.n = 0

        def write(self, s: bytes | bytearray) -> int:
            view = memoryview(s)  # up to py7zr's step (128 MB): queued in pieces
            over = self.n + len(view) > limit
            if over:  # the bytes before the limit still go to the reader
                view = view[: max(0, limit - self.n)]
            for i in range(0, len(view), 1 << 20):
                data = bytes(view[i : i + (1 << 20)])
                while True:
                    if stop.is_set():
                        raise _Stop
                    try:
                        chunks.put(data, timeout=0.2)
                        break
                    except queue.Full:
                        continue
            self.n += len(view)
            if over:
                raise DecompressionLimit(f"inflate to more than {limit} bytes")
            return len(view)

        def read(self, size: int | None = None) -> bytes:
            return b""

        def seek(self, offset: int, whence: int = 0) -> int:
            return offset

        def flush(self) -> None:
            return None

        def size(self) -> int:
            return self.n

    class Factory(WriterFactory):
        def create(self, filename: str) -> Py7zIO:
            if posixpath.basename(filename).lower() == want:
                return Sink()
            return NullIO()

    # py7zr checks a step's output (128 MB at most) before writing it, and counts the members
    # skipped on the way too: with one step of slack, the sink stops at `limit` itself, after
    # the bytes before it
    archive = py7zr.SevenZipFile(raw, mode="r", max_extract_size=limit + (128 << 20))
    _small_blocks(archive)
    members = archive.getnames()
    names = [n for n in members if posixpath.basename(n).lower() == want]
    if not names:
        archive.close()
        raise FileNotFoundError(f"no Posts.xml in the archive (members: {members[:10]})")

    def work() -> None:
        try:
            archive.extract(targets=names[:1], factory=Factory())
            chunks.put(done)
        except _Stop:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
            chunks.put(exc)
        finally:
            archive.close()

    def pull() -> Iterator[bytes]:
        thread = threading.Thread(target=work, name="py7zr-extract", daemon=True)
        thread.start()
        try:
            while True:
                item = chunks.get()
                if item is done:
                    return
                if isinstance(item, DecompressionLimit):
                    raise DecompressionLimit(f"the archive's member {want} would {item}")
                if isinstance(item, DecompressionBombError):
                    raise DecompressionLimit(f"the archive's members {item}")
                if isinstance(item, BaseException):
                    raise OSError(f"7z extraction failed: {type(item).__name__}: {item}") from item
                yield item
        finally:
            stop.set()
            thread.join(timeout=5)

    return pull()


# ---------------------------------------------------------------------------------------------
# Documents


def post_to_document(
    post: Post, site: str, file: str = "", source: str = "stackexchange"
) -> Document:
    """One post (text = its HTML body); the question's title and score travel in meta."""
    return Document(
        id=f"{site}/{post.id}",
        source=source,
        text=post.body,
        meta={
            "site": site,
            "post_id": post.id,
            "post_type": post.post_type,
            "parent_id": post.parent_id,
            "score": post.score,
            "title": post.title,
            "tags": post.tags,
            "creation_date": post.creation_date,
            "license": post.license,
            "answer_count": post.answer_count,
            "accepted_answer_id": post.accepted_answer_id,
            "file": file,
        },
    )


# ---------------------------------------------------------------------------------------------
# Reader


class StackExchangeReader(Reader):
    """A site's `.7z` archive (Posts.xml streamed out of it) or an extracted Posts.xml."""

    name = "stackexchange"

    def __init__(self, source: str = "stackexchange", split_bytes: int = 64 << 20) -> None:
        super().__init__(source)
        self.split_bytes = split_bytes

    def may_split(self, path: str) -> bool:
        return not path.lower().endswith(".7z") and compression_of(path) is None

    def splits(self, path: str, size: int, open_raw: OpenRaw) -> list[FileSplit]:
        """An extracted Posts.xml (Stack Overflow's is ~100 GB) is read in byte ranges, each
        taking the rows that start in it; archives and compressed files are read whole."""
        if path.lower().endswith(".7z") or compression_of(path) is not None:
            return [FileSplit(path)]
        try:
            if size <= 0:
                with open_raw(path) as raw:
                    size = raw.seek(0, os.SEEK_END)
        except OSError:
            return [FileSplit(path)]
        if size <= self.split_bytes:
            return [FileSplit(path)]
        bounds = list(range(0, size, self.split_bytes))
        return [
            FileSplit(path, b, bounds[i + 1] if i + 1 < len(bounds) else None)
            for i, b in enumerate(bounds)
        ]

    def read(self, split: FileSplit, open_raw: OpenRaw) -> ReadResult:
        path = split.path
        site = site_of(path)
        try:
            with open_raw(path) as raw:
                if split.start > 0 or split.end is not None:
                    yield from self._read_range(raw, split, site)
                elif path.lower().endswith(".7z"):
                    try:
                        chunks: Iterable[bytes] = iter_7z_member(raw)
                        posts = iter_posts(chunks, path)
                        first = next(posts, None)
                    except Exception as exc:  # noqa: BLE001 - py7zr raises many types on bad archives
                        yield DeadLetter(
                            file=path,
                            reason="bad_archive",
                            error=f"{type(exc).__name__}: {exc}",
                        )
                        return
                    if first is not None:
                        yield self._convert(first, site, path)
                    for p in posts:
                        yield self._convert(p, site, path)
                else:
                    with open_decompressed(raw, path) as stream:
                        for p in iter_posts(stream, path):
                            yield self._convert(p, site, path)
        except OSError as exc:
            yield DeadLetter(
                file=path, reason="unreadable_file", error=f"{type(exc).__name__}: {exc}"
            )

    def _read_range(self, raw: BinaryIO, split: FileSplit, site: str) -> ReadResult:
        path = split.path
        if split.start > 0:  # the prolog is in the first split only: check it here as well
            head = raw.read(1 << 16)
            first_row = head.find(b"<row")
            prolog = head[: first_row if first_row >= 0 else len(head)]
            if declares_dtd(prolog):
                yield DeadLetter(file=path, offset=0, reason="xml_dtd_forbidden", error=DTD_ERROR)
                return
            raw.seek(split.start)
        chunks = read_chunks(raw)
        for p in iter_posts(chunks, path, split.start, split.end):
            yield self._convert(p, site, path)

    def _convert(self, item: Post | DeadLetter, site: str, path: str) -> Document | DeadLetter:
        if isinstance(item, DeadLetter):
            if item.record_id:
                item.record_id = f"{site}/{item.record_id}"
            return item
        return post_to_document(item, site, path, self.source)
