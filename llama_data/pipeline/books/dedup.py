"""Books: book-level near-dedup (MinHash, LSH Ensemble candidates, verified overlaps, verdicts).

LLaMA (§2.1) takes Gutenberg and Books3 and "performs deduplication at the book level, removing
books with more than 90% content overlap". Overlap is containment: a book inside a compilation
or a "complete works" is a duplicate even though the two sets' Jaccard is low. Candidates come
from an LSH Ensemble (Zhu et al., VLDB 2016, as in `datasketch.MinHashLSHEnsemble`): books are
partitioned by shingle-set size and each (query size, partition) pair gets its own LSH bands,
tuned with datasketch's containment error model. Every candidate pair is *verified* on the
shingle sets themselves, so a book is never dropped because of a hash collision or an unlucky
band.

The sketching is vectorised with numpy: words are hashed once per distinct word, shingle hashes
are rolled from word hashes in numpy, and the permutations are applied to a (shingles x perms)
matrix in chunks. The permutation parameters and the "affine32" scheme are datasketch's own, so a
signature here equals `datasketch.MinHash(num_perm, seed, hashfunc=<identity>)` fed the same
32-bit shingle hashes, and can be indexed by `datasketch.MinHashLSH` unchanged.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from llama_data.pipeline.document import Document, Outcome, Rejected

# --------------------------------------------------------------------------------------------
# Shingles and MinHash
# --------------------------------------------------------------------------------------------

_WORD_RE = re.compile(r"[^\W_]+")  # letters/digits: "_very_" and "VERY" are the same word
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

    `threshold` is the verified overlap |A∩B| / min(|A|, |B|) above which a book is a duplicate
    (LLaMA: 90%). `lsh_threshold` is the *containment* the LSH Ensemble's bands are tuned for,
    lower than `threshold` so that pairs at 0.9 are proposed with high probability even where a
    large size ratio flattens the LSH curve. `max_size_ratio` bounds how much larger a book may
    be than a book it contains and still be searched (LSH keys per book stay bounded).
    """

    num_perm: int = 128
    ngram: int = 5
    threshold: float = 0.9
    lsh_threshold: float = 0.6
    seed: int = 1
    max_size_ratio: float = 16.0

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1 or not 0 < self.lsh_threshold <= 1:
            raise ValueError("thresholds must be in (0, 1]")
        if self.ngram < 1 or self.num_perm < ENSEMBLE_MIN_ROWS:
            raise ValueError(f"ngram must be >= 1 and num_perm >= {ENSEMBLE_MIN_ROWS}")
        if not 1 <= self.max_size_ratio <= 1 << 20:
            raise ValueError("max_size_ratio must be in [1, 2**20]")


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


def band_keys(sig: np.ndarray, bands: int, rows: int, prefix: bytes = b"") -> list[bytes]:
    """One compact shuffle key per band: prefix + 2 bytes band index + 8 bytes blake2b of its values.

    Band i is `sig[i*rows:(i+1)*rows]`, as in `datasketch.MinHashLSH(params=(bands, rows))`.
    """
    keys = []
    for i in range(bands):
        part = sig[i * rows : (i + 1) * rows].tobytes()
        keys.append(prefix + i.to_bytes(2, "big") + hashlib.blake2b(part, digest_size=8).digest())
    return keys


