"""The Wikipedia dump Reader: byte-range splits of a dump for parallel reading, pages as Documents.

A `pages-articles` dump of a large wiki is tens of GB of bz2; read by one worker it is the whole
job's critical path. Multistream dumps are many concatenated bz2 streams of 100 pages each, so a
split is any run of whole streams: its offsets come from the `-index.txt.bz2` published next to the
dump (`offset:page_id:title` lines) or, without an index, from scanning the bytes for stream starts.
Plain `.xml` splits at byte ranges and each split takes the pages whose `<page>` begins inside it.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from llama_data.pipeline.document import DeadLetter, Document
from llama_data.pipeline.io import (
    FileSplit,
    OpenRaw,
    Reader,
    ReadResult,
    compression_of,
    open_decompressed,
)
from llama_data.pipeline.wikipedia.dump import (
    BZ2_STREAM_START,
    SiteInfo,
    StreamBoundary,
    WikiPage,
    bz2_chunks,
    iter_pages,
    read_chunks,
    read_siteinfo,
)
from llama_data.pipeline.wikipedia.wikitext import SITE_NAMESPACES

DEFAULT_SPLIT_BYTES = 64 << 20
SCAN_BLOCK = 16 << 20


def page_to_document(page: WikiPage, source: str = "wikipedia") -> Document:
    """The raw page as a Document (text = wikitext); cleaning is a Step, not the reader's job."""
    return Document(
        id=page.doc_id,
        source=source,
        text=page.wikitext,
        meta={
            "title": page.title,
            "ns": page.ns,
            "page_id": page.page_id,
            "revision_id": page.revision_id,
            "timestamp": page.timestamp,
            "redirect": page.redirect,
            "redirect_target": page.redirect_target,
            "model": page.model,
            "lang": page.lang,
            "dbname": page.dbname,
            "url": page.url,
            "file": page.file,
            # the dump's <siteinfo> namespace names, for the cleaner (one dict shared by the pages)
            SITE_NAMESPACES: page.namespaces,
        },
    )


def index_path_for(path: str) -> str | None:
    """The multistream index published with a dump, by Wikimedia's naming.

    `enwiki-20240601-pages-articles-multistream.xml.bz2` has
    `enwiki-20240601-pages-articles-multistream-index.txt.bz2`; the partitioned
    `...-multistream1.xml-p1p41242.bz2` has `...-multistream-index1.txt-p1p41242.bz2`.
    """
    head, name = posixpath.split(path)
    if "-multistream" not in name or ".xml" not in name:
        return None
    name = name.replace("-multistream", "-multistream-index", 1).replace(".xml", ".txt", 1)
    return posixpath.join(head, name) if head else name


def dump_name_for_index(index: str) -> str:
    """The dump file an index belongs to (inverse of `index_path_for`), as a base name."""
    name = posixpath.basename(index)
    return name.replace("-multistream-index", "-multistream", 1).replace(".txt", ".xml", 1)


def stream_offsets_from_index(stream: BinaryIO) -> list[int]:
    """Distinct stream offsets of an index (`offset:page_id:title` per line, 100 lines a stream)."""
    offsets: list[int] = []
    last = -1
    for line in stream:
        head, _, _ = line.partition(b":")
        try:
            off = int(head)
        except ValueError:
            continue
        if off != last:
            offsets.append(off)
            last = off
    return sorted(set(offsets))


def scan_stream_offsets(stream: BinaryIO) -> list[int]:
    """Offsets of every bz2 stream start, by scanning for the stream header + block magic."""
    offsets: list[int] = []
    pos = 0
    tail = b""
    overlap = 9  # a match may straddle two blocks
    while True:
        block = stream.read(SCAN_BLOCK)
        if not block:
            break
        data = tail + block
        base = pos - len(tail)
        for m in BZ2_STREAM_START.finditer(data):
            off = base + m.start()
            if not offsets or off > offsets[-1]:
                offsets.append(off)
        pos += len(block)
        tail = data[-overlap:]
    return offsets


def group_offsets(offsets: list[int], size: int, split_bytes: int) -> list[tuple[int, int | None]]:
    """Runs of whole streams of about `split_bytes` each, as (start, end) byte ranges."""
    starts = sorted({0, *(o for o in offsets if 0 <= o < size)})
    ranges: list[tuple[int, int | None]] = []
    begin = 0
    for off in starts[1:]:
        if off - begin >= split_bytes:
            ranges.append((begin, off))
            begin = off
    ranges.append((begin, None))
    return ranges


def _file_size(path: str, size: int, open_raw: OpenRaw) -> int:
    if size > 0:
        return size
    with open_raw(path) as raw:
        return raw.seek(0, os.SEEK_END)


