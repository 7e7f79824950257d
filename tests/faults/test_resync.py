"""Issue #17 defect 3: after damage inside a file, reading resumes where the format allows
(the next `WARC/1.0` record); the damage is one dead letter and every later record is read."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import pytest

from llama_data.pipeline.document import DeadLetter, Document
from llama_data.pipeline.warc import WetReader


def wet_record(url: str, text: str, length: int | None = None) -> bytes:
    body = text.encode()
    head = (
        "WARC/1.0\r\nWARC-Type: conversion\r\n"
        f"WARC-Target-URI: {url}\r\nWARC-Date: 2023-01-02T03:04:05Z\r\n"
        f"WARC-Record-ID: <urn:uuid:{zlib.crc32(url.encode()):032x}>\r\n"
        "Content-Type: text/plain\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
    )
    return head.encode() + body + b"\r\n\r\n"


@pytest.mark.parametrize("length", [10_000, 10**20], ids=["past-the-end", "1e20"])
@pytest.mark.parametrize("gz", [False, True], ids=["wet", "wet.gz"])
def test_wet_content_length_past_the_end(tmp_path: Path, length: int, gz: bool) -> None:
    records = [wet_record(f"http://{i}.test/", f"page {i} text") for i in range(9)]
    records[1] = wet_record("http://bad.test/", "the lying record", length=length)
    path = tmp_path / ("f.warc.wet.gz" if gz else "f.warc.wet")
    path.write_bytes(b"".join(gzip.compress(r) for r in records) if gz else b"".join(records))
    out = list(WetReader().read_path(str(path)))
    docs = [o for o in out if isinstance(o, Document)]
    assert [d.meta["url"] for d in docs] == [f"http://{i}.test/" for i in range(9) if i != 1]
    [dead] = [o for o in out if isinstance(o, DeadLetter)]
    assert dead.reason == "content_length_mismatch" and "bytes skipped" in dead.error
    assert dead.bytes_skipped == len(records[1])  # from its start to the next record


def _zstd_blocks(frame: bytes) -> list[int]:
    """Offsets where each block of a one-frame zstd file ends (RFC 8878 section 3.1.1)."""
    fhd = frame[4]
    single, fcs, did = (fhd >> 5) & 1, fhd >> 6, fhd & 3
    pos = 5 + (0 if single else 1) + [0, 1, 2, 4][did] + [single, 2, 4, 8][fcs]
    ends = []
    while True:
        h = int.from_bytes(frame[pos : pos + 3], "little")
        pos += 3 + (1 if (h >> 1) & 3 == 1 else h >> 3)
        ends.append(pos)
        if h & 1:
            return ends


def test_jsonl_zst_cut_at_a_block_boundary_leaves_a_dead_letter(tmp_path: Path) -> None:
    import json

    import zstandard

    from llama_data.pipeline.io import JsonlDocumentReader

    text = "".join(json.dumps({"id": f"d{i}", "text": f"doc {i} " + "x" * 200}) + "\n"
                   for i in range(3000))  # fmt: skip
    frame = zstandard.ZstdCompressor(level=3).compress(text.encode())
    cut = _zstd_blocks(frame)[0]
    path = tmp_path / "d.jsonl.zst"
    path.write_bytes(frame[:cut])
    out = list(JsonlDocumentReader().read_path(str(path)))
    docs = [o for o in out if isinstance(o, Document)]
    assert docs and [d.id for d in docs] == [f"d{i}" for i in range(len(docs))]
    [dead] = [o for o in out if isinstance(o, DeadLetter)]
    assert dead.reason == "corrupt_stream" and "zstd frame" in dead.error
    assert dead.offset == len(docs)  # after the last whole line


def _jsonl(ids: range) -> bytes:
    import json

    return "".join(
        json.dumps({"id": f"d{i}", "text": f"doc {i} " * 30}) + "\n" for i in ids
    ).encode()


def test_jsonl_gz_reads_on_after_a_corrupt_member(tmp_path: Path) -> None:
    from llama_data.pipeline.io import JsonlDocumentReader

    bad = bytearray(gzip.compress(_jsonl(range(100, 200))))
    bad[len(bad) // 2 : len(bad) // 2 + 8] = b"\xff" * 8
    path = tmp_path / "d.jsonl.gz"
    path.write_bytes(
        gzip.compress(_jsonl(range(100))) + bytes(bad) + gzip.compress(_jsonl(range(200, 300)))
    )
    out = list(JsonlDocumentReader().read_path(str(path)))
    ids = {o.id for o in out if isinstance(o, Document)}
    assert {f"d{i}" for i in [*range(100), *range(200, 300)]} <= ids
    dead = [o for o in out if isinstance(o, DeadLetter)]
    assert [d.reason for d in dead] == ["corrupt_stream"]
    assert "resumed at the next member" in dead[0].error
    assert dead[0].bytes_skipped == len(bad)  # the bad member, to the next one's header


def test_deep_json_line_costs_that_line(tmp_path: Path) -> None:
    from llama_data.pipeline.c4.reader import C4JsonReader
    from llama_data.pipeline.io import JsonlDocumentReader

    deep = b'{"text": "x", "meta": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    for reader in (JsonlDocumentReader(), C4JsonReader()):
        path = tmp_path / "d.jsonl"
        path.write_bytes(_jsonl(range(3)) + deep + _jsonl(range(3, 6)))
        out = list(reader.read_path(str(path)))
        assert len([o for o in out if isinstance(o, Document)]) == 6
        [dead] = [o for o in out if isinstance(o, DeadLetter)]
        assert dead.reason == "bad_json" and dead.offset == 4


def test_parquet_row_with_invalid_meta_costs_that_row(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from llama_data.pipeline.io import ParquetDocumentReader

    metas = ["{}", "{not json", "[1]", '{"k": 1}']
    table = pa.table({
        "id": ["a", "b", "x", "c"], "source": ["s"] * 4, "text": ["1", "2", "3", "4"], "meta": metas,
    })  # fmt: skip
    path = tmp_path / "d.parquet"
    pq.write_table(table, path)
    out = list(ParquetDocumentReader().read_path(str(path)))
    assert [o.id for o in out if isinstance(o, Document)] == ["a", "c"]
    dead = [o for o in out if isinstance(o, DeadLetter)]
    assert [(d.reason, d.record_id, d.offset) for d in dead] == [
        ("bad_meta", "b", 2),
        ("bad_meta", "x", 3),
    ]


@pytest.mark.parametrize("name", ["enwiki-pages.xml", "enwiki-pages.xml.bz2"])
def test_unclosed_wikipedia_page_costs_that_page_only(tmp_path: Path, name: str) -> None:
    from test_wikipedia import all_items, page_xml, write_dump

    from llama_data.pipeline.wikipedia.reader import WikipediaReader

    text = "A good article with a sentence or two of ordinary text in it. " * 5
    pages = [page_xml(i, f"Page {i}", text) for i in range(1, 5)]
    pages[1] = pages[1].replace("  </page>\n", "")  # page 2 never closes
    out = all_items(WikipediaReader(), write_dump(tmp_path / name, pages))
    docs = [o for o in out if isinstance(o, Document)]
    assert [d.meta["title"] for d in docs] == ["Page 1", "Page 3", "Page 4"]
    [dead] = [o for o in out if isinstance(o, DeadLetter)]
    assert dead.reason == "unclosed_page"
    assert dead.bytes_skipped == len(pages[1])  # from its <page> to the next one


def test_junk_between_wet_records_spares_the_record_before_it(tmp_path: Path) -> None:
    import base64
    import hashlib

    def signed(url: str, text: str) -> bytes:
        digest = base64.b32encode(hashlib.sha1(text.encode()).digest()).decode()
        rec = wet_record(url, text)
        return rec.replace(
            b"Content-Type:", f"WARC-Block-Digest: sha1:{digest}\r\nContent-Type:".encode()
        )

    records = [signed(f"http://{i}.test/", f"page {i} text") for i in range(4)]
    path = tmp_path / "f.warc.wet"
    path.write_bytes(
        records[0] + records[1] + b"junk junk\r\nmore junk\r\n" + records[2] + records[3]
    )
    out = list(WetReader().read_path(str(path)))
    docs = [o for o in out if isinstance(o, Document)]
    assert [d.meta["url"] for d in docs] == [f"http://{i}.test/" for i in range(4)]
    [dead] = [o for o in out if isinstance(o, DeadLetter)]
    assert dead.reason == "junk_between_records" and "bytes" in dead.error
    assert dead.bytes_skipped == len(b"\r\n\r\n" + b"junk junk\r\nmore junk\r\n")  # with
    # the blank lines that close the record before it


def test_7z_damaged_mid_stream_keeps_the_posts_before_it(tmp_path: Path) -> None:
    import random

    from test_stackexchange import posts_xml, row, write_7z

    from llama_data.pipeline.stackexchange.reader import StackExchangeReader

    rnd = random.Random(1)
    rows = [
        row(Id=i, PostTypeId=1, Score=1, Title=f"Q{i}",
            Body="<p>" + " ".join(str(rnd.random()) for _ in range(30)) + "</p>")
        for i in range(1, 3001)
    ]  # fmt: skip
    data = bytearray(write_7z(tmp_path / "g.7z", {"Posts.xml": posts_xml(rows)}).read_bytes())
    at = len(data) // 2
    data[at : at + 64] = bytes(64)
    path = tmp_path / "x.stackexchange.com.7z"
    path.write_bytes(bytes(data))
    out = list(StackExchangeReader().read_path(str(path)))
    ids = [o.id for o in out if isinstance(o, Document)]
    assert len(ids) > 1000 and ids == [f"x.stackexchange.com/{i}" for i in range(1, len(ids) + 1)]
    [dead] = [o for o in out if isinstance(o, DeadLetter)]
    assert dead.reason == "corrupt_stream"
