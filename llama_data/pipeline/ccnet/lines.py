"""The line dedup rule: a line whose normalized hash occurs at least twice in the scope is removed
from every document that has it (cc_net keeps no "first" copy: navigation, cookie banners and
footers are boilerplate wherever they appear).

The counting is global (the engine's job: a shuffle of 8-byte hashes); this module holds what
happens on either side of it: the compact per-document hash list that goes into the shuffle and
the rewrite of a document once its duplicated hashes are known. Lines that normalize to nothing
(blank, punctuation only) are dropped too: their common hash "" is the most duplicated of all.
"""

from __future__ import annotations

import hashlib
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


def scoped_hash(scope: bytes, h: bytes) -> bytes:
    """The 8-byte key of a line hash within a dedup scope (a group of files); the global scope
    (b"") keeps the hash itself. Mixing instead of prefixing keeps every key 8 bytes."""
    if not scope:
        return h
    return hashlib.blake2b(scope + h, digest_size=8).digest()


def remove_lines(doc: Document, duplicated: set[bytes], scope: bytes = b"") -> Document:
    """Drop the lines whose (scoped) hash is in `duplicated`, and empty lines; record sizes."""
    lines = doc.text.split("\n")
    kept = [
        line
        for line, h in zip(lines, doc_hashes(doc.text), strict=True)
        if h is not None and scoped_hash(scope, h) not in duplicated
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


class HashCounter:
    """Occurrences of 8-byte hashes, capped at `cap`, in 9 bytes per distinct hash.

    New hashes go to an append buffer (8 bytes each, bounded by `buffer_limit`); when it fills
    up it is sorted and merged into the compact state: a sorted uint64 array of distinct hashes
    and a uint8 array of their capped counts. This is the per-worker pre-aggregation of the line
    dedup count, so a worker's memory grows with distinct lines at 9 bytes each, not with Python
    objects (~100 bytes each) per line.
    """

    def __init__(self, cap: int = 2, buffer_limit: int = 1 << 20) -> None:
        self.cap = cap
        self.buffer_limit = buffer_limit
        self._buf = bytearray()
        self.keys = np.empty(0, dtype=HASH_DTYPE)
        self.counts = np.empty(0, dtype=np.uint8)

    def add(self, h: bytes, n: int = 1) -> None:
        for _ in range(min(n, self.cap)):
            self._buf += h
        if len(self._buf) >= self.buffer_limit * 8:
            self.compact()

    def compact(self) -> None:
        if not self._buf:
            return
        new = np.frombuffer(bytes(self._buf), dtype=HASH_DTYPE)
        self._buf = bytearray()
        keys = np.concatenate([self.keys, new])
        counts = np.concatenate([self.counts, np.ones(len(new), dtype=np.uint8)])
        order = np.argsort(keys, kind="stable")
        keys, counts = keys[order], counts[order]
        uniq, start = np.unique(keys, return_index=True)
        summed = np.add.reduceat(counts.astype(np.uint32), start) if len(keys) else counts
        self.keys = uniq
        self.counts = np.minimum(summed, self.cap).astype(np.uint8)

    def __len__(self) -> int:
        self.compact()
        return len(self.keys)

    def nbytes(self) -> int:
        """Bytes held: the compact state plus the pending buffer."""
        return self.keys.nbytes + self.counts.nbytes + len(self._buf)

    def items(self) -> Iterable[tuple[bytes, int]]:
        self.compact()
        raw = self.keys.tobytes()
        for i, c in enumerate(self.counts.tolist()):
            yield raw[8 * i : 8 * i + 8], c

    def clear(self) -> None:
        self._buf = bytearray()
        self.keys = np.empty(0, dtype=HASH_DTYPE)
        self.counts = np.empty(0, dtype=np.uint8)
