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


def _lines(ids: range) -> bytes:
    return b"".join(b'{"id": "d%d", "text": "doc %d"}\n' % (i, i) for i in ids)


@pytest.mark.parametrize("ext", ["jsonl", "jsonl.gz", "jsonl.zst", "jsonl.bz2"])
def test_overlong_json_line_is_skipped_unread(tmp_path: Path, monkeypatch, ext: str) -> None:
    import bz2

    import zstandard

    from llama_data.pipeline import io as pio
    from llama_data.pipeline.io import JsonlDocumentReader

    monkeypatch.setattr(pio, "MAX_LINE_BYTES", 1000)
    data = _lines(range(3)) + b'{"text": "' + b"x" * 5000 + b'"}\n' + _lines(range(3, 6))
    compress = {"jsonl": bytes, "jsonl.gz": gzip.compress, "jsonl.bz2": bz2.compress,
                "jsonl.zst": zstandard.ZstdCompressor().compress}[ext]  # fmt: skip
    path = tmp_path / f"d.{ext}"
    path.write_bytes(compress(data))
    out = list(JsonlDocumentReader().read_path(str(path)))
    assert [o.id for o in out if isinstance(o, Document)] == [f"d{i}" for i in range(6)]
    [dead] = [o for o in out if isinstance(o, DeadLetter)]
    assert (dead.reason, dead.offset) == ("line_too_long", 4) and "5013 bytes" in dead.error


@pytest.mark.parametrize("ext", ["jsonl.gz", "jsonl.zst"])
def test_json_lines_bomb_in_bounded_memory(tmp_path: Path, monkeypatch, ext: str) -> None:
    import tracemalloc

    import zstandard

    from llama_data.pipeline import io as pio
    from llama_data.pipeline.io import JsonlDocumentReader

    monkeypatch.setattr(pio, "MAX_LINE_BYTES", 1 << 20)
    if ext == "jsonl.gz":
        bomb = gzip_bomb(256 << 20)
    else:
        c = zstandard.ZstdCompressor().compressobj()
        bomb = b"".join(c.compress(bytes(1 << 20)) for _ in range(256)) + c.flush()
    comp = gzip.compress if ext == "jsonl.gz" else zstandard.ZstdCompressor().compress
    path = tmp_path / f"d.{ext}"
    path.write_bytes(comp(_lines(range(2))) + bomb + comp(b"\n" + _lines(range(2, 4))))
    tracemalloc.start()
    out = list(JsonlDocumentReader().read_path(str(path)))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 << 20
    assert [o.id for o in out if isinstance(o, Document)] == [f"d{i}" for i in range(4)]
    assert [o.reason for o in out if isinstance(o, DeadLetter)] == ["line_too_long"]


@pytest.mark.parametrize("ext", ["jsonl.gz", "jsonl.zst", "jsonl.bz2"])
def test_json_lines_bomb_stops_at_the_inflation_budget(
    tmp_path: Path, monkeypatch, ext: str
) -> None:
    import bz2

    import zstandard

    from llama_data.pipeline import io as pio
    from llama_data.pipeline.io import JsonlDocumentReader

    monkeypatch.setattr(pio, "INFLATION_FLOOR", 8 << 20)
    monkeypatch.setattr(pio, "MAX_INFLATION", 100)
    comp = {"jsonl.gz": gzip.compress, "jsonl.bz2": bz2.compress,
            "jsonl.zst": zstandard.ZstdCompressor().compress}[ext]  # fmt: skip
    bomb = comp(bytes(64 << 20))
    path = tmp_path / f"d.{ext}"
    path.write_bytes(comp(_lines(range(3))) + bomb + comp(b"\n" + _lines(range(3, 6))))
    out = list(JsonlDocumentReader().read_path(str(path)))
    assert [o.id for o in out if isinstance(o, Document)] == ["d0", "d1", "d2"]
    [dead] = [o for o in out if isinstance(o, DeadLetter)]
    assert dead.reason == "decompression_limit" and "100:1" in dead.error
