"""Issue #17 defect 1: one bad value never kills a job. A lone UTF-16 surrogate (legal JSON) is
replaced by U+FFFD and counted; a field of the wrong type or an integer too large for its column
is a dead letter; every other record is written."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from _faults import assert_accounted, dead_letters, parquet_rows

from conftest import run_cli

GOOD = [f"Good document number {i} has a few ordinary words in it." for i in range(3)]


def c4_lines() -> list[bytes]:
    good = [
        json.dumps({"text": t, "url": f"https://e.com/{i}", "timestamp": "2019-04-25T12:57:54Z"})
        for i, t in enumerate(GOOD)
    ]
    surrogate = '{"text": "lone \\udfff surrogate", "url": "https://e.com/s\\ud800"}'
    wrong_type = '{"text": "url is a number", "url": 5, "timestamp": "2019"}'
    return [x.encode() for x in (good[0], surrogate, good[1], wrong_type, good[2])]


@pytest.mark.slow
def test_c4_surrogate_and_wrong_type(tmp_path: Path) -> None:
    f = tmp_path / "c4-train.00000-of-01024.json.gz"
    f.write_bytes(gzip.compress(b"\n".join(c4_lines()) + b"\n"))
    r = run_cli("c4", "-q", "-i", str(f), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    stage = tmp_path / "out" / "c4"
    stats = assert_accounted(stage, 5)
    rows = {r["text"]: r for r in parquet_rows(stage)}
    assert set(GOOD) <= set(rows)
    assert rows["lone \ufffd surrogate"]["url"] == "https://e.com/s\ufffd"
    assert stats["counters"]["read.surrogates_replaced"] == 2
    [dead] = dead_letters(stage)
    assert dead["reason"] == "bad_field" and "'url' is int" in dead["error"]


@pytest.mark.slow
def test_dedup_exact_surrogate(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text(
        '{"id": "a", "text": "one"}\n'
        '{"id": "b\\udfff", "text": "two \\ud800", "meta": {"k\\udc00": "v"}}\n'
        '{"id": "c", "text": "one"}\n'
    )
    r = run_cli("dedup-exact", "-q", "-i", str(f), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    stage = tmp_path / "out" / "dedup-exact"
    assert_accounted(stage, 3)
    kept = {r["id"]: r for r in parquet_rows(stage)}
    assert kept["b\ufffd"]["text"] == "two \ufffd"
    assert json.loads(kept["b\ufffd"]["meta"]) == {"k\ufffd": "v"}


def test_stackexchange_score_too_large_for_int64(tmp_path: Path) -> None:
    from llama_data.pipeline.document import DeadLetter, Document
    from llama_data.pipeline.stackexchange.reader import StackExchangeReader

    rows = [
        '<row Id="1" PostTypeId="1" Score="3" Title="Q" Body="&lt;p&gt;a&lt;/p&gt;" />',
        '<row Id="2" PostTypeId="2" ParentId="1" Score="99999999999999999999" Body="b" />',
        '<row Id="3" PostTypeId="2" ParentId="1" Score="-9223372036854775808" Body="c" />',
    ]
    path = tmp_path / "s" / "Posts.xml"
    path.parent.mkdir()
    path.write_text('<?xml version="1.0"?>\n<posts>\n' + "\n".join(rows) + "\n</posts>")
    items = list(StackExchangeReader().read_path(str(path)))
    assert [i.id for i in items if isinstance(i, Document)] == ["s/1", "s/3"]
    [dead] = [i for i in items if isinstance(i, DeadLetter)]
    assert dead.reason == "bad_row_xml" and dead.record_id == "s/2" and "range" in dead.error


@pytest.mark.slow
def test_a_value_the_schema_cannot_hold_is_a_dead_letter(tmp_path: Path) -> None:
    """The harness's net under every reader: a row whose value does not fit its stage's typed
    column (wrong type, beyond int64) is an `unwritable_value` dead letter, not a failed job."""
    import pyarrow as pa

    from llama_data.beam_jobs.harness import ReadDocuments, StageOutputs, StageSpec, run_stage
    from llama_data.beam_jobs.runners import RunOptions
    from llama_data.pipeline.io import DocumentReader
    from llama_data.pipeline.schema import DocumentSchema

    src = tmp_path / "d.jsonl"
    src.write_text(
        '{"id": "a", "text": "one", "n": 1}\n'
        '{"id": "b", "text": "two", "n": 99999999999999999999}\n'
        '{"id": "c", "text": "three", "n": "three"}\n'
        '{"id": "d", "text": "four", "n": 4}\n'
    )

    def build(p, ctx):
        read = p | ReadDocuments([str(src)], DocumentReader("t"), ctx.name)
        return StageOutputs(kept=read.docs, errors=[read.errors])

    schema = DocumentSchema(extra=(pa.field("n", pa.int64()),))
    spec = StageSpec("typed", build, inputs=[str(src)], schema=schema)
    run_stage(spec, str(tmp_path / "out"), RunOptions(quiet=True))
    stage = tmp_path / "out" / "typed"
    stats = assert_accounted(stage, 4)
    assert sorted((r["id"], r["n"]) for r in parquet_rows(stage)) == [("a", 1), ("d", 4)]
    assert stats["errors"] == {"unwritable_value": 2}
    assert sorted(d["record_id"] for d in dead_letters(stage)) == ["b", "c"]


def _parquet_bytes(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue().to_pybytes()


@pytest.mark.slow
def test_exact_dedup_writer_dead_letters_what_the_schema_cannot_hold(tmp_path: Path) -> None:
    """The exact dedup writes kept documents itself (provisional files, settled by the Bloom
    filter): a row its schema cannot hold (here a Parquet `meta` whose JSON escapes a lone
    surrogate) is an `unwritable_value` dead letter there too, and the keys of the other rows
    stay aligned with their rows: duplicates in the same 1,000-row batches are still found."""
    rows = [{"id": f"d{i:04d}", "text": f"document {i % 1500}", "meta": "{}"} for i in range(2500)]
    for i in (5, 1200, 2499):  # in the first batch, a middle one and the last
        rows[i] = {"id": f"bad{i}", "text": f"bad {i}", "meta": '{"k": "\\udfff"}'}
    f = tmp_path / "d.parquet"
    f.write_bytes(_parquet_bytes(rows))
    r = run_cli("dedup-exact", "-q", "-i", str(f), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr[-3000:]
    stage = tmp_path / "out" / "dedup-exact"
    stats = assert_accounted(stage, 2500)
    assert stats["errors"] == {"unwritable_value": 3}
    assert sorted(d["record_id"] for d in dead_letters(stage)) == ["bad1200", "bad2499", "bad5"]
    kept = {row["id"] for row in parquet_rows(stage)}
    good = [row for row in rows if not row["id"].startswith("bad")]
    winners = {}
    for row in good:  # the smallest id of each text is kept
        winners.setdefault(row["text"], row["id"])
    assert kept == set(winners.values())
    assert sum(stats["rejected"].values()) == len(good) - len(winners)
