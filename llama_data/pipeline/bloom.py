"""A Bloom filter over 64-bit keys (numpy bits): which documents *may* share their dedup key.

Global exact dedup only has to shuffle the documents whose key occurs more than once. The keys
alone are shuffled first (8 bytes each) to find the duplicated ones; a Bloom filter of those is
then small enough to give every worker (about 10 bits a duplicated key at a 1% false-positive
rate, against 8 bytes for an exact set), and routes each document: a miss is certainly unique and
skips the document shuffle, a hit goes through it and is decided exactly there. A false positive
therefore costs a shuffled document, never a wrong verdict.

Keys are the leading 8 bytes of a cryptographic digest, already uniform, so the k bit positions
come from double hashing (Kirsch and Mitzenmacher): h1 + i*h2, with h2 a mixed copy of the key.
"""

from __future__ import annotations

import math

import numpy as np

_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64's finalizer: a second hash of the key, independent enough of its low bits."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _mix_array(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


class BloomFilter:
    """`n_bits` bits and `n_hashes` positions a key; mergeable by OR when shaped alike."""

    def __init__(self, n_bits: int, n_hashes: int, bits: np.ndarray | None = None) -> None:
        if n_bits < 64 or n_hashes < 1:
            raise ValueError("a Bloom filter needs at least 64 bits and one hash")
        self.n_bits = int(n_bits)
        self.n_hashes = int(n_hashes)
        words = (self.n_bits + 63) // 64
        self.bits = np.zeros(words, dtype=np.uint64) if bits is None else bits
        if self.bits.shape != (words,) or self.bits.dtype != np.uint64:
            raise ValueError("bits do not match the filter's size")

    @classmethod
    def for_capacity(cls, n_keys: int, error_rate: float = 0.01) -> BloomFilter:
        """The smallest filter that holds `n_keys` at `error_rate` false positives."""
        if not 0 < error_rate < 1:
            raise ValueError("error_rate must be in (0, 1)")
        n = max(int(n_keys), 1)
        n_bits = max(64, math.ceil(-n * math.log(error_rate) / math.log(2) ** 2))
        n_hashes = max(1, round(n_bits / n * math.log(2)))
        return cls(n_bits, n_hashes)

    @property
    def nbytes(self) -> int:
        return int(self.bits.nbytes)

    def _positions(self, keys: np.ndarray) -> np.ndarray:
        keys = np.asarray(keys, dtype=np.uint64)
        h2 = _mix_array(keys) | np.uint64(1)
        i = np.arange(self.n_hashes, dtype=np.uint64)
        with np.errstate(over="ignore"):
            pos = keys[:, None] + i[None, :] * h2[:, None]
        return pos % np.uint64(self.n_bits)

    def add(self, keys: np.ndarray) -> None:
        pos = self._positions(keys).ravel()
        np.bitwise_or.at(self.bits, pos >> np.uint64(6), np.uint64(1) << (pos & np.uint64(63)))

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """A boolean per key: False means certainly absent."""
        pos = self._positions(keys)
        words = self.bits[pos >> np.uint64(6)]
        return ((words >> (pos & np.uint64(63))) & np.uint64(1)).astype(bool).all(axis=1)

    def __contains__(self, key: int) -> bool:
        """One key in pure Python: no array set-up for the per-document test."""
        h2 = _mix(key) | 1
        bits, n = self.bits, self.n_bits
        for i in range(self.n_hashes):
            p = (key + i * h2) & _MASK
            p %= n
            if not (int(bits[p >> 6]) >> (p & 63)) & 1:
                return False
        return True

    def union(self, other: BloomFilter) -> BloomFilter:
        if (self.n_bits, self.n_hashes) != (other.n_bits, other.n_hashes):
            raise ValueError("only filters of the same shape can be merged")
        return BloomFilter(self.n_bits, self.n_hashes, self.bits | other.bits)
