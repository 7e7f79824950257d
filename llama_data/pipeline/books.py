"""Books: Project Gutenberg and Books3 readers, licence stripping, and book-level near-dedup.

LLaMA (§2.1) takes Gutenberg and Books3 and "performs deduplication at the book level, removing
books with more than 90% content overlap". Near-dedup here is MinHash LSH over word n-gram
shingles, with every LSH candidate pair *verified* on the shingle sets themselves, so a book is
never dropped because of a hash collision or an unlucky band.

The sketching is vectorised with numpy: words are hashed once per distinct word, shingle hashes
are rolled from word hashes in numpy, and the permutations are applied to a (shingles x perms)
matrix in chunks. The permutation parameters and the "affine32" scheme are datasketch's own, so a
signature here equals `datasketch.MinHash(num_perm, seed, hashfunc=<identity>)` fed the same
32-bit shingle hashes, and can be indexed by `datasketch.MinHashLSH` unchanged.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from llama_data.pipeline.document import DeadLetter, Document, Outcome, Rejected
from llama_data.pipeline.io import (
    FileSplit,
    JsonlDocumentReader,
    OpenRaw,
    Reader,
    ReadResult,
    base_name,
    open_decompressed,
)
from llama_data.pipeline.steps import Step

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


class BookFilter(Step):
    """Reject books with nothing left: `empty` (no text at all) or `header_only` (licence only)."""

    name = "books_filter"

    def __init__(self, min_words: int = 1) -> None:
        self.min_words = min_words

    def process(self, doc: Document) -> Outcome:
        if len(doc.text.split(None, self.min_words)) >= self.min_words:
            return doc
        had_text = int(doc.meta.get("raw_chars", 0)) > 0 and bool(
            doc.meta.get("pg_header") or doc.meta.get("pg_footer")
        )
        return self.reject(doc, "header_only" if had_text else "empty")


# --------------------------------------------------------------------------------------------
# Shingles and MinHash
# --------------------------------------------------------------------------------------------

_WORD_RE = re.compile(r"[^\W_]+")  # letters/digits: "_very_" and "VERY" are the same word
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_ROLL = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier for rolling word hashes into shingles


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def words(text: str) -> list[str]:
    """Lower-cased letter/digit runs: punctuation, quotes and emphasis marks are edition noise."""
    return _WORD_RE.findall(text.lower())


def shingle_hashes(text: str, ngram: int = 5) -> np.ndarray:
    """Sorted distinct 64-bit hashes of the word `ngram`-grams of `text` (the shingle set).

    Each distinct word is hashed once (blake2b); n-gram hashes are rolled in numpy. A text
    shorter than `ngram` words is one shingle of all its words; an empty text has none.
    """
    toks = words(text)
    if not toks:
        return np.empty(0, dtype=np.uint64)
    vocab: dict[str, int] = {}
    ids = np.fromiter(
        (vocab.setdefault(w, len(vocab)) for w in toks), dtype=np.int64, count=len(toks)
    )
    word_h = np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
            for w in vocab
        ),
        dtype=np.uint64,
        count=len(vocab),
    )
    wh = word_h[ids]
    n = min(ngram, len(wh))
    count = len(wh) - n + 1
    h = wh[:count].copy()
    with np.errstate(over="ignore"):
        for j in range(1, n):
            h = h * _ROLL + wh[j : j + count]
        h = _fmix64(h + np.uint64(n))
    h.sort()  # sort + mask: several times faster than np.unique on uint64
    return h[np.concatenate(([True], h[1:] != h[:-1]))]


@dataclass(frozen=True)
class MinHashParams:
    """Near-dedup parameters (documented in docs/books.md).

    `threshold` is the verified overlap above which a book is a duplicate (LLaMA: 90%);
    `lsh_threshold` is the Jaccard level the bands are tuned for, lower than `threshold` so
    that pairs whose *containment* is high but Jaccard lower (a shorter edition) are found.
    `bands`/`rows` default to datasketch's optimum for `lsh_threshold` and `num_perm`.
    """

    num_perm: int = 128
    ngram: int = 5
    threshold: float = 0.9
    lsh_threshold: float = 0.7
    seed: int = 1
    bands: int = 0
    rows: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1 or not 0 < self.lsh_threshold <= 1:
            raise ValueError("thresholds must be in (0, 1]")
        if self.ngram < 1 or self.num_perm < 2:
            raise ValueError("ngram must be >= 1 and num_perm >= 2")
        if not (self.bands and self.rows):
            from datasketch.lsh import _optimal_param

            b, r = _optimal_param(self.lsh_threshold, self.num_perm, 0.5, 0.5)
            object.__setattr__(self, "bands", b)
            object.__setattr__(self, "rows", r)
        if self.bands * self.rows > self.num_perm:
            raise ValueError("bands * rows must not exceed num_perm")


class MinHasher:
    """Vectorised MinHash with datasketch's "affine32" permutations (bit-identical signatures)."""

    def __init__(self, num_perm: int = 128, seed: int = 1, chunk: int = 4096) -> None:
        from datasketch import MinHash

        a, b = MinHash(num_perm=num_perm, seed=seed).permutations
        self.num_perm = num_perm
        self.seed = seed
        self.a = np.asarray(a, dtype=np.uint32)
        self.b = np.asarray(b, dtype=np.uint32)
        self.chunk = chunk

    def signature(self, hashes32: np.ndarray) -> np.ndarray:
        """min over shingles of a*fmix32(h)+b mod 2^32, per permutation (uint32[num_perm])."""
        sig = np.full(self.num_perm, np.uint32(0xFFFFFFFF), dtype=np.uint32)
        if len(hashes32) == 0:
            return sig
        hv = _fmix32(np.asarray(hashes32, dtype=np.uint32))
        a, b = self.a[None, :], self.b[None, :]
        for i in range(0, len(hv), self.chunk):
            block = hv[i : i + self.chunk, None] * a + b
            np.minimum(sig, block.min(axis=0), out=sig)
        return sig

    def signature_of_shingles(self, shingles64: np.ndarray) -> np.ndarray:
        return self.signature((shingles64 & np.uint64(0xFFFFFFFF)).astype(np.uint32))


