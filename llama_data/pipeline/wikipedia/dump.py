"""Streaming reader of MediaWiki XML dumps: siteinfo, then one `WikiPage` per `<page>`.

Why pages are cut out of the byte stream and parsed one at a time (instead of one `iterparse`
over the whole file): a page with broken XML then costs that page only, a dump cut off mid-page
still yields every complete page before the cut, and a multistream split can be parsed without
the `<mediawiki>` root around it. Pages cannot nest and `<` never occurs unescaped in character
data, so `<page>` ... `</page>` in the bytes are exactly the element boundaries.

Entity-expansion attacks ("billion laughs") need a DTD: MediaWiki dumps never have one, so a
prolog with `<!DOCTYPE` or `<!ENTITY` is refused, and pages are parsed with entity resolution,
DTD loading and network access off.
"""

from __future__ import annotations

import bz2
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO
from urllib.parse import quote, urlsplit

from lxml import etree

from llama_data.pipeline.document import DeadLetter
from llama_data.pipeline.xmlsafe import (
    DTD_ERROR,
    declares_dtd,
    read_chunks,
    safe_parser,
    utf8_chunks,
)

MAX_HEADER_BYTES = 16 << 20
MAX_PAGE_BYTES = (
    512 << 20
)  # MediaWiki caps an article at 2 MB of wikitext; history pages grow larger
URL_SAFE = ";@$!*(),/~:"  # what MediaWiki's wfUrlencode leaves unencoded
NO_SITEINFO = "no <siteinfo> before the first page: not a MediaWiki dump?"

# A bz2 stream starts byte-aligned with "BZh" + block size digit + the block magic (pi in BCD);
# inside a stream blocks are not byte aligned, so a false match is a ~2^-77 coincidence.
BZ2_STREAM_START = re.compile(rb"BZh[1-9]1AY&SY")

# dbname suffixes of Wikimedia projects: `enwiki` is English Wikipedia, `enwiktionary` is not.
PROJECT_SUFFIXES = (
    ("wiktionary", "wiktionary"),
    ("wikibooks", "wikibooks"),
    ("wikinews", "wikinews"),
    ("wikiquote", "wikiquote"),
    ("wikisource", "wikisource"),
    ("wikiversity", "wikiversity"),
    ("wikivoyage", "wikivoyage"),
    ("wiki", "wikipedia"),
)
# dbnames whose language code is not their prefix (the rest: strip the suffix, `_` -> `-`).
DBNAME_LANG = {
    "be_x_old": "be-tarask",
    "zh_min_nan": "nan",
    "zh_yue": "yue",
    "zh_classical": "lzh",
    "simple": "en",
}


@dataclass(slots=True)
class SiteInfo:
    """What `<siteinfo>` says about the wiki: its language comes from here, not the file name."""

    dbname: str = ""
    base_url: str = ""
    sitename: str = ""
    xml_lang: str = ""
    namespaces: dict[int, str] = field(default_factory=dict)

    @property
    def project(self) -> str:
        for suffix, project in PROJECT_SUFFIXES:
            if self.dbname.endswith(suffix):
                return project
        host = urlsplit(self.base_url).hostname or ""
        return host.split(".")[-2] if host.count(".") >= 2 else ""

    @property
    def lang(self) -> str:
        for suffix, _ in PROJECT_SUFFIXES:
            if self.dbname.endswith(suffix) and len(self.dbname) > len(suffix):
                prefix = self.dbname[: -len(suffix)]
                return DBNAME_LANG.get(prefix, prefix.replace("_", "-"))
        host = urlsplit(self.base_url).hostname or ""
        if host.count(".") >= 2:
            return host.split(".")[0]
        return self.xml_lang


@dataclass(slots=True)
class WikiPage:
    """One page of a dump with its latest revision's raw wikitext (nothing cleaned yet)."""

    title: str
    ns: int
    page_id: int
    revision_id: int | None
    timestamp: str
    wikitext: str
    redirect: bool
    lang: str
    dbname: str
    base_url: str
    redirect_target: str | None = None
    model: str = "wikitext"
    file: str = ""
    offset: int | None = None
    namespaces: dict[int, str] = field(default_factory=dict)  # <siteinfo>'s key -> local name

    @property
    def url(self) -> str:
        """The article URL as MediaWiki writes it: spaces as underscores, the rest percent-encoded."""
        parts = urlsplit(self.base_url)
        if not parts.scheme or not parts.netloc:
            return ""
        path = quote(self.title.replace(" ", "_"), safe=URL_SAFE)
        return f"{parts.scheme}://{parts.netloc}/wiki/{path}"

    @property
    def doc_id(self) -> str:
        return f"{self.dbname}/{self.page_id}"


