"""Stack Exchange: Posts.xml rows (from the site's .7z or extracted) to one document per question.

The dump has one `<row .../>` per post. Rows are cut out of the byte stream and parsed one at a
time (a bad row costs that row), with entity resolution and DTDs refused. Each post becomes a
Document whose text is its body converted from HTML; a question's document is assembled from its
post and its answers, which a Beam job brings together by question id through a shuffle
(`assemble_question` is the per-question function; `group_posts` is the in-memory form for tests
and small inputs). Answers are sorted by their numeric score, highest first, ties by answer id:
as strings "9" > "10", the mistake RedPajama made.

Formats: the 2017-2023 dumps (`Tags="&lt;a&gt;&lt;b&gt;"`, no licence attribute) and the 2024
dumps (`ContentLicense`, `Tags="|a|b|"`, UTF-8 BOM).
"""

from __future__ import annotations

import os
import posixpath
import queue
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
from lxml import etree

from llama_data.pipeline.document import DeadLetter, Document, Rejected
from llama_data.pipeline.errors import UserError
from llama_data.pipeline.http_download import Downloaded, download, fetch_bytes, write_manifest
from llama_data.pipeline.io import (
    FileSplit,
    OpenRaw,
    Reader,
    ReadResult,
    base_name,
    compression_of,
    open_decompressed,
)
from llama_data.pipeline.schema import DocumentSchema
from llama_data.pipeline.steps import Step
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
    return int(value)


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
) -> Iterator[tuple[str, int, bytes]]:
    """("prolog", 0, bytes) once, then ("row", offset, bytes) per `<row`, up to the next `<`
    (`<` never occurs unescaped inside attribute values, so that is where the element ends),
    or ("too_large", offset, head) for a row beyond MAX_ROW_BYTES, after which it resyncs.

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
        yield "prolog", 0, bytes(buf[: first if first >= 0 else len(buf)])
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
            yield "too_large", base, bytes(buf[:200])
            base += len(buf)
            buf.clear()
            while pull():  # drop the rest of the row, up to the next "<"
                k = buf.find(b"<")
                if k >= 0:
                    del buf[:k]
                    base += k
                    break
                base += len(buf)
                buf.clear()
        else:
            stop = stop_at if stop_at >= 0 else len(buf)
            yield "row", base, bytes(buf[:stop]).rstrip()
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
        for kind, offset, data in _scan_rows(chunks, start, end):
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


def iter_7z_member(raw: BinaryIO, want: str = "posts.xml") -> Iterator[bytes]:
    """Stream one member of a .7z archive as chunks, without holding it in memory. The archive
    is opened at once (a bad archive or a missing member raises here); chunks come lazily.

    py7zr pushes decompressed data into a writer; a thread runs the extraction into a bounded
    queue so that the caller pulls chunks at its own pace.
    """
    import py7zr
    from py7zr.io import NullIO, Py7zIO, WriterFactory

    chunks: queue.Queue[Any] = queue.Queue(maxsize=4)
    stop = threading.Event()
    done = object()

    class Sink(Py7zIO):
        def __init__(self) -> None:
            self.n = 0

        def write(self, s: bytes | bytearray) -> int:
            data = bytes(s)
            while True:
                if stop.is_set():
                    raise _Stop
                try:
                    chunks.put(data, timeout=0.2)
                    break
                except queue.Full:
                    continue
            self.n += len(data)
            return len(data)

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

    archive = py7zr.SevenZipFile(raw, mode="r")
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
                if isinstance(item, BaseException):
                    raise OSError(f"7z extraction failed: {type(item).__name__}: {item}") from item
                yield item
        finally:
            stop.set()
            thread.join(timeout=5)

    return pull()


# ---------------------------------------------------------------------------------------------
# HTML to text


class _HtmlText(HTMLParser):
    """HTML to text lines: paragraphs, list items, headings and code blocks keep their lines."""

    BLOCK = frozenset(
        [
            "p",
            "div",
            "blockquote",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "table",
            "ul",
            "ol",
            "dl",
            "pre",
            "hr",
        ]
    )
    LINE = frozenset(["tr", "dt", "dd"])
    SKIP = frozenset(("script", "style"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.cur: list[str] = []
        self.pre = 0
        self.skip = 0
        self.lists: list[list[int | str]] = []  # [kind, counter]
        self.indent = ""  # of the current list item's line
        self.pending: tuple[str, str] | None = None  # (indent, marker) of an item not yet written

    # line building
    def _flush(self) -> None:
        if self.cur:
            line = "".join(self.cur)
            if self.pre:
                self.lines.append(line.rstrip())
            else:
                self.lines.append(self.indent + " ".join(line.split()))
            self.cur = []
        self.indent = ""

    def _break(self, blank: bool) -> None:
        self._flush()
        blank = blank and not self.lists  # blocks inside a list item stay tight lines
        if blank and self.lines and self.lines[-1] != "":
            self.lines.append("")

    def _start_item_line(self) -> None:
        """The list marker goes in front of the item's first text, whatever tags come before."""
        if self.pending is not None:
            self.indent, marker = self.pending
            self.cur.append(marker)
            self.pending = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skip += 1
        elif tag == "br":
            self._flush()
        elif tag == "li":
            self._flush()
            marker = "-"
            if self.lists:
                top = self.lists[-1]
                if top[0] == "ol":
                    top[1] = int(top[1]) + 1
                    marker = f"{top[1]}."
            self.pending = ("  " * max(0, len(self.lists) - 1), marker + " ")
        elif tag in ("ul", "ol"):
            self._break(blank=not self.lists)
            self.lists.append([tag, 0])
        elif tag == "pre":
            self._break(blank=True)
            self.pre += 1
        elif tag in self.BLOCK:
            self._break(blank=True)
        elif tag in self.LINE:
            self._flush()
        elif tag in ("td", "th") and self.cur:
            self.cur.append(" | ")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.cur.append(alt)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "hr"):
            self._flush()
        elif tag == "img":
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            self._break(blank=not self.lists)
        elif tag == "li":
            self._flush()
        elif tag == "pre":
            self._flush()
            self.pre = max(0, self.pre - 1)
            self._break(blank=True)
        elif tag in self.BLOCK:
            self._break(blank=True)
        elif tag in self.LINE:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if not self.pre:
            if not self.cur and not data.strip():
                return
            self._start_item_line()
            self.cur.append(data)
            return
        self._start_item_line()
        parts = data.split("\n")
        self.cur.append(parts[0])
        for part in parts[1:]:
            self.lines.append("".join(self.cur).rstrip())
            self.cur = [part]

    def text(self) -> str:
        self._flush()
        lines = self.lines
        while lines and lines[-1] == "":
            lines.pop()
        while lines and lines[0] == "":
            lines.pop(0)
        out: list[str] = []
        for line in lines:
            if line == "" and out and out[-1] == "":
                continue
            out.append(line)
        return "\n".join(out)


