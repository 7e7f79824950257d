import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from llama_data.pipeline.document import DeadLetter, Document
from llama_data.pipeline.io import DocumentReader, JsonlDocumentReader, ParquetDocumentReader
from llama_data.pipeline.schema import BASE_SCHEMA

ROWS = [
    {"id": "d1", "text": "first document", "url": "http://a"},
    {"text": "no id given", "source": "books"},
    {"id": "d3", "text": "third", "meta": {"lang": "en"}},
]


def _lines(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _read(reader, path: Path):
    docs = [r for r in reader.read_path(str(path)) if isinstance(r, Document)]
    dead = [r for r in reader.read_path(str(path)) if isinstance(r, DeadLetter)]
    return docs, dead


def _check_docs(docs: list[Document], fname: str) -> None:
    assert [d.id for d in docs] == ["d1", f"{fname}:2", "d3"]
    assert docs[0].meta == {"url": "http://a"} and docs[0].source == "mine"
    assert docs[1].source == "books"
    assert docs[2].meta == {"lang": "en"}


def test_jsonl_plain_gzip_and_zstd(tmp_path: Path):
    data = _lines(ROWS)
    (tmp_path / "a.jsonl").write_bytes(data)
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(data))
    (tmp_path / "c.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(data))
    for name in ("a.jsonl", "b.jsonl.gz", "c.jsonl.zst"):
        docs, dead = _read(JsonlDocumentReader("mine"), tmp_path / name)
        assert not dead
        _check_docs(docs, name)


def test_multi_member_gzip_is_read_whole(tmp_path: Path):
    path = tmp_path / "m.jsonl.gz"
    path.write_bytes(gzip.compress(_lines(ROWS[:1])) + gzip.compress(_lines(ROWS[1:])))
    docs, dead = _read(JsonlDocumentReader("mine"), path)
    assert len(docs) == 3 and not dead


def test_bad_lines_become_dead_letters_and_reading_goes_on(tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        b'{"id": "ok1", "text": "fine"}\n'
        b'{"id": "broken", "text": \n'
        b'{"id": "notext", "title": "x"}\n'
        b'{"id": "numtext", "text": 5}\n'
        b"[1, 2]\n"
        b'{"id": "ok2", "text": "also fine"}\n'
    )
    docs, dead = _read(JsonlDocumentReader(), path)
    assert [d.id for d in docs] == ["ok1", "ok2"]
    assert [(d.reason, d.offset) for d in dead] == [
        ("bad_json", 2),
        ("missing_text", 3),
        ("missing_text", 4),
        ("bad_json", 5),
    ]
    assert dead[1].record_id == "notext"


def test_truncated_gzip_keeps_what_came_before(tmp_path: Path):
    rows = [{"id": f"r{i}", "text": f"row number {i} " * 20} for i in range(2000)]
    blob = gzip.compress(_lines(rows))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(blob[: len(blob) // 2])
    docs, dead = _read(JsonlDocumentReader(), path)
    assert 0 < len(docs) < 2000
    assert [d.id for d in docs] == [f"r{i}" for i in range(len(docs))]
    assert len(dead) == 1 and dead[0].reason == "corrupt_stream"


def test_corrupt_zstd_is_a_dead_letter(tmp_path: Path):
    path = tmp_path / "bad.jsonl.zst"
    blob = bytearray(zstandard.ZstdCompressor().compress(_lines(ROWS * 200)))
    blob[len(blob) // 2 : len(blob) // 2 + 16] = b"\x00" * 16
    path.write_bytes(bytes(blob))
    docs, dead = _read(JsonlDocumentReader(), path)
    assert len(dead) == 1 and dead[0].reason in ("corrupt_stream", "unreadable_file")
    assert "Zstd" in dead[0].error or "zstd" in dead[0].error.lower()


def test_missing_file_is_a_dead_letter(tmp_path: Path):
    docs, dead = _read(JsonlDocumentReader(), tmp_path / "nope.jsonl")
    assert not docs and dead[0].reason == "unreadable_file"


def test_parquet_documents(tmp_path: Path):
    from llama_data.pipeline.schema import DocumentSchema

    schema = DocumentSchema(extra=(pa.field("score", pa.float64()),))
    docs = [
        Document("x1", "wikipedia", "alpha", {"score": 1.5, "lang": "en"}),
        Document("x2", "wikipedia", "beta"),
    ]
    pq.write_table(schema.to_table(docs), tmp_path / "d.parquet")
    got, dead = _read(ParquetDocumentReader(), tmp_path / "d.parquet")
    assert not dead
    assert got[0] == docs[0]
    assert got[1].id == "x2" and got[1].meta == {}


def test_user_parquet_with_null_text_and_no_ids(tmp_path: Path):
    table = pa.table({"text": ["one", None, "three"], "lang": ["en", "en", "fr"]})
    pq.write_table(table, tmp_path / "user.parquet")
    got, dead = _read(DocumentReader("custom"), tmp_path / "user.parquet")
    assert [d.id for d in got] == ["user.parquet:1", "user.parquet:3"]
    assert got[1].meta == {"lang": "fr"} and got[1].source == "custom"
    assert len(dead) == 1 and dead[0].reason == "missing_text" and dead[0].offset == 2


def test_parquet_without_text_column(tmp_path: Path):
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "nt.parquet")
    got, dead = _read(ParquetDocumentReader(), tmp_path / "nt.parquet")
    assert not got and dead[0].reason == "missing_text"


def test_garbage_parquet_is_a_dead_letter(tmp_path: Path):
    (tmp_path / "junk.parquet").write_bytes(b"not a parquet file at all")
    got, dead = _read(ParquetDocumentReader(), tmp_path / "junk.parquet")
    assert not got and dead[0].reason == "unreadable_file"


def test_base_schema_table_is_readable_by_the_document_reader(tmp_path: Path):
    docs = [Document(f"id{i}", "c4", f"text {i}", {"url": f"u{i}"}) for i in range(5)]
    pq.write_table(BASE_SCHEMA.to_table(docs), tmp_path / "p.parquet", compression="zstd")
    got, _ = _read(DocumentReader(), tmp_path / "p.parquet")
    assert got == docs
