"""C4's two global deduplications, as keys and per-group functions the Beam stage shuffles by:
one page per normalized URL (the newest), and every line kept on one page only (or, with
`text_dedup = "spans"`, the paper's three-sentence spans). `dedup_lines` and `dedup_spans` are
the in-memory forms for tests and small inputs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from llama_data.pipeline.c4.rules import MIN_SENTENCES, count_sentences, split_sentences
from llama_data.pipeline.document import Document, Outcome, Rejected

SPAN_SENTENCES = 3
TEXT_DEDUP_MODES = ("lines", "spans", "none")


# --- URL dedup ----------------------------------------------------------------------------------
_SCHEME_RE = re.compile(r"https?://(www\.)?")
_TRACKING_RE = re.compile(r"\?(utm_|ref|feed).*")


def normalize_url(url: str) -> str:
    """The reference's `normalize_url`: scheme and `www.` removed (everywhere in the URL, as its
    unanchored pattern does), a query starting with utm_/ref/feed cut, trailing slashes removed."""
    return _TRACKING_RE.sub("", _SCHEME_RE.sub("", url)).rstrip("/")


def url_key(doc: Document) -> bytes:
    """The URL-dedup key: 16-byte BLAKE2b of the normalized URL. A page without a URL keys on its
    id instead (the reference drops such pages when reading; here they are never merged)."""
    url = str(doc.meta.get("url") or "")
    value = "url:" + normalize_url(url) if url else "id:" + doc.id
    return hashlib.blake2b(value.encode("utf-8"), digest_size=16).digest()


_NEWEST_FIRST = str.maketrans({chr(c): chr(0x10FFFF - c) for c in range(0x80)})


def newest_first(doc: Document) -> tuple[str, str, str]:
    """Order among pages of one URL: the newest `date` first (`select_newest_page`), then the
    smallest (id, source), where the reference keeps whichever of equal dates came first.

    Dates are ISO 8601 text (WARC-Date); each ASCII character is mapped to a descending one and a
    maximal character closes the string, so ascending order of the result is descending order of
    the dates."""
    date = str(doc.meta.get("date") or "")
    return (date.translate(_NEWEST_FIRST) + "\U0010ffff", doc.id, doc.source)


# --- line dedup ---------------------------------------------------------------------------------
def line_key(line: str) -> bytes:
    """The key of a line in the line dedup: MD5 of the stripped, lowercased line (the
    reference's `_hash_text(line.strip().lower())`, as bytes rather than hex)."""
    return hashlib.md5(line.strip().lower().encode("utf-8")).digest()


def url_rank(url: str) -> str:
    """Which page keeps a line seen on several: the one whose URL has the smallest MD5 hex
    (the reference's `Top.PerKey(1, key=_hash_text, reverse=True)` over URLs: hashed "to avoid
    biasing by domain")."""
    return hashlib.md5(url.encode("utf-8")).hexdigest()


LineOccurrence = tuple[str, str]  # (url rank, document id)


def line_keys_of(text: str) -> list[bytes]:
    """`line_key` of every line of `text`, in order, a page at a time: the lines are stripped,
    joined again and lowercased and encoded once (lowercasing never crosses a newline, and a
    UTF-8 newline byte is never part of another character), then each is hashed; no Python call
    per line."""
    data = "\n".join([line.strip() for line in text.split("\n")]).lower().encode("utf-8")
    md5 = hashlib.md5
    return [md5(line).digest() for line in data.split(b"\n")]


def page_line_keys(text: str) -> list[bytes]:
    """The distinct line keys of a page, in order."""
    return list(dict.fromkeys(line_keys_of(text)))


def line_occurrences(doc: Document) -> Iterator[tuple[bytes, LineOccurrence]]:
    """(line key, (url rank, id)) for each distinct line of a page: what the dedup shuffles."""
    occ = (url_rank(str(doc.meta.get("url") or "")), doc.id)
    for key in page_line_keys(doc.text):
        yield key, occ


def iter_losers(occurrences: Iterable[Any]) -> Iterator[Any]:
    """All occurrences of one key but the winner, the smallest.

    Smallest, not first seen: the result must not depend on arrival order or worker count. Two
    passes over a re-iterable (Beam's grouped values are), so a key repeated on a million pages
    costs constant memory, not a sorted list.
    """
    winner = None
    n = 0
    for raw in occurrences:
        occ = tuple(raw)
        n += 1
        if winner is None or occ < winner:
            winner = occ
    if n < 2:
        return
    skipped = False
    for raw in occurrences:
        occ = tuple(raw)
        if occ == winner and not skipped:
            skipped = True
            continue
        yield occ


@dataclass(frozen=True)
class LineCut:
    """A page after the line dedup: its text and how many lines went, and why."""

    text: str
    global_duplicates: int
    local_duplicates: int


def remove_lines(text: str, losing: Iterable[bytes]) -> LineCut:
    """Drop the lines whose key another page keeps, and repeats of a line inside the page
    (`_remove_lines_from_text`)."""
    lose = set(losing)
    kept: list[str] = []
    seen: set[bytes] = set()
    n_global = n_local = 0
    for line, key in zip(text.split("\n"), line_keys_of(text), strict=True):
        if key in lose:
            n_global += 1
        elif key in seen:
            n_local += 1
        else:
            kept.append(line)
            seen.add(key)
    return LineCut("\n".join(kept), n_global, n_local)


def apply_line_cuts(
    doc: Document, losing: Iterable[bytes], min_sentences: int = MIN_SENTENCES
) -> tuple[Outcome, LineCut]:
    """A page after the line dedup; rejected as `dedup_empty` when nothing is left, or
    `dedup_too_few_sentences` when fewer than `min_sentences` sentences are."""
    cut = remove_lines(doc.text, losing)
    removed = cut.global_duplicates + cut.local_duplicates
    out = (
        doc
        if not removed
        else doc.with_text(
            cut.text, duplicate_lines=removed, nlines=cut.text.count("\n") + 1 if cut.text else 0
        )
    )
    if not cut.text:
        return Rejected(out, "dedup_empty"), cut
    if min_sentences and removed and count_sentences(cut.text) < min_sentences:
        return Rejected(out, "dedup_too_few_sentences"), cut
    return out, cut


def dedup_lines(docs: Sequence[Document]) -> dict[str, set[bytes]]:
    """In-memory form of the line dedup (the Beam stage does the same with two shuffles).

    Returns, per document id, the keys of the lines it loses to another page."""
    by_key: dict[bytes, list[LineOccurrence]] = {}
    for doc in docs:
        for key, occ in line_occurrences(doc):
            by_key.setdefault(key, []).append(occ)
    cuts: dict[str, set[bytes]] = {}
    for key, occs in by_key.items():
        for _, doc_id in iter_losers(occs):
            cuts.setdefault(doc_id, set()).add(key)
    return cuts


# --- three-sentence spans (the paper's wording; `text_dedup = "spans"`) ----------------------
def _sentences_with_lines(text: str) -> list[tuple[int, str]]:
    return [(i, s) for i, line in enumerate(text.split("\n")) for s in split_sentences(line)]


def span_key(sentences: Sequence[str]) -> int:
    """8-byte key of a span: sha1 of its sentences with whitespace collapsed (exact otherwise)."""
    joined = "\x1f".join(" ".join(s.split()) for s in sentences)
    return int.from_bytes(hashlib.sha1(joined.encode("utf-8")).digest()[:8], "big")


def span_keys(text: str, span: int = SPAN_SENTENCES) -> list[int]:
    """Key of every run of `span` consecutive sentences (position i covers sentences i..i+span-1)."""
    sents = [s for _, s in _sentences_with_lines(text)]
    return [span_key(sents[i : i + span]) for i in range(len(sents) - span + 1)]


def remove_spans(text: str, positions: Iterable[int], span: int = SPAN_SENTENCES) -> str:
    """Cut the sentences of the spans starting at `positions`; emptied lines disappear."""
    drop: set[int] = set()
    for p in positions:
        drop.update(range(p, p + span))
    lines: dict[int, list[str]] = {}
    order: list[int] = []
    for idx, (line_no, sentence) in enumerate(_sentences_with_lines(text)):
        if line_no not in lines:
            lines[line_no] = []
            order.append(line_no)
        if idx not in drop:
            lines[line_no].append(sentence)
    return "\n".join(" ".join(lines[n]) for n in order if lines[n])


SpanOccurrence = tuple[str, int]  # (document id, span position)


def iter_span_losers(occurrences: Iterable[SpanOccurrence]) -> Iterator[SpanOccurrence]:
    """All occurrences of one span key but the winner, the smallest (doc id, position)."""
    return iter_losers(occurrences)


def span_losers(occurrences: Iterable[SpanOccurrence]) -> list[SpanOccurrence]:
    """`iter_span_losers` sorted, for tests and small inputs."""
    return sorted(iter_span_losers(list(occurrences)))


def dedup_spans(docs: Sequence[Document], span: int = SPAN_SENTENCES) -> dict[str, list[int]]:
    """In-memory form of the span dedup (the Beam job does the same with a shuffle by key).

    Returns, per document id, the span positions to cut.
    """
    by_key: dict[int, list[SpanOccurrence]] = {}
    for doc in docs:
        for pos, key in enumerate(span_keys(doc.text, span)):
            by_key.setdefault(key, []).append((doc.id, pos))
    cuts: dict[str, list[int]] = {}
    for occ in by_key.values():
        if len(occ) > 1:
            for doc_id, pos in span_losers(occ):
                cuts.setdefault(doc_id, []).append(pos)
    return {k: sorted(v) for k, v in cuts.items()}


def apply_span_cuts(
    doc: Document, positions: Sequence[int], min_sentences: int = MIN_SENTENCES
) -> Outcome:
    """Cut a document's duplicated spans; reject it when fewer than `min_sentences` remain."""
    if not positions:
        return doc
    text = remove_spans(doc.text, positions)
    cut = doc.with_text(
        text, duplicate_spans=len(positions), nlines=text.count("\n") + 1 if text else 0
    )
    if count_sentences(text) < min_sentences:
        return Rejected(cut, "dedup_too_few_sentences")
    return cut