class InvalidHtml(ValueError):
    pass


def html_to_text(html: str) -> str:
    """A post body as text; raises InvalidHtml on markup that cannot be read (a cut-off tag)."""
    if "\x00" in html:
        raise InvalidHtml("NUL character in the body")
    parser = _HtmlText()
    parser.feed(html)
    leftover = parser.rawdata
    if leftover.lstrip().startswith("<") and ">" not in leftover:
        raise InvalidHtml(f"unterminated tag at the end: {leftover[:80]!r}")
    parser.close()
    return parser.text()


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


def question_key(doc: Document) -> str:
    """The shuffle key that brings a question and its answers together: `<site>/<question id>`."""
    meta = doc.meta
    qid = meta["post_id"] if meta.get("post_type") == QUESTION else meta.get("parent_id")
    return f"{meta['site']}/{qid}"


def answer_order(doc: Document) -> tuple[int, int]:
    """Highest score first (as a number), then the older (smaller) answer id."""
    return (-int(doc.meta.get("score") or 0), int(doc.meta["post_id"]))


def assemble_question(key: str, posts: Iterable[Document]) -> Iterator[Document | Rejected]:
    """A question's document: title, body, then its answers by numeric score. A group without
    its question (answers to a question missing from the input) is rejected as `orphan_answers`."""
    questions: list[Document] = []
    by_id: dict[int, Document] = {}
    repeated: list[Document] = []
    for d in posts:
        if d.meta.get("post_type") == QUESTION:
            questions.append(d)
        elif d.meta["post_id"] in by_id:  # the same site given twice (archive and Posts.xml)
            repeated.append(d)
        else:
            by_id[d.meta["post_id"]] = d
    answers = sorted(by_id.values(), key=answer_order)
    for dup in repeated:
        yield Rejected(dup.with_text(""), f"duplicate_of:{dup.id}")
    if not questions:
        site, _, qid = key.rpartition("/")
        meta = {"site": site, "question_id": int(qid) if qid.isdigit() else None,
                "answer_count": len(answers), "answer_ids": [a.meta["post_id"] for a in answers]}  # fmt: skip
        yield Rejected(
            Document(key, answers[0].source if answers else "stackexchange", "", meta),
            "orphan_answers",
        )
        return
    questions.sort(key=lambda d: int(d.meta["post_id"]))
    q = questions[0]
    for dup in questions[1:]:
        yield Rejected(dup.with_text(""), f"duplicate_of:{q.id}")
    parts = [q.meta.get("title", "").strip(), q.text.strip(), *(a.text.strip() for a in answers)]
    text = "\n\n".join(p for p in parts if p)
    licenses = sorted({str(d.meta.get("license")) for d in (q, *answers) if d.meta.get("license")})
    yield Document(
        id=q.id,
        source=q.source,
        text=text,
        meta={
            "site": q.meta["site"],
            "question_id": q.meta["post_id"],
            "title": q.meta.get("title", ""),
            "score": q.meta.get("score"),
            "answer_count": len(answers),
            "license": q.meta.get("license"),
            "licenses": licenses,
            "tags": q.meta.get("tags", []),
            "creation_date": q.meta.get("creation_date"),
            "answer_ids": [a.meta["post_id"] for a in answers],
            "answer_scores": [a.meta.get("score") for a in answers],
        },
    )


