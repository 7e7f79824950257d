"""The books stage's output columns; `near_duplicate_of` and `overlap` are set on a book the
near-dedup drops."""

from __future__ import annotations

import pyarrow as pa

from llama_data.pipeline.schema import DocumentSchema

BOOKS_SCHEMA = DocumentSchema(
    extra=(
        pa.field("title", pa.string()),
        pa.field("author", pa.string()),
        pa.field("near_duplicate_of", pa.string()),
        pa.field("overlap", pa.float64()),
    )
)
