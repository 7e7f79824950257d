"""Dedup keys: compact digests that global dedup shuffles instead of whole texts."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

import numpy as np

_WS = re.compile(r"\s+")


def normalize_whitespace(text: str) -> str:
    """Collapse every run of whitespace to one space and strip the ends."""
    return _WS.sub(" ", text).strip()


def exact_text_key(text: str) -> bytes:
    """16-byte BLAKE2b of the whitespace-normalized text.

    16 bytes rather than 8: at a billion documents an 8-byte key would collide with a probability
    of a few percent, silently dropping a unique document; 16 bytes puts that beyond reach.
    """
    return hashlib.blake2b(normalize_whitespace(text).encode("utf-8"), digest_size=16).digest()


def order_key(doc_id: str, source: str) -> tuple[str, str]:
    """The deterministic order among duplicates: the smallest (id, source) is kept.

    Ids derive from the input (URL+digest, page id, repo/path), so the choice does not depend on
    file order, arrival order or worker count.
    """
    return (doc_id, source)


def key64(digest: bytes) -> int:
    """The leading 8 bytes of a dedup digest as an unsigned integer (its shard, its Bloom key)."""
    return int.from_bytes(digest[:8], "little")


def repeated_keys(chunks: Iterable[bytes]) -> np.ndarray:
    """The 64-bit keys that occur at least twice across packed uint64 chunks, sorted.

    The chunks of one shard come from every bundle that saw a key of it, so a key repeated
    inside one bundle and a key seen once in each of two bundles both count.
    """
    arrays = [np.frombuffer(c, dtype=np.uint64) for c in chunks if c]
    if not arrays:
        return np.empty(0, dtype=np.uint64)
    keys = np.sort(np.concatenate(arrays))
    repeated = keys[1:] == keys[:-1]
    return np.unique(keys[1:][repeated])
