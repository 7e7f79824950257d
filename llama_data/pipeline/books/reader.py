"""Books' readers: Project Gutenberg plain text (its licence header and footer cut, title,
author and language kept from the header) and Books3 JSON lines, one Document per book."""

from __future__ import annotations

import re
from dataclasses import dataclass

from llama_data.pipeline.document import DeadLetter, Document
from llama_data.pipeline.io import (
    FileSplit,
    JsonlDocumentReader,
    OpenRaw,
    Reader,
    ReadResult,
    base_name,
    open_decompressed,
)

SOURCE = "books"

# --------------------------------------------------------------------------------------------
# Gutenberg licence header and footer
# --------------------------------------------------------------------------------------------

# Where the book proper starts: the line holding one of these is the last header line.
# New style (2000s on): "*** START OF THE/THIS PROJECT GUTENBERG EBOOK <TITLE> ***" (with
# spacing and "COPYRIGHTED" variants); 1990s style: the small print ends with
# "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*" (or "*END THE SMALL PRINT").
_START_RE = re.compile(
    r"^\W{0,6}\*{2,}\s*START\s+OF\s+(?:THE|THIS)\s+(?:COPYRIGHTED\s+)?PROJECT\s+GUTENBERG"
    r"|^\W{0,6}\*\s*END\s*\*?\s*THE\s+SMALL\s+PRINT"
    r"|^\W{0,6}\*{2,}\s*START:?\s+OF\s+THE\s+PROJECT\s+GUTENBERG",
    re.IGNORECASE | re.MULTILINE,
)
# Where the book proper ends: the line holding one of these is the first footer line.
_END_RE = re.compile(
    r"^\W{0,6}\*{2,}\s*END\s+OF\s+(?:THE|THIS)\s+(?:COPYRIGHTED\s+)?PROJECT\s+GUTENBERG"
    r"|^\s*END\s+OF\s+(?:THE\s+|THIS\s+)?PROJECT\s+GUTENBERG(?:'S|\u2019S)?\b"
    r"|^\s*End\s+of\s+(?:the\s+|this\s+)?Project\s+Gutenberg(?:'s|\u2019s)?\s"
    r"|^\s*Ende\s+dieses\s+Project\s+Gutenberg"
    r"|^\W{0,6}\*{2,}\s*START:?\s+FULL\s+LICEN[SC]E",
    re.IGNORECASE | re.MULTILINE,
)
# Producer credits right after the START line are PG boilerplate, not the book.
_CREDITS_RE = re.compile(
    r"\A\s*(?:Produced\s+by|E-?text\s+prepared\s+by|This\s+e-?(?:text|book)\s+was\s+"
    r"(?:prepared|produced)\s+by|Transcribed\s+(?:from|by))[^\n]*(?:\n[^\n]+)*\n\s*\n",
    re.IGNORECASE,
)
_FIELD_RE = re.compile(
    r"^(Title|Author|Language|Release\s+date|Posting\s+Date):\s*(.+)$", re.I | re.M
)
_OLD_TITLE_RE = re.compile(
    r"(?:The\s+)?Project\s+Gutenberg(?:'s|\u2019s)?\s+(?:e-?book|e-?text)?\s*(?:of\s+)?(.+?),\s+by\s+(.+?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_EBOOK_NO_RE = re.compile(r"\[\s*e-?(?:book|text)\s*#\s*(\d+)\s*\]", re.IGNORECASE)


@dataclass(frozen=True)
class GutenbergText:
    """A Gutenberg file split into the book and what we learnt from its licence header."""

    text: str
    header_found: bool
    footer_found: bool
    title: str | None = None
    author: str | None = None
    language: str | None = None
    ebook_id: str | None = None


def strip_gutenberg(raw: str) -> GutenbergText:
    """Cut the PG licence header and footer; keep title/author/language from the header.

    A file without any marker (e.g. a mirror's header-less copy) is returned whole.
    """
    raw = raw.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    start = _START_RE.search(raw)
    header = ""
    body_start = 0
    if start is not None:
        header = raw[: start.start()]
        nl = raw.find("\n", start.end())
        body_start = len(raw) if nl < 0 else nl + 1
        # Old small print ends "*END*": the marker line may wrap onto a second line.
        if not raw[start.start() : body_start].strip().endswith(("*", "***")):
            nxt = raw.find("\n", body_start)
            if nxt > 0 and raw[body_start:nxt].rstrip().endswith("*"):
                body_start = nxt + 1
    end = _END_RE.search(raw, body_start)
    body_end = len(raw) if end is None else end.start()
    body = raw[body_start:body_end]
    if start is not None:
        body = _CREDITS_RE.sub("", body, count=1)
    fields = {m.group(1).lower().split()[0]: m.group(2).strip() for m in _FIELD_RE.finditer(header)}
    title, author = fields.get("title"), fields.get("author")
    if (title is None or author is None) and header:
        old = _OLD_TITLE_RE.search(header)
        if old:
            title = title or old.group(1).strip(" *")
            author = author or old.group(2).strip(" *")
    ebook = _EBOOK_NO_RE.search(header)
    return GutenbergText(
        text=body.strip("\n"),
        header_found=start is not None,
        footer_found=end is not None,
        title=title,
        author=author,
        language=fields.get("language"),
        ebook_id=ebook.group(1) if ebook else None,
    )


def decode_text(data: bytes) -> tuple[str, str]:
    """UTF-8 (with or without BOM) else cp1252 else latin-1: PG's older files are 8-bit."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    for enc in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def _stem(path: str) -> str:
    name = base_name(path)
    for ext in (".gz", ".bz2", ".zst", ".xz"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
    return name[:-4] if name.lower().endswith(".txt") else name


class GutenbergReader(Reader):
    """One Project Gutenberg plain-text file (optionally compressed) -> one book.

    The id is `gutenberg/<file name stem>`: the file name, not the ebook number, because two
    editions of one ebook carry the same number and must stay distinct until dedup decides.
    """

    name = "gutenberg"
    max_bytes: int = 256 << 20

    def __init__(self, source: str = SOURCE, max_bytes: int = 256 << 20) -> None:
        super().__init__(source)
        self.max_bytes = max_bytes

    def read(self, split: FileSplit, open_raw: OpenRaw) -> ReadResult:
        path = split.path
        try:
            with open_raw(path) as raw, open_decompressed(raw, path) as stream:
                data = stream.read(self.max_bytes + 1)
        except Exception as exc:  # noqa: BLE001 - any unreadable file becomes a dead letter
            yield DeadLetter(
                file=path, reason="unreadable_file", error=f"{type(exc).__name__}: {exc}"
            )
            return
        if len(data) > self.max_bytes:
            yield DeadLetter(
                file=path, reason="too_large", error=f"book over {self.max_bytes} bytes"
            )
            return
        if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
            yield DeadLetter(
                file=path, reason="not_text", error="binary content (a .zip or image?)"
            )
            return
        text, encoding = decode_text(data)
        yield book_document(f"gutenberg/{_stem(path)}", text, path, encoding, self.source)


def book_document(doc_id: str, raw_text: str, path: str, encoding: str, source: str) -> Document:
    """A Gutenberg book as a Document; `raw_chars` lets the filter tell "only a header" apart."""
    g = strip_gutenberg(raw_text)
    meta: dict = {
        "file": path,
        "format": "gutenberg",
        "raw_chars": len(raw_text),
        "pg_header": g.header_found,
        "pg_footer": g.footer_found,
    }
    if encoding not in ("utf-8-sig", "utf-8"):
        meta["encoding"] = encoding
    for key in ("title", "author", "language"):
        value = getattr(g, key)
        if value:
            meta[key] = value
    if g.ebook_id:
        meta["gutenberg_id"] = g.ebook_id
    return Document(id=doc_id, source=source, text=g.text, meta=meta)


class Books3Reader(JsonlDocumentReader):
    """Books3-style JSON lines (`{"text": ..., "meta": {...}}`, usually `.jsonl.zst`).

    Ids are `books3/<file>:<line>` unless the record has one, so they never collide with
    Gutenberg's (RedPajama's book ids did).
    """

    name = "books3"

    def __init__(self, source: str = SOURCE) -> None:
        super().__init__(source)

    def read(self, split: FileSplit, open_raw: OpenRaw) -> ReadResult:
        for item in super().read(split, open_raw):
            if isinstance(item, Document):
                item.id = item.id if item.id.startswith("books3/") else f"books3/{item.id}"
                item.meta.setdefault("format", "books3")
                item.meta.setdefault("file", split.path)
                item.meta.setdefault("raw_chars", len(item.text))
                item.meta.setdefault("title", item.meta.get("short_book_title"))
                if item.meta.get("title") is None:
                    item.meta.pop("title")
            yield item


def is_books3_path(path: str) -> bool:
    return ".jsonl" in base_name(path).lower() or ".json" in base_name(path).lower()


class BooksReader(Reader):
    """Gutenberg `.txt[.gz|.bz2|...]` files or Books3 `.jsonl[.zst]`, chosen per file."""

    name = "books"

    def __init__(self, source: str = SOURCE, max_bytes: int = 256 << 20) -> None:
        super().__init__(source)
        self.max_bytes = max_bytes

    def read(self, split: FileSplit, open_raw: OpenRaw) -> ReadResult:
        if is_books3_path(split.path):
            yield from Books3Reader(self.source).read(split, open_raw)
        else:
            yield from GutenbergReader(self.source, self.max_bytes).read(split, open_raw)
