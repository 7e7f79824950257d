"""Dedup keys: compact digests that global dedup shuffles instead of whole texts."""

from __future__ import annotations

import hashlib
import re

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