class WikipediaReader(Reader):
    """MediaWiki XML dumps (bz2, multistream bz2, gz/xz/zst, plain .xml, UTF-16) to raw pages."""

    name = "wikipedia"
    _siteinfo_cache: dict[str, SiteInfo | DeadLetter] | None = None

    def __init__(
        self,
        source: str = "wikipedia",
        split_bytes: int = DEFAULT_SPLIT_BYTES,
        use_index: bool = True,
        index_paths: Sequence[str] = (),
    ) -> None:
        super().__init__(source)
        self.split_bytes = split_bytes
        self.use_index = use_index
        # Indexes given explicitly (kept elsewhere than beside their dump), by the dump they name.
        self.index_for = {dump_name_for_index(p): p for p in index_paths}

    # -- splitting -----------------------------------------------------------------------------

    def may_split(self, path: str) -> bool:
        return compression_of(path) in (None, "bz2")

    def splits(self, path: str, size: int, open_raw: OpenRaw) -> list[FileSplit]:
        kind = compression_of(path)
        if kind not in (None, "bz2"):
            return [FileSplit(path)]
        try:
            size = _file_size(path, size, open_raw)
        except OSError:
            return [FileSplit(path)]  # read() reports the error as a dead letter
        if size <= self.split_bytes:
            return [FileSplit(path)]
        if kind == "bz2":
            offsets = self._stream_offsets(path, open_raw)
            return [
                FileSplit(path, s, e) for s, e in group_offsets(offsets, size, self.split_bytes)
            ]
        with open_raw(path) as raw:
            head = raw.read(4)
        if head[:2] in (b"\xff\xfe", b"\xfe\xff") or head in (b"<\x00?\x00", b"\x00<\x00?"):
            return [FileSplit(path)]  # UTF-16: byte ranges would cut characters; read it whole
        bounds = list(range(0, size, self.split_bytes))
        return [
            FileSplit(path, s, bounds[i + 1] if i + 1 < len(bounds) else None)
            for i, s in enumerate(bounds)
        ]

    def _stream_offsets(self, path: str, open_raw: OpenRaw) -> list[int]:
        index = None
        if self.use_index:
            index = self.index_for.get(posixpath.basename(path)) or index_path_for(path)
        if index is not None:
            try:
                with open_raw(index) as raw, open_decompressed(raw, index) as stream:
                    offsets = stream_offsets_from_index(stream)
                if offsets:
                    return offsets
            except (OSError, EOFError, ValueError):
                pass  # no index next to the dump: scan
        with open_raw(path) as raw:
            return scan_stream_offsets(raw)

    # -- reading -------------------------------------------------------------------------------

    def _siteinfo(self, path: str, open_raw: OpenRaw) -> SiteInfo | DeadLetter:
        if self._siteinfo_cache is None:
            self._siteinfo_cache = {}
        if path not in self._siteinfo_cache:
            with open_raw(path) as raw:
                if compression_of(path) == "bz2":
                    site = read_siteinfo(bz2_chunks(read_chunks(raw)), path)
                else:
                    site = read_siteinfo(open_decompressed(raw, path), path)
            self._siteinfo_cache[path] = site
        return self._siteinfo_cache[path]

    def iter_pages(self, split: FileSplit, open_raw: OpenRaw) -> Iterator[WikiPage | DeadLetter]:
        """Raw pages of one split (the issue-5 reference extractor reads pages through this)."""
        path = split.path
        whole = split.start == 0 and split.end is None
        try:
            site: SiteInfo | None = None
            if split.start > 0:
                got = self._siteinfo(path, open_raw)
                if isinstance(got, DeadLetter):
                    yield got
                    return
                site = got
            with open_raw(path) as raw:
                kind = compression_of(path)
                if kind == "bz2":
                    if split.start:
                        raw.seek(split.start)
                    boundary = None
                    if split.end is not None:
                        boundary = StreamBoundary(split.end - split.start)
                    chunks = bz2_chunks(read_chunks(raw), boundary)
                    for item in iter_pages(chunks, path=path, siteinfo=site, end=boundary):
                        if isinstance(item, DeadLetter) and not whole:
                            item.error += f" (in the bz2 split at bytes {split.start}-{split.end})"
                        yield item
                elif kind is None and not whole:
                    raw.seek(split.start)
                    yield from iter_pages(
                        read_chunks(raw), path=path, siteinfo=site, start=split.start, end=split.end
                    )
                else:
                    with open_decompressed(raw, path) as stream:
                        yield from iter_pages(stream, path=path, siteinfo=site)
        except OSError as exc:
            yield DeadLetter(
                file=path,
                offset=split.start,
                reason="unreadable_file",
                error=f"{type(exc).__name__}: {exc}",
            )

    def read(self, split: FileSplit, open_raw: OpenRaw) -> ReadResult:
        for item in self.iter_pages(split, open_raw):
            if isinstance(item, DeadLetter):
                yield item
            else:
                yield page_to_document(item, self.source)