def band_keys(sig: np.ndarray, bands: int, rows: int) -> list[bytes]:
    """One compact shuffle key per band: 2 bytes band index + 8 bytes blake2b of its values."""
    keys = []
    for i in range(bands):
        part = sig[i * rows : (i + 1) * rows].tobytes()
        keys.append(i.to_bytes(2, "big") + hashlib.blake2b(part, digest_size=8).digest())
    return keys


@dataclass
class BookSketch:
    """What dedup needs of a book: its size for the keeper rule, shingles, and signature."""

    id: str
    length: int
    shingles: np.ndarray
    signature: np.ndarray = field(repr=False)

    @cached_property
    def shingle_count(self) -> int:
        return int(len(self.shingles))


def sketch(doc_id: str, text: str, params: MinHashParams, hasher: MinHasher) -> BookSketch:
    sh = shingle_hashes(text, params.ngram)
    return BookSketch(doc_id, len(text), sh, hasher.signature_of_shingles(sh))


@dataclass(frozen=True)
class VerifiedPair:
    """A candidate pair whose shingle sets really overlap: `overlap` is |A∩B| / min(|A|, |B|)."""

    a: str
    b: str
    overlap: float
    jaccard: float


def measure_overlap(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(containment of the smaller set in the larger, Jaccard) of two sorted distinct arrays."""
    if len(x) == 0 or len(y) == 0:
        return 0.0, 0.0
    inter = len(np.intersect1d(x, y, assume_unique=True))
    return inter / min(len(x), len(y)), inter / (len(x) + len(y) - inter)


def verify(x: BookSketch, y: BookSketch, threshold: float) -> VerifiedPair | None:
    overlap, jaccard = measure_overlap(x.shingles, y.shingles)
    if overlap < threshold:
        return None
    a, b = sorted((x.id, y.id))
    return VerifiedPair(a, b, round(overlap, 6), round(jaccard, 6))


def keeper_order(length: int, doc_id: str) -> tuple[int, str]:
    """Sort key of the keeper rule: the longest book, then the smallest id."""
    return (-length, doc_id)


@dataclass(frozen=True)
class Verdict:
    """Why a book is dropped: the cluster's keeper and the measured overlap of its best edge."""

    keeper: str
    overlap: float
    jaccard: float
    partner: str


def cluster_verdicts(pairs: Iterable[VerifiedPair], lengths: dict[str, int]) -> dict[str, Verdict]:
    """Connected components over verified pairs; everyone but each component's keeper gets a verdict.

    Deterministic: components do not depend on pair order, the keeper is the minimum of
    `keeper_order`, and a member's reported overlap is its edge to the keeper when there is one,
    else its strongest edge (ties by partner id).
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    edges: dict[str, list[VerifiedPair]] = {}
    for p in pairs:
        ra, rb = find(p.a), find(p.b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
        edges.setdefault(p.a, []).append(p)
        edges.setdefault(p.b, []).append(p)
    members: dict[str, list[str]] = {}
    for node in sorted(parent):
        members.setdefault(find(node), []).append(node)
    verdicts: dict[str, Verdict] = {}
    for group in members.values():
        keeper = min(group, key=lambda i: keeper_order(lengths.get(i, 0), i))
        for node in group:
            if node == keeper:
                continue
            mine = edges[node]
            direct = [p for p in mine if keeper in (p.a, p.b)]
            best = direct[0] if direct else min(mine, key=lambda p: (-p.overlap, p.a, p.b))
            partner = best.b if best.a == node else best.a
            verdicts[node] = Verdict(keeper, best.overlap, best.jaccard, partner)
    return verdicts


def rejection(doc: Document, verdict: Verdict) -> Rejected:
    meta = {
        "near_duplicate_of": verdict.keeper,
        "overlap": verdict.overlap,
        "jaccard": verdict.jaccard,
    }
    if verdict.partner != verdict.keeper:
        meta["overlap_with"] = verdict.partner
    return Rejected(doc.with_text(doc.text, **meta), f"near_duplicate_of:{verdict.keeper}")


def candidate_pairs(sketches: Sequence[BookSketch], params: MinHashParams) -> set[tuple[str, str]]:
    """Candidates from one in-memory `datasketch.MinHashLSH` (small runs and tests).

    At scale the Beam job groups by `band_keys` instead; both band the same signature with the
    same (bands, rows), so they propose the same pairs.
    """
    from datasketch import LeanMinHash, MinHashLSH

    lsh = MinHashLSH(num_perm=params.num_perm, params=(params.bands, params.rows))
    pairs: set[tuple[str, str]] = set()
    for s in sorted(sketches, key=lambda s: s.id):
        if s.shingle_count == 0:
            continue
        mh = LeanMinHash(seed=params.seed, hashvalues=s.signature, scheme="affine32")
        for other in lsh.query(mh):
            pairs.add(tuple(sorted((s.id, other))))  # type: ignore[arg-type]
        lsh.insert(s.id, mh)
    return pairs


def dedup_books(docs: Sequence[Document], params: MinHashParams | None = None) -> Iterator[Outcome]:
    """Near-dedup a list of books in memory: kept Documents and `near_duplicate_of:<id>` Rejected."""
    params = params or MinHashParams()
    hasher = MinHasher(params.num_perm, params.seed)
    ids = [d.id for d in docs]
    if len(set(ids)) != len(ids):
        raise ValueError("book ids must be unique for dedup")
    sketches = {d.id: sketch(d.id, d.text, params, hasher) for d in docs}
    verified = [
        v
        for a, b in sorted(candidate_pairs(list(sketches.values()), params))
        if (v := verify(sketches[a], sketches[b], params.threshold)) is not None
    ]
    verdicts = cluster_verdicts(verified, {d.id: len(d.text) for d in docs})
    for doc in docs:
        verdict = verdicts.get(doc.id)
        yield doc if verdict is None else rejection(doc, verdict)