# --------------------------------------------------------------------------------------------
# LSH Ensemble for containment (Zhu, Nargesian, Pu, Miller: "LSH Ensemble: Internet-Scale
# Domain Search", VLDB 2016; datasketch.MinHashLSHEnsemble)
# --------------------------------------------------------------------------------------------
#
# A book Q of q shingles inside a book X of x shingles has containment |Q∩X|/q = c but Jaccard
# c / (1 + x/q - c): Frankenstein (75k shingles) in a 293k-shingle compilation has c = 1.0 and
# Jaccard 0.26. LSH Ensemble searches by containment: the indexed books are partitioned by size;
# for a query of size q and a partition whose largest size is u, the Jaccard a contained pair can
# have is at least c / (1 + u/q - c), and the partition is searched with the LSH bands (b bands
# of r rows) that minimise the false positive + false negative probability for that ratio u/q
# (datasketch's `lshensemble._false_positive_probability` / `_false_negative_probability`).
#
# datasketch's index computes data-dependent partitions in one process (and an O(n^2) optimiser
# over distinct sizes); here the partitions are fixed so each book's keys depend on that book
# alone, which is what a shuffle needs: partition p holds sizes [2^p, 2^(p+1) - 1]. A book of
# size q is *indexed* in its own partition (the first bands of every row count the table uses)
# and *queries* every partition from its own up to the one starting at `max_size_ratio * q`: the
# smaller book of a pair always finds the larger one, so each pair is searched once.

# One-row bands match on a single min-hash: ~bands x Jaccard of all unrelated pairs would be
# candidates. Eight rows is datasketch's default `m`.
ENSEMBLE_MIN_ROWS = 2
ENSEMBLE_MAX_ROWS = 8
ENSEMBLE_WEIGHTS = (0.5, 0.5)  # datasketch's default (false positive, false negative) weights
_XQ_STEPS_PER_OCTAVE = 4  # grid of size ratios u/q the band parameters are tuned at: 2^(k/4)


def size_partition(size: int) -> int:
    """The LSH Ensemble partition of a shingle set of `size` >= 1: sizes [2^p, 2^(p+1) - 1]."""
    return int(size).bit_length() - 1


def partition_upper(p: int) -> int:
    return (1 << (p + 1)) - 1