def _local(tag: object) -> str:
    """Tag name without namespace (dumps put everything in the export-0.x namespace)."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _child(el: etree._Element, name: str) -> etree._Element | None:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _child_text(el: etree._Element, name: str) -> str | None:
    c = _child(el, name)
    return None if c is None else (c.text or "")


def parse_siteinfo(xml: bytes, root_tag: bytes = b"") -> SiteInfo:
    """Parse a `<siteinfo>` element (bytes, UTF-8); `root_tag` is the `<mediawiki ...>` start tag."""
    el = etree.fromstring(xml, safe_parser())
    info = SiteInfo(
        dbname=(_child_text(el, "dbname") or "").strip(),
        base_url=(_child_text(el, "base") or "").strip(),
        sitename=(_child_text(el, "sitename") or "").strip(),
    )
    ns_el = _child(el, "namespaces")
    if ns_el is not None:
        for n in ns_el:
            try:
                info.namespaces[int(n.get("key", ""))] = (n.text or "").strip()
            except ValueError:
                continue
    m = re.search(rb'xml:lang="([^"]*)"', root_tag)
    if m:
        info.xml_lang = m.group(1).decode("utf-8", "replace")
    return info


def parse_page(xml: bytes, site: SiteInfo, file: str = "", offset: int | None = None) -> WikiPage:
    """One `<page>` element (UTF-8 bytes) to a WikiPage; the last `<revision>` is the current one."""
    el = etree.fromstring(xml, safe_parser())
    title = _child_text(el, "title")
    page_id = _child_text(el, "id")
    if title is None or page_id is None:
        raise ValueError("page without <title> or <id>")
    ns_text = _child_text(el, "ns")
    redirect_el = _child(el, "redirect")
    revision = None
    for c in el:
        if _local(c.tag) == "revision":
            revision = c
    rev_id: int | None = None
    timestamp = ""
    wikitext = ""
    model = "wikitext"
    if revision is not None:
        rid = _child_text(revision, "id")
        rev_id = int(rid) if rid and rid.strip() else None
        timestamp = (_child_text(revision, "timestamp") or "").strip()
        wikitext = _child_text(revision, "text") or ""
        model = (_child_text(revision, "model") or "wikitext").strip()
    return WikiPage(
        title=title.strip(),
        ns=int(ns_text) if ns_text and ns_text.strip() else _ns_from_title(title, site),
        page_id=int(page_id),
        revision_id=rev_id,
        timestamp=timestamp,
        wikitext=wikitext,
        redirect=redirect_el is not None,
        redirect_target=None if redirect_el is None else redirect_el.get("title"),
        lang=site.lang,
        dbname=site.dbname,
        base_url=site.base_url,
        model=model,
        file=file,
        offset=offset,
        namespaces=site.namespaces,
    )


def _ns_from_title(title: str, site: SiteInfo) -> int:
    """Old dumps (export-0.3) have no <ns>: infer it from the title prefix."""
    prefix, sep, _ = title.partition(":")
    if sep:
        for key, name in site.namespaces.items():
            if name and name == prefix:
                return key
    return 0


# ---------------------------------------------------------------------------------------------
# Byte streams


class TruncatedStream(Exception):
    """The compressed data ended before its end-of-stream marker."""


@dataclass(slots=True)
class StreamBoundary:
    """Where a split's own compressed bytes end, and (once reached) the decompressed offset.

    A split owns the pages whose `<page>` starts in its streams, but it reads on past its end
    until the last of them closes: dumps recompressed with pbzip2/lbzip2 cut streams at any
    byte, so a page may continue in the next split's first stream.
    """

    compressed: int
    decompressed: int | None = None


def bz2_chunks(
    raw_chunks: Iterable[bytes], boundary: StreamBoundary | None = None
) -> Iterator[bytes]:
    """Decompress concatenated bz2 streams (a multistream dump or a byte range of one)."""
    dec = bz2.BZ2Decompressor()
    seen_data = False
    fed = 0
    produced = 0
    for raw in raw_chunks:
        fed += len(raw)
        while raw:
            out = dec.decompress(raw)
            seen_data = True
            if out:
                produced += len(out)
                yield out
            if dec.eof:
                raw = dec.unused_data
                consumed = fed - len(raw)
                if (
                    boundary is not None
                    and boundary.decompressed is None
                    and consumed >= boundary.compressed
                ):
                    boundary.decompressed = produced
                dec = bz2.BZ2Decompressor()
                seen_data = False
            else:
                raw = b""
    if seen_data and not dec.eof:
        raise TruncatedStream("bz2 data ended before the end-of-stream marker (truncated file?)")


# ---------------------------------------------------------------------------------------------
# Page scanning


def _past(end: int | StreamBoundary | None, offset: int) -> bool:
    if end is None:
        return False
    if isinstance(end, StreamBoundary):
        return end.decompressed is not None and offset >= end.decompressed
    return offset >= end


@dataclass(slots=True)
class _Header:
    root_tag: bytes = b""
    siteinfo: bytes = b""
    dtd: bool = False


def _scan(
    chunks: Iterable[bytes], want_header: bool, start: int, end: int | StreamBoundary | None
) -> Iterator[tuple[str, int, bytes | _Header | int]]:
    """Yield ("header", 0, _Header) once (if wanted), then ("page", offset, bytes) per page whose
    `<page>` starts in [start, end) of the decompressed stream, then ("truncated", offset, b"")
    if the stream stopped inside a page. Offsets are decompressed bytes; the stream begins at `start`.
    """
    buf = bytearray()
    base = start  # stream offset of buf[0]
    it = iter(chunks)
    if want_header:
        header = _Header()
        for chunk in it:
            buf += chunk
            if b"</siteinfo>" in buf or b"<page>" in buf or len(buf) > MAX_HEADER_BYTES:
                break
        first_page = buf.find(b"<page>")
        prolog = bytes(buf[: first_page if first_page >= 0 else len(buf)])
        header.dtd = declares_dtd(prolog)
        s, e = prolog.find(b"<siteinfo>"), prolog.find(b"</siteinfo>")
        if s >= 0 and e > s:
            header.siteinfo = prolog[s : e + len(b"</siteinfo>")]
        m = re.search(rb"<mediawiki\b[^>]*>", prolog)
        if m:
            header.root_tag = m.group(0)
        yield "header", 0, header
        if header.dtd or not header.siteinfo:
            return
    search_from = 0
    page_start = -1
    exhausted = False
    while True:
        if page_start < 0:
            page_start = buf.find(b"<page>", search_from)
            if page_start < 0:
                keep = 5  # a "<page>" split across chunks
                drop = max(0, len(buf) - keep)
                del buf[:drop]
                base += drop
                search_from = 0
            elif _past(end, base + page_start):
                return
            else:
                search_from = page_start + 6
        if page_start >= 0:
            close = buf.find(b"</page>", search_from)
            reopened = buf.find(b"<page>", page_start + 6, close) if close >= 0 else -1
            if reopened >= 0:  # this page never closes: the next one begins first
                yield "unclosed", base + page_start, reopened - page_start
                del buf[:reopened]
                base += reopened
                page_start, search_from = -1, 0  # found again at 0, checked against `end`
                continue
            if close >= 0:
                stop = close + len(b"</page>")
                yield "page", base + page_start, bytes(buf[page_start:stop])
                del buf[:stop]
                base += stop
                search_from = 0
                page_start = -1
                continue
            search_from = max(page_start + 6, len(buf) - 6)
            if len(buf) - page_start > MAX_PAGE_BYTES:
                yield "too_large", base + page_start, b""
                drop = len(buf) - 6  # the rest of this page holds no "<page>": resync on the next
                del buf[:drop]
                base += drop
                page_start = -1
                search_from = 0
        if exhausted:
            if page_start >= 0:
                yield "truncated", base + page_start, b""
            return
        chunk = next(it, None)
        if chunk is None:
            exhausted = True
        else:
            buf += chunk


def iter_pages(
    stream: BinaryIO | Iterable[bytes],
    *,
    path: str = "",
    siteinfo: SiteInfo | None = None,
    start: int = 0,
    end: int | StreamBoundary | None = None,
) -> Iterator[WikiPage | DeadLetter]:
    """Pages of a decompressed dump stream (UTF-8 or UTF-16 with BOM), as WikiPage or DeadLetter.

    `stream` is a binary file object or an iterable of byte chunks. Without `siteinfo` the stream
    must begin with the dump header (`<mediawiki>` + `<siteinfo>`); with it, the stream may be any
    run of whole pages (a multistream split). `start`/`end` restrict output to pages whose
    `<page>` tag begins in that decompressed byte range, where `stream` begins at byte `start`
    (a plain-XML split); `end` may be a `StreamBoundary` that `bz2_chunks` fills in (a bz2 split). Decompression errors raised by the stream become a dead letter after
    every complete page read before them.
    """
    chunks: Iterable[bytes] = read_chunks(stream) if hasattr(stream, "read") else stream  # type: ignore[arg-type]
    site = siteinfo
    last_offset = 0
    try:
        for kind, offset, payload in _scan(utf8_chunks(chunks), site is None, start, end):
            last_offset = offset
            if kind == "header":
                assert isinstance(payload, _Header)
                if payload.dtd:
                    yield DeadLetter(
                        file=path,
                        offset=0,
                        reason="xml_dtd_forbidden",
                        error=DTD_ERROR,
                    )
                    return
                if not payload.siteinfo:
                    yield DeadLetter(
                        file=path,
                        offset=0,
                        reason="no_siteinfo",
                        error=NO_SITEINFO,
                    )
                    return
                try:
                    site = parse_siteinfo(payload.siteinfo, payload.root_tag)
                except (etree.XMLSyntaxError, ValueError) as exc:
                    yield DeadLetter(file=path, offset=0, reason="bad_siteinfo", error=str(exc))
                    return
            elif kind == "page":
                assert isinstance(payload, bytes) and site is not None
                try:
                    yield parse_page(payload, site, path, offset)
                except (etree.XMLSyntaxError, ValueError) as exc:
                    m = re.search(rb"<id>\s*(\d+)\s*</id>", payload)
                    yield DeadLetter(
                        file=path,
                        offset=offset,
                        reason="bad_page_xml",
                        error=f"{type(exc).__name__}: {exc}",
                        record_id=m.group(1).decode() if m else None,
                    )
            elif kind == "too_large":
                yield DeadLetter(
                    file=path,
                    offset=offset,
                    reason="page_too_large",
                    error=f"a <page> longer than {MAX_PAGE_BYTES} bytes (a history dump?): skipped",
                )
            elif kind == "unclosed":
                yield DeadLetter(
                    file=path,
                    offset=offset,
                    reason="unclosed_page",
                    error="a <page> with no </page> before the next <page>: skipped up to it",
                    bytes_skipped=payload if isinstance(payload, int) else None,
                )
            else:
                yield DeadLetter(
                    file=path,
                    offset=offset,
                    reason="truncated_page",
                    error="the XML ends inside a <page> (file cut off?)",
                )
    except (TruncatedStream, EOFError) as exc:
        yield DeadLetter(
            file=path,
            offset=last_offset,
            reason="truncated_stream",
            error=f"{type(exc).__name__}: {exc} (after the page at decompressed offset {last_offset})",
        )
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        yield DeadLetter(
            file=path,
            offset=last_offset,
            reason="corrupt_stream",
            error=f"{type(exc).__name__}: {exc} (after the page at decompressed offset {last_offset})",
        )


def read_siteinfo(stream: BinaryIO | Iterable[bytes], path: str = "") -> SiteInfo | DeadLetter:
    """Only the header of a dump: a multistream split needs it from the file's first stream."""
    chunks: Iterable[bytes] = read_chunks(stream) if hasattr(stream, "read") else stream  # type: ignore[arg-type]
    try:
        for _, _, header in _scan(utf8_chunks(chunks), True, 0, None):
            assert isinstance(header, _Header)
            if header.dtd:
                return DeadLetter(file=path, offset=0, reason="xml_dtd_forbidden", error=DTD_ERROR)
            if not header.siteinfo:
                return DeadLetter(file=path, offset=0, reason="no_siteinfo", error=NO_SITEINFO)
            return parse_siteinfo(header.siteinfo, header.root_tag)
    except (etree.XMLSyntaxError, OSError, EOFError, TruncatedStream, ValueError) as exc:
        return DeadLetter(
            file=path, offset=0, reason="bad_siteinfo", error=f"{type(exc).__name__}: {exc}"
        )
    return DeadLetter(file=path, offset=0, reason="no_siteinfo", error=NO_SITEINFO)