def group_posts(posts: Iterable[Document]) -> Iterator[Document | Rejected]:
    """In-memory grouping for tests and small inputs; the Beam job groups through a shuffle."""
    groups: dict[str, list[Document]] = defaultdict(list)
    for d in posts:
        groups[question_key(d)].append(d)
    for key in sorted(groups):
        yield from assemble_question(key, groups[key])


def top_sites(post_counts: dict[str, int], n: int) -> list[str]:
    """The `n` sites with most posts; ties by name, so the choice does not depend on order."""
    ranked = sorted(post_counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [site for site, _ in ranked[:n]]


# ---------------------------------------------------------------------------------------------
# Reader and steps


class StackExchangeReader(Reader):
    """A site's `.7z` archive (Posts.xml streamed out of it) or an extracted Posts.xml."""

    name = "stackexchange"

    def __init__(self, source: str = "stackexchange", split_bytes: int = 64 << 20) -> None:
        super().__init__(source)
        self.split_bytes = split_bytes

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


class PostFilter(Step):
    """Questions and answers of the chosen sites go on; other post types and sites are skipped."""

    name = "se_posts"

    def __init__(self, exclude_meta: bool = True, sites: Sequence[str] | None = None) -> None:
        self.exclude_meta = exclude_meta
        self.sites = None if sites is None else frozenset(sites)

    def process(self, doc: Document) -> Document | Rejected:
        site = str(doc.meta.get("site", ""))
        if self.exclude_meta and is_meta_site(site):
            return self.reject(doc, "meta_site", keep_text=False)
        if self.sites is not None and site not in self.sites:
            return self.reject(doc, "not_top_site", keep_text=False)
        ptype = doc.meta.get("post_type")
        if ptype not in (QUESTION, ANSWER):
            return self.reject(doc, f"post_type:{POST_TYPES.get(ptype, ptype)}", keep_text=False)  # type: ignore[arg-type]
        if ptype == ANSWER and doc.meta.get("parent_id") is None:
            return self.reject(doc, "answer_without_parent", keep_text=False)
        return doc


class PostHtmlToText(Step):
    """A post's HTML body to text; a body that is not readable HTML is a dead letter."""

    name = "se_html"

    def process(self, doc: Document) -> Document | DeadLetter:
        try:
            text = html_to_text(doc.text)
        except (InvalidHtml, AssertionError, ValueError) as exc:
            self.count("bad_html")
            return DeadLetter(
                file=str(doc.meta.get("file", "")),
                error=f"{type(exc).__name__}: {exc}",
                reason="bad_html",
                record_id=doc.id,
            )
        return doc.with_text(text)


STACKEXCHANGE_SCHEMA = DocumentSchema(
    extra=(
        pa.field("site", pa.string()),
        pa.field("question_id", pa.int64()),
        pa.field("title", pa.string()),
        pa.field("score", pa.int64()),
        pa.field("answer_count", pa.int64()),
        pa.field("license", pa.string()),
    )
)
"""The Stack Exchange stage's columns: id is `<site>/<question id>`; score is the question's."""


# ---------------------------------------------------------------------------------------------
# Download

STACKEXCHANGE_DUMP = "https://archive.org/download/stackexchange"


def site_archive_names(site: str) -> list[str]:
    """The dump's archives holding a site's posts (Stack Overflow ships Posts separately)."""
    site = site if "." in site else f"{site}.stackexchange.com"
    if site == "stackoverflow.com":
        return ["stackoverflow.com-Posts.7z"]
    return [f"{site}.7z"]


def parse_archive_checksums(xml: bytes) -> dict[str, tuple[str, str]]:
    """archive.org's `<item>_files.xml`: file name -> (algo, hex) with sha1 preferred over md5."""
    root = etree.fromstring(xml, safe_parser())
    out: dict[str, tuple[str, str]] = {}
    for f in root.iter("file"):
        name = f.get("name")
        if not name:
            continue
        for algo in ("sha1", "md5"):
            el = f.find(algo)
            if el is not None and el.text and el.text.strip():
                out[name] = (algo, el.text.strip().lower())
                break
    return out


def download_stackexchange(
    sites: Sequence[str],
    output: Path,
    base_url: str = STACKEXCHANGE_DUMP,
    echo: Callable[[str], None] = print,
) -> list[Downloaded]:
    """Fetch each site's .7z into `output/`, verified against the item's files.xml checksums."""
    base = base_url.rstrip("/")
    item = base.rsplit("/", 1)[-1]
    try:
        sums = parse_archive_checksums(fetch_bytes(f"{base}/{item}_files.xml"))
    except (UserError, etree.XMLSyntaxError) as exc:
        raise UserError(
            f"cannot read the dump's checksums ({base}/{item}_files.xml): {exc}"
        ) from exc
    got = []
    for site in sites:
        for name in site_archive_names(site):
            if name not in sums:
                raise UserError(f"{name}: not in the dump ({base}); check the site name")
            algo, digest = sums[name]
            d = download(f"{base}/{name}", Path(output) / name, checksum=digest, algo=algo)
            echo(f"{'have' if d.skipped else 'got '} {d.path} ({d.bytes:,} bytes, {algo} ok)")
            got.append(d)
    write_manifest(
        Path(output), got, {"source": "stackexchange", "base_url": base, "sites": list(sites)}
    )
    return got
