"""The Bloom filter and duplicated-key search behind global exact dedup (engine-free)."""

from __future__ import annotations

import numpy as np
import pytest

from llama_data.pipeline.bloom import BloomFilter
from llama_data.pipeline.dedup import exact_text_key, key64, repeated_keys


def _keys(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + 1


def test_bloom_has_no_false_negatives_and_about_the_rate_asked() -> None:
    bloom = BloomFilter.for_capacity(20_000, error_rate=0.01)
    keys = _keys(20_000, 0)
    bloom.add(keys)
    assert bloom.contains(keys).all()
    assert all(int(k) in bloom for k in keys[:500])  # the per-document path agrees
    others = _keys(200_000, 1)
    rate = bloom.contains(others).mean()
    assert 0.003 < rate < 0.02
    assert bloom.nbytes < 20_000 * 1.3  # ~10 bits a key, against 8 bytes for an exact set


def test_bloom_parts_merge_to_the_filter_of_all_keys() -> None:
    keys = _keys(1000, 2)
    whole = BloomFilter.for_capacity(1000)
    whole.add(keys)
    a, b = BloomFilter.for_capacity(1000), BloomFilter.for_capacity(1000)
    a.add(keys[:400])
    b.add(keys[400:])
    assert np.array_equal(a.union(b).bits, whole.bits)
    with pytest.raises(ValueError, match="same shape"):
        a.union(BloomFilter.for_capacity(10))


def test_empty_filter_contains_nothing() -> None:
    bloom = BloomFilter.for_capacity(0)
    assert bloom.n_bits == 64 and key64(exact_text_key("x")) not in bloom


def test_repeated_keys_across_and_within_chunks() -> None:
    chunk = lambda *k: np.array(k, dtype=np.uint64).tobytes()  # noqa: E731
    # 5 twice in one chunk, 7 once in each of two chunks, 9 and 11 once
    found = repeated_keys([chunk(5, 5, 9), chunk(7), chunk(7, 11), b""])
    assert found.tolist() == [5, 7]
    assert repeated_keys([]).size == 0
