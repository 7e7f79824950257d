"""WET/WARC readers on fixtures written in the real formats, including broken ones."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import pytest

from llama_data.pipeline.document import DeadLetter, Document
from llama_data.pipeline.warc import CommonCrawlReader, WarcReader, WetReader


def wet_record(url: str, text: str, *, length: int | None = None, crlf: bool = True) -> bytes:
    body = text.encode("utf-8")
    nl = "\r\n" if crlf else "\n"
    headers = [
        "WARC/1.0",
        "WARC-Type: conversion",
        f"WARC-Target-URI: {url}",
        "WARC-Date: 2023-01-02T03:04:05Z",
        f"WARC-Record-ID: <urn:uuid:{zlib.crc32(url.encode()):032x}>",
        "WARC-Block-Digest: sha1:ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
        "Content-Type: text/plain",
        f"Content-Length: {len(body) if length is None else length}",
    ]
    return (nl.join(headers) + nl + nl).encode() + body + (nl + nl).encode()


def raw_record(payload: bytes, url: str = "http://x.test/") -> bytes:
    head = (
        "WARC/1.0\r\nWARC-Type: conversion\r\n"
        f"WARC-Target-URI: {url}\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode()
    return head + payload + b"\r\n\r\n"


def warcinfo() -> bytes:
    body = b"software: test\r\n"
    return (
        b"WARC/1.0\r\nWARC-Type: warcinfo\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
        + b"\r\n\r\n"
    )


def gz_members(*records: bytes) -> bytes:
    return b"".join(gzip.compress(r) for r in records)


def read_all(reader, path: Path) -> tuple[list[Document], list[DeadLetter]]:
    out = list(reader.read_path(str(path)))
    docs = [o for o in out if isinstance(o, Document)]
    dead = [o for o in out if isinstance(o, DeadLetter)]
    assert len(docs) + len(dead) == len(out)
    return docs, dead


def test_wet_gz_per_record(tmp_path: Path) -> None:
    p = tmp_path / "a.warc.wet.gz"
    p.write_bytes(
        gz_members(
            warcinfo(),
            wet_record("http://a.test/", "Title A\nline one"),
            wet_record("http://b.test/", "Title B\nzwei"),
        )
    )
    docs, dead = read_all(WetReader(), p)
    assert not dead
    assert [d.meta["url"] for d in docs] == ["http://a.test/", "http://b.test/"]
    assert docs[0].text == "Title A\nline one"
    assert docs[0].meta["title"] == "Title A"
    assert docs[0].meta["date"] == "2023-01-02T03:04:05Z"
    assert docs[0].meta["digest"] == "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    assert docs[0].id.startswith("a.warc.wet.gz:")
    assert len({d.id for d in docs}) == 2


def test_plain_wet_with_lf_line_ends_and_wrong_lengths(tmp_path: Path) -> None:
    p = tmp_path / "b.wet"
    p.write_bytes(
        wet_record("http://a.test/", "Hello\nworld", crlf=False, length=999)
        + wet_record("http://b.test/", "Second\npage", crlf=False, length=3)
    )
    docs, dead = read_all(WetReader(), p)
    assert not dead
    assert [d.text for d in docs] == ["Hello\nworld", "Second\npage"]


def test_truncated_gzip_member_costs_one_record(tmp_path: Path) -> None:
    good1 = gzip.compress(wet_record("http://a.test/", "first page " * 50))
    bad = gzip.compress(wet_record("http://b.test/", "second page " * 50))
    good2 = gzip.compress(wet_record("http://c.test/", "third page " * 50))
    p = tmp_path / "t.warc.wet.gz"
    p.write_bytes(good1 + bad[: len(bad) // 2] + good2)
    docs, dead = read_all(WetReader(), p)
    assert [d.meta["url"] for d in docs] == ["http://a.test/", "http://c.test/"]
    assert [d.reason for d in dead] == ["corrupt_gzip"]
    # truncated at the end of the file
    p.write_bytes(good1 + bad[:-10])
    docs, dead = read_all(WetReader(), p)
    assert [d.meta["url"] for d in docs] == ["http://a.test/"]
    assert [d.reason for d in dead] == ["corrupt_gzip"]


def test_broken_headers_and_lengths(tmp_path: Path) -> None:
    ok = wet_record("http://ok.test/", "fine text")
    no_colon = ok.replace(b"Content-Type: text/plain", b"this is not a header")
    bad_len = ok.replace(b"Content-Length: 9", b"Content-Length: nine")
    too_long = wet_record("http://long.test/", "short", length=40)
    too_short = wet_record("http://short.test/", "a longer payload here", length=5)
    p = tmp_path / "c.warc.wet.gz"
    p.write_bytes(gz_members(b"garbage before\r\n", no_colon, bad_len, too_short, too_long, ok))
    docs, dead = read_all(WetReader(), p)
    assert [d.reason for d in dead] == [
        "bad_record_header",
        "bad_header",
        "bad_content_length",
        "content_length_mismatch",
        "content_length_mismatch",
    ]
    assert [d.meta["url"] for d in docs] == ["http://ok.test/"]


def test_binary_invalid_utf8_and_huge_line(tmp_path: Path) -> None:
    huge = b"x" * (50 << 20)
    p = tmp_path / "d.warc.wet.gz"
    with open(p, "wb") as f:
        f.write(gzip.compress(raw_record(b"\x00\x01\x02binary\x00" * 100)))
        f.write(gzip.compress(raw_record(b"caf\xe9 " * 100)))
        f.write(gzip.compress(raw_record("almost fine \u00e9".encode() + b"\xff" + b" ok" * 200)))
        f.write(gzip.compress(raw_record(huge), compresslevel=1))
        f.write(gzip.compress(wet_record("http://after.test/", "still read")))
    reader = WetReader(max_record_bytes=16 << 20)
    docs, dead = read_all(reader, p)
    assert [d.reason for d in dead] == ["binary_payload", "invalid_utf8", "record_too_large"]
    assert [d.meta["url"] for d in docs] == ["http://x.test/", "http://after.test/"]
    assert docs[0].meta["utf8_errors"] == 1


def html_response(url: str, html: bytes, ctype: str = "text/html; charset=utf-8") -> bytes:
    http = b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype.encode() + b"\r\n\r\n" + html
    head = (
        "WARC/1.0\r\nWARC-Type: response\r\n"
        f"WARC-Target-URI: {url}\r\nWARC-Date: 2023-05-06T07:08:09Z\r\n"
        "WARC-Payload-Digest: sha1:PAYLOADDIGEST\r\n"
        "Content-Type: application/http; msgtype=response\r\n"
        f"Content-Length: {len(http)}\r\n\r\n"
    ).encode()
    return head + http + b"\r\n\r\n"


def test_warc_html_to_text_charset_and_skips(tmp_path: Path) -> None:
    latin = (
        "<html><head><title>Déjà vu</title></head><body><p>Ça coûte très cher.</p></body></html>"
    )
    p = tmp_path / "e.warc.gz"
    p.write_bytes(
        gz_members(
            warcinfo(),
            html_response(
                "http://utf8.test/",
                "<html><head><title>Hi</title></head><body><h1>Héllo</h1><p>Wörld text</p></body></html>".encode(),
            ),
            html_response("http://latin.test/", latin.encode("latin-1"), ctype="text/html"),
            html_response("http://img.test/a.png", b"\x89PNG\r\n\x1a\n\x00\x00", ctype="image/png"),
        )
    )
    docs, dead = read_all(WarcReader(), p)
    assert not dead
    assert [d.meta["url"] for d in docs] == ["http://utf8.test/", "http://latin.test/"]
    assert docs[0].meta["title"] == "Hi"
    assert "Héllo" in docs[0].text and "Wörld text" in docs[0].text
    assert "Ça coûte très cher." in docs[1].text
    assert docs[1].meta["title"] == "Déjà vu"
    assert docs[0].meta["digest"] == "PAYLOADDIGEST"
    # the dispatching reader picks WARC for .warc.gz and WET for .wet
    docs2, _ = read_all(CommonCrawlReader(), p)
    assert [d.text for d in docs2] == [d.text for d in docs]


@pytest.mark.corpus
def test_corpus_samples_parse(corpus: Path) -> None:
    cc = corpus / "commoncrawl"
    docs, dead = read_all(WetReader(), cc / "ccnet-sample.warc.wet")
    assert not dead
    assert [d.meta["url"] for d in docs] == [
        "http://sample_english.com",
        "http://sample_chinese.zh",
        "http://sample_russian.ru",
    ]
    assert docs[0].meta["title"] == "Famous Mark Twain Quotes"
    for name, reader, n in (
        ("pages.warc.wet.gz", WetReader(), 100),
        ("pages.warc.gz", WarcReader(), 100),
        ("wget-sample.warc.gz", WarcReader(), 5),
    ):
        docs, dead = read_all(reader, cc / name)
        assert not dead and len(docs) >= n, name
        assert all(d.meta["url"] and d.meta["date"] for d in docs)
