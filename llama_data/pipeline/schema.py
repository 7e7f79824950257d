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
)
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
        meta = dict(doc.meta)
        row: dict[str, Any] = {"id": doc.id, "source": doc.source, "text": doc.text}
        for f in self.extra:
            row[f.name] = meta.pop(f.name, None)
        row["meta"] = json.dumps(meta, ensure_ascii=False, sort_keys=True, default=_json_default)
        if reason is not None:
            row["reason"] = reason
        return row

    def rejected_row(self, rejected: Rejected) -> dict[str, Any]:
        return self.to_row(rejected.doc, rejected.reason)

    def to_table(self, docs: Iterable[Document]) -> pa.Table:
        return pa.Table.from_pylist([self.to_row(d) for d in docs], schema=self.arrow)


def row_to_document(row: dict[str, Any]) -> Document:
    """Rebuild a Document from a row of any stage's schema: unknown columns go back into meta."""
    raw_meta = row.get("meta")
    meta: dict[str, Any] = {}
    if isinstance(raw_meta, str) and raw_meta:
        meta = json.loads(raw_meta)
    elif isinstance(raw_meta, dict):
        meta = dict(raw_meta)
    for key, value in row.items():
        if key not in BASE_NAMES and value is not None:
            meta[key] = value
    return Document(id=str(row["id"]), source=str(row["source"]), text=row["text"], meta=meta)


BASE_SCHEMA = DocumentSchema()
