"""Byte-stream helpers shared by the XML dump readers (MediaWiki, Stack Exchange).

Both readers cut elements out of the byte stream and parse each one alone with a parser that
never resolves entities, loads a DTD or touches the network. Entity-expansion attacks ("billion
laughs", external entities) need a DTD in the prolog; neither publisher ever ships one, so a
prolog that declares one is refused outright.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from lxml import etree

READ_CHUNK = 1 << 20
DTD_ERROR = "the XML prolog declares a DTD or entities: refused (entity-expansion risk)"


def safe_parser() -> etree.XMLParser:
    """An lxml parser that cannot expand entities or fetch anything."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=True,  # long texts exceed libxml2's 10 MB node limit; no DTD, so this is safe
        remove_comments=True,
        remove_pis=True,
    )


def declares_dtd(prolog: bytes) -> bool:
    return b"<!DOCTYPE" in prolog or b"<!ENTITY" in prolog


def read_chunks(stream: BinaryIO, limit: int | None = None) -> Iterator[bytes]:
    """A binary stream as chunks; `limit` bytes at most."""
    remaining = limit
    while remaining is None or remaining > 0:
        n = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
        chunk = stream.read(n)
        if not chunk:
            return
        if remaining is not None:
            remaining -= len(chunk)
        yield chunk


def as_chunks(stream: BinaryIO | Iterable[bytes]) -> Iterable[bytes]:
    return read_chunks(stream) if hasattr(stream, "read") else stream  # type: ignore[arg-type]


def utf8_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Chunks of UTF-8: UTF-16 (by BOM, or `<\\0?\\0` per XML 1.0 appendix F) is re-encoded,
    anything else (UTF-8, with or without BOM) passed through unchanged."""
    it = iter(chunks)
    head = b""
    for chunk in it:
        head += chunk
        if len(head) >= 4:
            break
    encoding = None
    if head.startswith(codecs.BOM_UTF16_LE) or head.startswith(b"<\x00?\x00"):
        encoding = "utf-16-le"
    elif head.startswith(codecs.BOM_UTF16_BE) or head.startswith(b"\x00<\x00?"):
        encoding = "utf-16-be"
    if encoding is None:  # a UTF-8 BOM stays: offsets then remain the file's byte offsets
        if head:
            yield head
        yield from it
        return
    dec = codecs.getincrementaldecoder(encoding)(errors="strict")
    yield dec.decode(head).lstrip("\ufeff").encode("utf-8")
    for chunk in it:
        yield dec.decode(chunk).encode("utf-8")
    tail = dec.decode(b"", final=True)
    if tail:
        yield tail.encode("utf-8")
