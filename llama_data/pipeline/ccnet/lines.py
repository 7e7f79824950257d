"""The line dedup rule, as cc_net's `deduplicate_two_pass` (the paper's setting, mine.py's dedup):

* every line is hashed (`normalize_for_dedup`, 8 bytes of SHA-1), blank lines included: they
  hash as "", which is the most duplicated line of all;
* a hash is *duplicated* when it occurs in at least two documents of the scope; repeats inside
  one document do not make it so (cc_net's collector sees a page's hashes as one batch);
* a duplicated line is removed from every document that has it (no "first" copy is kept:
  navigation, cookie banners and footers are boilerplate wherever they appear), and inside a
  document only the first occurrence of a hash is kept.

The counting is global (the engine's job: a shuffle); this module holds the engine-free parts on
either side of it: line hashes and their 8-byte keys, the per-bundle `HashCounter` (8 bytes per
distinct key), the packed per-shard records a bundle emits, the reducer's merge and routing
(numpy), and the rewrite of a document once its duplicated keys are known. `dedup_lines_local`
is the whole rule in one process, the reference the tests hold the Beam job to, and the
conformance suite holds it to cc_net's own code.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from llama_data.pipeline.document import Document, Rejected
from llama_data.pipeline.normalize import packed_line_hashes

HASH_DTYPE = np.dtype("<u8")


def doc_hashes(text: str) -> list[bytes]:
    """cc_net's 8-byte hash of each line of `text` (`compute_hashes`)."""
    raw = packed_line_hashes(text)
    return [raw[i : i + 8] for i in range(0, len(raw), 8)]


def distinct_keys(keys: Iterable[bytes | None]) -> list[bytes]:
    """A document's distinct keys, in order: what it adds to the count (once each, however often
    a line repeats inside it)."""
    return [k for k in dict.fromkeys(keys) if k is not None]


def scoped_hash(scope: bytes, h: bytes) -> bytes:
    """The 8-byte shuffle key of a line hash within a dedup scope (a group of files); the
    global scope (b"") keeps the hash itself. Mixing instead of prefixing keeps keys 8 bytes.
    The top bit is always clear (`dedup_key`)."""
    if scope:
        h = hashlib.blake2b(scope + h, digest_size=8).digest()
    return dedup_key(h)


_NO_LINE = b"\xff" * 8  # never a key: keys have their top bit clear (`dedup_key`)


def line_keys(text: str, scope: bytes = b"") -> list[bytes | None]:
    """The shuffle key of each line of `text`."""
    raw = packed_line_keys(text, scope).tobytes()
    return [raw[i : i + 8] for i in range(0, len(raw), 8)]


def packed_line_keys(text: str, scope: bytes = b"") -> np.ndarray:
    """The shuffle key of each line of `text` as one uint64 array (`scoped_hash` of each line's
    hash, the top bit cleared as `dedup_key` does): the keys are computed once a document and
    then counted, shipped and matched as arrays, never as one bytes object per line."""
    raw = packed_line_hashes(text)
    if scope:
        blake = hashlib.blake2b
        raw = b"".join(
            [blake(scope + raw[i : i + 8], digest_size=8).digest() for i in range(0, len(raw), 8)]
        )
    return np.frombuffer(raw, dtype=HASH_DTYPE) & np.uint64(KEY_MASK)


def pack_line_keys(keys: Sequence[bytes | None]) -> bytes:
    """A document's line keys, 8 bytes a line, to travel with it: normalizing and hashing every
    line is most of the line dedup's cost, and is then done once, not again to remove lines."""
    return b"".join(_NO_LINE if k is None else k for k in keys)


def unpack_line_keys(packed: bytes) -> list[bytes | None]:
    keys = [packed[i : i + 8] for i in range(0, len(packed), 8)]
    return [None if k == _NO_LINE else k for k in keys]


def remove_lines(
    doc: Document,
    duplicated: set[bytes],
    scope: bytes = b"",
    keys: Sequence[bytes | None] | None = None,
) -> Document:
    """Drop the lines whose (scoped) key is in `duplicated` and every repeat of a line inside
    the document after its first occurrence (cc_net's `finalize_doc`); record sizes.

    `keys` are the document's `line_keys` when already computed (with the same scope)."""
    lines = doc.text.split("\n")
    if keys is None:
        keys = line_keys(doc.text, scope)
    kept = []
    seen: set[bytes | None] = set()
    for line, k in zip(lines, keys, strict=True):
        if k is not None and k not in duplicated and k not in seen:
            kept.append(line)
        seen.add(k)
    return _with_kept_lines(doc, len(lines), kept)


def _with_kept_lines(doc: Document, nlines: int, kept: list[str]) -> Document:
    """The document with only its `kept` lines, and cc_net's line and length fields."""
    text = "\n".join(kept)
    return doc.with_text(
        text,
        original_nlines=nlines,
        original_length=len(doc.text),
        nlines=len(kept),
        length=len(text),
    )


