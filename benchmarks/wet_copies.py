"""Benchmark inputs made from the real WET sample: N copies of its pages, each copy with a word of
its own on every line, so copies do not dedup each other away (shared by bench_ccnet, bench_peer,
bench_scale and the frozen-output test)."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# (page, copy number, copy word, page number) -> (url, record id) of the page's copy
Rename = Callable[[Any, int, str, int], tuple[str, str]]


def marker(k: int) -> str:
    """A letters-only word per copy (digits would normalize to 0 and collide)."""
    s = ""
    k += 26 * 26
    while k:
        k, r = divmod(k, 26)
        s = chr(97 + r) + s
    return "q" + s


def marked(text: str, word: str) -> str:
    """`word` before every non-blank line."""
    return "\n".join(f"{word} {line}" if line.strip() else line for line in text.split("\n"))


def wet_record(url: str, record_id: str, date: str, body: str, level: int = 6) -> bytes:
    """One WET conversion record as its own gzip member, as Common Crawl writes them."""
    data = body.encode("utf-8")
    head = (
        "WARC/1.0\r\nWARC-Type: conversion\r\n"
        f"WARC-Target-URI: {url}\r\nWARC-Date: {date}\r\n"
        f"WARC-Record-ID: {record_id}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    return gzip.compress(head + data + b"\r\n\r\n", compresslevel=level)


def write_copies(
    folder: Path,
    pages: Sequence[Any],
    copies: int,
    rename: Rename | None = None,
    level: int = 6,
) -> list[Path]:
    """`copies` files `copy-NNN.warc.wet.gz` of `pages` (Documents read from a WET file), each
    copy's lines marked with its word; `rename` gives each copy of a page its own URL and
    record id (default: the page's own)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(copies):
        word = marker(k)
        path = folder / f"copy-{k:03d}.warc.wet.gz"
        with path.open("wb") as f:
            for i, d in enumerate(pages):
                url, rid = rename(d, k, word, i) if rename else (d.meta["url"], d.meta["record_id"])
                f.write(wet_record(url, rid, d.meta["date"], marked(d.text, word), level))
        paths.append(path)
    return paths
