"""The line dedup rule: a line whose normalized hash occurs at least twice in the scope is removed
from every document that has it (cc_net keeps no "first" copy: navigation, cookie banners and
footers are boilerplate wherever they appear).

The counting is global (the engine's job: a shuffle of 8-byte hashes); this module holds what
happens on either side of it: the compact per-document hash list that goes into the shuffle and
the rewrite of a document once its duplicated hashes are known. Lines that normalize to nothing
(blank, punctuation only) are dropped too: their common hash "" is the most duplicated of all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from llama_data.pipeline.document import Document, Rejected
from llama_data.pipeline.normalize import hash_bytes, normalize_line

HASH_DTYPE = np.dtype("<u8")


def doc_hashes(text: str) -> list[bytes | None]:
    """The 8-byte hash of each line of `text` (None for lines that normalize to nothing)."""
    out: list[bytes | None] = []
    for line in text.split("\n"):
        norm = normalize_line(line)
        out.append(hash_bytes(norm) if norm else None)
    return out


def hash_counts(hashes: Iterable[bytes | None]) -> dict[bytes, int]:
    """Occurrences of each hash within one document (what a document adds to the global count)."""
    return dict(Counter(h for h in hashes if h is not None))


def pack_hashes(hashes: Iterable[bytes]) -> bytes:
    """Concatenated 8-byte hashes: one compact value per document instead of one object per line."""
    return b"".join(hashes)


def unpack_hashes(packed: bytes) -> np.ndarray:
    return np.frombuffer(packed, dtype=HASH_DTYPE)


def remove_lines(doc: Document, duplicated: set[bytes]) -> Document:
    """Drop the lines whose hash is in `duplicated` (and empty lines); record before/after sizes."""
    lines = doc.text.split("\n")
    kept = [
        line
        for line, h in zip(lines, doc_hashes(doc.text), strict=True)
        if h is not None and h not in duplicated
    ]
    text = "\n".join(kept)
    return doc.with_text(
        text,
        original_nlines=len(lines),
        original_length=len(doc.text),
        nlines=len(kept),
        length=len(text),
    )


def dedup_lines_local(docs: Sequence[Document]) -> list[Document | Rejected]:
    """The whole rule in one process, for tests and small inputs (the Beam job scales it out).

    Documents left with no line at all are rejected as `too_short` here, so that the language
    and perplexity models never see empty text.
    """
    counts: Counter[bytes] = Counter()
    per_doc = [hash_counts(doc_hashes(d.text)) for d in docs]
    for c in per_doc:
        counts.update(c)
    out: list[Document | Rejected] = []
    for doc, c in zip(docs, per_doc, strict=True):
        dup = {h for h in c if counts[h] >= 2}
        out.append(finish(remove_lines(doc, dup)))
    return out


def finish(doc: Document) -> Document | Rejected:
    return doc if doc.meta.get("nlines") else Rejected(doc, "too_short")