def remove_packed_lines(doc: Document, duplicated: np.ndarray, keys: np.ndarray) -> Document:
    """`remove_lines` with arrays: `keys` the document's `packed_line_keys`, `duplicated` its
    keys seen in another document. A line is kept when it is the first occurrence of its key in
    the document and that key is not duplicated."""
    lines = doc.text.split("\n")
    if len(lines) != len(keys):
        raise ValueError(f"{len(keys)} line keys for {len(lines)} lines")
    # seeded with the duplicated keys, `seen` rejects them and every repeat after a first
    # occurrence (`add` returns None: a key not seen yet is added and its line kept); a set of
    # ints beats np.unique + np.isin, whose fixed cost is most of it on a page of ~200 lines
    seen = set(duplicated.tolist())
    kept = [
        line for line, k in zip(lines, keys.tolist(), strict=True) if not (k in seen or seen.add(k))
    ]
    return _with_kept_lines(doc, len(lines), kept)


def dedup_lines_local(docs: Sequence[Document]) -> list[Document | Rejected]:
    """The whole rule in one process, for tests and small inputs (the Beam job scales it out).

    Documents left with no line at all are rejected as `too_short` here, so that the language
    and perplexity models never see empty text.
    """
    counts: Counter[bytes] = Counter()
    keys = [line_keys(d.text) for d in docs]
    per_doc = [distinct_keys(k) for k in keys]
    for distinct in per_doc:
        counts.update(distinct)
    out: list[Document | Rejected] = []
    for doc, k, distinct in zip(docs, keys, per_doc, strict=True):
        dup = {h for h in distinct if counts[h] >= 2}
        out.append(finish(remove_lines(doc, dup, keys=k)))
    return out


def finish(doc: Document) -> Document | Rejected:
    return doc if doc.meta.get("nlines") else Rejected(doc, "too_short")


KEY_MASK = (1 << 63) - 1


def dedup_key(h: bytes) -> bytes:
    """The shuffle key of a line hash: its 63 low bits (little-endian, 8 bytes). Dropping one
    bit frees room for the "seen twice" flag in `HashCounter`; 2^63 keys keep collisions as
    unlikely as before (~5e-9 for 10^10 distinct lines)."""
    return h[:7] + bytes([h[7] & 0x7F])


class HashCounter:
    """Which 63-bit line keys occurred once and which at least twice, in 8 bytes per key.

    The state is one sorted uint64 array of `key << 1 | seen_twice` (sorting by that value is
    sorting by key). New keys go to an append buffer (`buffer_limit` entries, or 1/64 of the
    state when larger); compaction sorts the buffer, flags the keys it already holds in place,
    grows the array in place and merges the new ones in, so the peak stays near 8 bytes per
    distinct key plus the buffer's temporaries. This is the per-worker
    pre-aggregation of the line dedup count: memory grows with distinct lines at 8 bytes each,
    not with Python objects (~100 bytes each).
    """

    def __init__(self, cap: int = 2, buffer_limit: int = 1 << 14) -> None:
        if cap != 2:
            raise ValueError("HashCounter only answers 'at least twice?' (cap=2)")
        self.cap = cap
        self.buffer_limit = buffer_limit
        self._buf = bytearray()
        self.state = np.empty(0, dtype=HASH_DTYPE)

    def add(self, key: bytes, n: int = 1) -> None:
        """Count `n` occurrences of an 8-byte key (from `dedup_key`)."""
        self._buf += key if n == 1 else key + key
        # the buffer grows with the state (1/64 of it) so that compactions stay amortized O(1)
        if len(self._buf) >= max(self.buffer_limit, len(self.state) >> 6) * 8:
            self.compact()

    def add_packed(self, keys: bytes) -> None:
        """Count one occurrence of each 8-byte key in `keys` (concatenated)."""
        self._buf += keys
        if len(self._buf) >= max(self.buffer_limit, len(self.state) >> 6) * 8:
            self.compact()

    def compact(self) -> None:
        if not self._buf:
            return
        new = np.sort(np.frombuffer(bytes(self._buf), dtype=HASH_DTYPE) & np.uint64(KEY_MASK))
        self._buf = bytearray()
        uniq, counts = np.unique(new, return_counts=True)
        one = np.uint64(1)
        packed = (uniq << one) | (counts >= 2).astype(HASH_DTYPE)
        if not len(self.state):
            self.state = packed
            return
        pos = np.searchsorted(self.state, uniq << one)
        clipped = np.minimum(pos, len(self.state) - 1)
        found = (pos < len(self.state)) & ((self.state[clipped] >> one) == uniq)
        self.state[pos[found]] |= one  # seen before and now again: at least twice
        fresh = packed[~found]
        if len(fresh):
            # grow in place (realloc; large blocks are remapped, not copied), append the new
            # sorted run, and let the stable sort (timsort) merge the two runs with a buffer
            # the size of the short one: the peak stays near 8 bytes per key
            n = len(self.state)
            self.state.resize(n + len(fresh), refcheck=False)
            self.state[n:] = fresh
            self.state.sort(kind="stable")

    def __len__(self) -> int:
        self.compact()
        return len(self.state)

    def nbytes(self) -> int:
        """Bytes held: the compact state plus the pending buffer."""
        return self.state.nbytes + len(self._buf)

    def items(self) -> Iterable[tuple[bytes, int]]:
        """(8-byte key, 1 or 2) for every key seen."""
        self.compact()
        one = np.uint64(1)
        raw = (self.state >> one).astype(HASH_DTYPE).tobytes()
        twice = (self.state & one).tolist()
        for i, t in enumerate(twice):
            yield raw[8 * i : 8 * i + 8], 1 + t

    def clear(self) -> None:
        self._buf = bytearray()
        self.state = np.empty(0, dtype=HASH_DTYPE)


