import json

import pyarrow as pa
import pytest

from llama_data.pipeline.document import Document, Rejected
from llama_data.pipeline.schema import BASE_SCHEMA, DocumentSchema, row_to_document


def test_base_schema_is_explicit():
    schema = BASE_SCHEMA.arrow
    assert schema.names == ["id", "source", "text", "meta"]
    assert all(schema.field(n).type == pa.string() for n in schema.names)
    assert not schema.field("text").nullable
    assert BASE_SCHEMA.rejected_arrow.names[-1] == "reason"


def test_typed_columns_round_trip_through_meta():
    schema = DocumentSchema(
        extra=(pa.field("perplexity", pa.float64()), pa.field("bucket", pa.string()))
    )
    doc = Document(
        "u#1", "commoncrawl", "hello", {"perplexity": 123.5, "bucket": "head", "url": "http://x"}
    )
    row = schema.to_row(doc)
    assert row["perplexity"] == 123.5 and row["bucket"] == "head"
    assert json.loads(row["meta"]) == {"url": "http://x"}
    table = schema.to_table([doc])
    assert table.schema.field("perplexity").type == pa.float64()
    back = row_to_document(table.to_pylist()[0])
    assert back == doc


def test_rejected_row_carries_reason():
    doc = Document("a", "s", "t")
    row = BASE_SCHEMA.rejected_row(Rejected(doc, "too_short"))
    assert row["reason"] == "too_short"
    assert pa.Table.from_pylist([row], schema=BASE_SCHEMA.rejected_arrow).num_rows == 1


def test_extra_columns_may_not_shadow_base_columns():
    with pytest.raises(ValueError, match="clash"):
        DocumentSchema(extra=(pa.field("text", pa.string()),))


def test_meta_values_that_json_cannot_hold_are_stringified():
    import datetime

    doc = Document("a", "s", "t", {"when": datetime.date(2023, 2, 1), "raw": b"\xff"})
    meta = json.loads(BASE_SCHEMA.to_row(doc)["meta"])
    assert meta == {"when": "2023-02-01", "raw": "\ufffd"}
