"""Arrow schemas of stage outputs: the base document columns plus typed columns a stage declares.

In memory a `Document` keeps everything beyond id/source/text in `meta`; on disk a stage promotes
the meta keys it declares to typed Parquet columns (so users can query `perplexity` or `bucket`
directly) and keeps the rest as a JSON object in the `meta` column.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from llama_data.pipeline.document import Document, Rejected

BASE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
    pa.field("meta", pa.string(), nullable=True),  # JSON object of the remaining meta keys
)  # `to_values` relies on this order
BASE_NAMES = frozenset(f.name for f in BASE_FIELDS)
REASON_FIELD = pa.field("reason", pa.string(), nullable=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


_META_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=_json_default)


@dataclass(frozen=True)
class DocumentSchema:
    """The on-disk shape of one stage's documents. `extra` are typed columns taken from meta."""

    extra: tuple[pa.Field, ...] = ()

    def __post_init__(self) -> None:
        clash = [f.name for f in self.extra if f.name in BASE_NAMES or f.name == "reason"]
        if clash:
            raise ValueError(f"schema columns clash with base columns: {clash}")

    @property
    def arrow(self) -> pa.Schema:
        return pa.schema([*BASE_FIELDS, *self.extra])

    @property
    def rejected_arrow(self) -> pa.Schema:
        return pa.schema([*BASE_FIELDS, *self.extra, REASON_FIELD])

    def to_row(self, doc: Document, reason: str | None = None) -> dict[str, Any]:
        names = [f.name for f in (*BASE_FIELDS, *self.extra)]
        if reason is not None:
            names.append("reason")
        return dict(zip(names, self.to_values(doc, reason), strict=True))

    def to_values(self, doc: Document, reason: str | None = None) -> tuple[Any, ...]:
        """One row as values in column order (`arrow`, or `rejected_arrow` with a reason)."""
        meta = dict(doc.meta)
        extra = [meta.pop(f.name, None) for f in self.extra]
        values = (doc.id, doc.source, doc.text, _META_JSON.encode(meta), *extra)
        return values if reason is None else (*values, reason)

    def batch(self, rows: list[tuple[Any, ...]], rejected: bool = False) -> pa.RecordBatch:
        """Rows from `to_values` as one record batch, built column by column."""
        schema = self.rejected_arrow if rejected else self.arrow
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
        arrays = [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)]
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    def rejected_row(self, rejected: Rejected) -> dict[str, Any]:
        return self.to_row(rejected.doc, rejected.reason)

    def to_table(self, docs: Iterable[Document]) -> pa.Table:
        return pa.Table.from_batches([self.batch([self.to_values(d) for d in docs])])


def row_to_document(row: dict[str, Any]) -> Document:
    """Rebuild a Document from a row of any stage's schema: unknown columns go back into meta."""
    raw_meta = row.get("meta")
    meta: dict[str, Any] = {}
    if isinstance(raw_meta, str) and raw_meta:
        meta = json.loads(raw_meta)
        if not isinstance(meta, dict):
            raise ValueError(f"meta is a JSON {type(meta).__name__}, not an object")
    elif isinstance(raw_meta, dict):
        meta = dict(raw_meta)
    for key, value in row.items():
        if key not in BASE_NAMES and value is not None:
            meta[key] = value
    return Document(id=str(row["id"]), source=str(row["source"]), text=row["text"], meta=meta)


BASE_SCHEMA = DocumentSchema()
