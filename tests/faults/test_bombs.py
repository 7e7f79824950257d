"""Issue #17 defect 2: untrusted compressed bytes are inflated with a byte budget; a bomb
becomes a dead letter and the records around it are read."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import pytest

from llama_data.pipeline.document import DeadLetter, Document
from llama_data.pipeline.io import DecompressionLimit, inflate_bounded
from llama_data.pipeline.warc import WarcReader


def gzip_bomb(size: int) -> bytes:
    """`size` zero bytes gzipped (about 1,000:1), made in 1 MiB pieces."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    piece = bytes(1 << 20)
    out = [c.compress(piece) for _ in range(size >> 20)]
    return b"".join(out) + c.flush()


def response(url: str, body: bytes, encoding: str | None = None) -> bytes:
    enc = f"Content-Encoding: {encoding}\r\n" if encoding else ""
    http = f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n{enc}\r\n".encode() + body
    head = (
        "WARC/1.0\r\nWARC-Type: response\r\n"
        f"WARC-Target-URI: {url}\r\nWARC-Date: 2023-05-06T07:08:09Z\r\n"
        "Content-Type: application/http; msgtype=response\r\n"
        f"Content-Length: {len(http)}\r\n\r\n"
    ).encode()
    return gzip.compress(head + http + b"\r\n\r\n")


def page(word: str) -> bytes:
    return f"<html><body><p>{word} is a good page.</p></body></html>".encode()


def test_inflate_bounded() -> None:
    data = b"abc" * 1000
    assert inflate_bounded(zlib.compress(data), 47, len(data)) == data
    assert inflate_bounded(gzip.compress(data), 47, len(data)) == data
    with pytest.raises(DecompressionLimit):
        inflate_bounded(gzip_bomb(8 << 20), 47, 1 << 20)
    with pytest.raises(zlib.error):
        inflate_bounded(gzip.compress(data)[:-20], 47, len(data))


def test_warc_http_gzip_bomb_is_a_dead_letter(tmp_path: Path) -> None:
    import tracemalloc

    path = tmp_path / "bomb.warc.gz"
    path.write_bytes(
        response("http://a.test/", page("Alpha"))
        + response("http://bomb.test/", gzip_bomb(256 << 20), "gzip")
        + response("http://b.test/", gzip.compress(page("Beta")), "gzip")
    )
    tracemalloc.start()
    out = list(WarcReader(max_record_bytes=4 << 20).read_path(str(path)))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 << 20  # the 256 MiB body was never held
    docs = [o for o in out if isinstance(o, Document)]
    assert [d.meta["url"] for d in docs] == ["http://a.test/", "http://b.test/"]
    assert "Beta is a good page." in docs[1].text
    [dead] = [o for o in out if isinstance(o, DeadLetter)]
    assert dead.reason == "decompression_limit" and "gzip" in dead.error