@lru_cache(maxsize=64)
def ensemble_table(
    threshold: float, num_perm: int, max_size_ratio: float
) -> tuple[tuple[float, int, int], ...]:
    """(u/q, bands, rows) on the grid u/q = 2^(k/4), k = 0, 1, ... up to 2 * max_size_ratio.

    Each entry minimises datasketch's weighted false positive + false negative probability for
    containment `threshold` at that size ratio (the objective of `lshensemble._optimal_param`),
    with 2 to 8 rows per band and bands * rows <= num_perm.
    """
    from datasketch.lshensemble import (
        _false_negative_probability,
        _false_positive_probability,
    )

    fp_w, fn_w = ENSEMBLE_WEIGHTS
    max_rows = min(ENSEMBLE_MAX_ROWS, num_perm)
    top = math.ceil(_XQ_STEPS_PER_OCTAVE * math.log2(2 * max_size_ratio))
    table = []
    for k in range(top + 1):
        xq = 2.0 ** (k / _XQ_STEPS_PER_OCTAVE)
        best = (math.inf, 0, 0)
        for r in range(ENSEMBLE_MIN_ROWS, max_rows + 1):
            for b in range(1, num_perm // r + 1):
                err = fp_w * _false_positive_probability(
                    threshold, b, r, xq
                ) + fn_w * _false_negative_probability(threshold, b, r, xq)
                if err < best[0]:
                    best = (err, b, r)
        table.append((xq, best[1], best[2]))
    return tuple(table)


def _table(params: MinHashParams) -> tuple[tuple[float, int, int], ...]:
    return ensemble_table(params.lsh_threshold, params.num_perm, params.max_size_ratio)


def ensemble_band_params(params: MinHashParams, size_ratio: float) -> tuple[int, int]:
    """(bands, rows) for searching sets up to `size_ratio` times the query's size.

    The first grid point at or above the ratio (conservative: tuned for a lower Jaccard).
    """
    table = _table(params)
    i = bisect.bisect_left([t[0] for t in table], size_ratio - 1e-9)
    _, b, r = table[min(i, len(table) - 1)]
    return b, r


@lru_cache(maxsize=64)
def _index_bands(
    threshold: float, num_perm: int, max_size_ratio: float
) -> tuple[tuple[int, int], ...]:
    most: dict[int, int] = {}
    for _, b, r in ensemble_table(threshold, num_perm, max_size_ratio):
        most[r] = max(most.get(r, 0), b)
    return tuple(sorted(most.items()))


def ensemble_index_bands(params: MinHashParams) -> tuple[tuple[int, int], ...]:
    """(rows, bands) an indexed book emits: for each row count in the table, its most bands."""
    return _index_bands(params.lsh_threshold, params.num_perm, params.max_size_ratio)


def ensemble_queries(size: int, params: MinHashParams) -> list[tuple[int, int, int]]:
    """(partition, bands, rows) a book of `size` shingles searches: its own partition and every
    larger one that starts at or below `max_size_ratio * size` (at most log2(ratio) + 1)."""
    out = []
    p = size_partition(size)
    while (1 << p) <= params.max_size_ratio * size:
        out.append((p, *ensemble_band_params(params, partition_upper(p) / size)))
        p += 1
    return out


@dataclass(frozen=True)
class EnsembleKeys:
    """A book's LSH Ensemble shuffle keys: `index` (its own partition) and `query` keys.

    Key = partition (1 byte) + rows (1 byte) + band index (2 bytes) + blake2b-8 of the band. A
    query key equals an index key exactly when the two books agree on that band in that partition.
    """

    index: list[bytes]
    query: list[bytes]


def ensemble_keys(size: int, sig: np.ndarray, params: MinHashParams) -> EnsembleKeys:
    if size <= 0:
        return EnsembleKeys([], [])
    bands_of_rows = dict(ensemble_index_bands(params))
    own = size_partition(size)
    by_rows = {r: band_keys(sig, b, r) for r, b in bands_of_rows.items()}
    index = [bytes((own, r)) + k for r, keys in by_rows.items() for k in keys]
    query = [
        bytes((p, r)) + k for p, b, r in ensemble_queries(size, params) for k in by_rows[r][:b]
    ]
    return EnsembleKeys(index, query)


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
    """A candidate pair whose shingle sets really overlap: `overlap` is |A∩B| / min(|A|, |B|).

    `a_in_b` / `b_in_a`: whether |A∩B| / |A| (resp. / |B|) reaches the threshold, i.e. which
    book is (at least) 90% inside the other: both for two editions, only the smaller for a book
    inside a compilation.
    """

    a: str
    b: str
    overlap: float
    jaccard: float
    a_in_b: bool = True
    b_in_a: bool = True


def _intersection(x: np.ndarray, y: np.ndarray) -> int:
    return len(np.intersect1d(x, y, assume_unique=True))


def measure_overlap(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(containment of the smaller set in the larger, Jaccard) of two sorted distinct arrays."""
    if len(x) == 0 or len(y) == 0:
        return 0.0, 0.0
    inter = _intersection(x, y)
    return inter / min(len(x), len(y)), inter / (len(x) + len(y) - inter)


def verify(x: BookSketch, y: BookSketch, threshold: float) -> VerifiedPair | None:
    nx, ny = len(x.shingles), len(y.shingles)
    if nx == 0 or ny == 0:
        return None
    inter = _intersection(x.shingles, y.shingles)
    overlap, jaccard = inter / min(nx, ny), inter / (nx + ny - inter)
    if overlap < threshold:
        return None
    x_in_y, y_in_x = inter / nx >= threshold, inter / ny >= threshold
    if x.id > y.id:
        x, y, x_in_y, y_in_x = y, x, y_in_x, x_in_y
    return VerifiedPair(x.id, y.id, round(overlap, 6), round(jaccard, 6), x_in_y, y_in_x)


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
    """Which books go, and to which kept book: the LLaMA rule with containment's direction.

    A verified pair is an edge "X is inside Y" (`a_in_b`/`b_in_a`; both ways for editions).
    Books are decided one at a time, longest first (`keeper_order`), except that a book is never
    decided before a book it is one-way inside (that one is larger, so this order has no cycles).
    A book is a duplicate when it has an edge into a decided book that is kept, or that was itself
    dropped as an edition (both ways) of another: its keeper is that book's keeper, so chains of
    editions go to one keeper as connected components did. A book dropped because it is one-way
    inside a larger book passes nothing on: what is inside it may be in the part of it that is
    not in the larger one (a book is only dropped for being inside a book that remains or an
    edition of one). Books only sharing a third, smaller book are never merged: two anthologies
    holding the same story are both kept, the story goes.

    Deterministic: independent of pair order; among several partners a book prefers a kept one,
    then the highest overlap, then `keeper_order`. The verdict's overlap is that edge's.
    """
    inside: dict[str, list[tuple[str, VerifiedPair]]] = {}
    waits_for: dict[str, int] = {}  # one-way "inside" edges whose larger book is undecided
    holds: dict[str, list[str]] = {}  # larger book -> books one-way inside it
    nodes: set[str] = set()
    for p in pairs:
        nodes.update((p.a, p.b))
        for x, y, x_in, y_in in ((p.a, p.b, p.a_in_b, p.b_in_a), (p.b, p.a, p.b_in_a, p.a_in_b)):
            if x_in:
                inside.setdefault(x, []).append((y, p))
                if not y_in:
                    waits_for[x] = waits_for.get(x, 0) + 1
                    holds.setdefault(y, []).append(x)

    def order(n: str) -> tuple[int, str]:
        return keeper_order(lengths.get(n, 0), n)

    ready = [(order(n), n) for n in nodes if not waits_for.get(n)]
    heapq.heapify(ready)
    decided: set[str] = set()
    as_edition: set[str] = set()  # dropped through a both-ways edge: may stand for its keeper
    verdicts: dict[str, Verdict] = {}
    while ready:
        _, node = heapq.heappop(ready)
        decided.add(node)
        options = [
            (y, p)
            for y, p in inside.get(node, ())
            if y in decided and (y not in verdicts or y in as_edition)
        ]
        if options:
            y, best = min(options, key=lambda o: (o[0] in verdicts, -o[1].overlap, order(o[0])))
            keeper = verdicts[y].keeper if y in verdicts else y
            verdicts[node] = Verdict(keeper, best.overlap, best.jaccard, y)
            if best.a_in_b and best.b_in_a:
                as_edition.add(node)
        for x in holds.get(node, ()):
            waits_for[x] -= 1
            if not waits_for[x]:
                heapq.heappush(ready, (order(x), x))
    if len(decided) != len(nodes):  # impossible for consistent pairs: one-way edges grow in size
        raise ValueError("inconsistent containment edges (a cycle of one-way pairs)")
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
    """Candidates from in-memory `datasketch.MinHashLSH` indexes (small runs and tests).

    One index per (partition, bands, rows) that some query uses, holding that partition's books;
    each book queries the partitions of `ensemble_queries`. At scale the Beam job groups by
    `ensemble_keys` instead: an index book emits the first bands of each row count, a query the
    first `bands` of `rows`, which is the same band comparison, so both propose the same pairs.
    """
    from datasketch import LeanMinHash, MinHashLSH

    books = sorted((s for s in sketches if s.shingle_count > 0), key=lambda s: s.id)
    minhashes = {
        s.id: LeanMinHash(seed=params.seed, hashvalues=s.signature, scheme="affine32")
        for s in books
    }
    by_partition: dict[int, list[str]] = {}
    for s in books:
        by_partition.setdefault(size_partition(s.shingle_count), []).append(s.id)
    indexes: dict[tuple[int, int, int], MinHashLSH] = {}
    pairs: set[tuple[str, str]] = set()
    for s in books:
        for p, b, r in ensemble_queries(s.shingle_count, params):
            if p not in by_partition:
                continue
            if (p, b, r) not in indexes:
                lsh = MinHashLSH(num_perm=params.num_perm, params=(b, r))
                for member in by_partition[p]:
                    lsh.insert(member, minhashes[member])
                indexes[p, b, r] = lsh
            for other in indexes[p, b, r].query(minhashes[s.id]):
                if other != s.id:
                    pairs.add(tuple(sorted((s.id, other))))  # type: ignore[arg-type]
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