# --- packed records for the Beam shuffle ---------------------------------------------------------
# The line dedup shuffles arrays, not one element per line: per bundle and shard, the bundle's
# `HashCounter` state (8 bytes per distinct key) and its (key, doc key) pairs (16 bytes each).
# A shard's reducer merges the counts, finds the keys seen at least twice and routes them to
# the documents that hold them, one element per document.


class LineKeyBuffer:
    """One bundle's line keys: counts in a HashCounter, (key, doc key) pairs in two buffers."""

    def __init__(self) -> None:
        self.counter = HashCounter()
        self._keys = bytearray()
        self._docs = bytearray()

    def add_document(self, dkey: bytes, keys: Sequence[bytes]) -> None:
        """A document's distinct line keys (`distinct_keys`), each counted once (joined per
        document: one append per buffer rather than one per line)."""
        self.add_packed_document(dkey, b"".join(keys))

    def add_packed_document(self, dkey: bytes, distinct: bytes) -> None:
        """A document's distinct line keys, packed 8 bytes each (`np.unique` of its
        `packed_line_keys`: the order of a document's keys does not matter to the count)."""
        self._keys += distinct
        self._docs += dkey * (len(distinct) // 8)
        self.counter.add_packed(distinct)

    def pairs(self) -> int:
        return len(self._keys) // 8

    def drain(self, shards: int) -> tuple[list[tuple[int, bytes]], list[tuple[int, bytes]]]:
        """([(shard, packed count state)], [(shard, packed pairs)]) and an empty buffer."""
        self.counter.compact()
        state = self.counter.state
        one = np.uint64(1)
        counts = _split_by_shard(state, (state >> one) % np.uint64(shards), lambda idx: state[idx])
        keys = np.frombuffer(bytes(self._keys), dtype=HASH_DTYPE)
        docs = np.frombuffer(bytes(self._docs), dtype=HASH_DTYPE)
        pairs = _split_by_shard(
            keys,
            keys % np.uint64(shards),
            lambda idx: np.stack([keys[idx], docs[idx]], axis=1).tobytes(),
        )
        self.counter.clear()
        self._keys, self._docs = bytearray(), bytearray()
        return [(s, v.tobytes()) for s, v in counts], pairs


def _split_by_shard(values: np.ndarray, shard: np.ndarray, take):  # noqa: ANN001, ANN202
    if not len(values):
        return []
    order = np.argsort(shard, kind="stable")
    sorted_shards = shard[order]
    bounds = np.flatnonzero(np.diff(sorted_shards)) + 1
    out = []
    for idx in np.split(order, bounds):
        out.append((int(shard[idx[0]]), take(idx)))
    return out


def duplicated_keys(count_states: Iterable[bytes]) -> np.ndarray:
    """Sorted keys seen at least twice, from several bundles' packed `key << 1 | twice` states:
    flagged in one bundle, or present in two."""
    arrays = [np.frombuffer(c, dtype=HASH_DTYPE) for c in count_states]
    if not arrays:
        return np.empty(0, dtype=HASH_DTYPE)
    merged = np.sort(np.concatenate(arrays))
    one = np.uint64(1)
    keys = merged >> one
    twice = (merged & one).astype(bool)
    repeated = np.zeros(len(keys), dtype=bool)
    if len(keys) > 1:
        same = keys[1:] == keys[:-1]
        repeated[1:] |= same
        repeated[:-1] |= same
    return np.unique(keys[twice | repeated])


def route_duplicates(dup: np.ndarray, pairs: bytes) -> list[tuple[bytes, bytes]]:
    """(doc key, packed duplicated keys of that document) for one packed chunk of pairs."""
    if not len(dup) or not pairs:
        return []
    arr = np.frombuffer(pairs, dtype=HASH_DTYPE).reshape(-1, 2)
    hit = arr[np.isin(arr[:, 0], dup, assume_unique=False)]
    if not len(hit):
        return []
    hit = hit[np.argsort(hit[:, 1], kind="stable")]
    bounds = np.flatnonzero(np.diff(hit[:, 1])) + 1
    return [
        (group[0, 1].tobytes(), group[:, 0].copy().tobytes()) for group in np.split(hit, bounds)
    ]


def unpack_keys(packed: bytes) -> set[bytes]:
    return {packed[i : i + 8] for i in range(0, len(packed), 8)}
