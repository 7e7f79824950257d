"""The Wikipedia stage's output columns: id is `<dbname>/<page id>` (`enwiki/12`)."""

from __future__ import annotations

import pyarrow as pa

from llama_data.pipeline.schema import DocumentSchema

WIKIPEDIA_SCHEMA = DocumentSchema(
    extra=(
        pa.field("title", pa.string()),
        pa.field("lang", pa.string()),
        pa.field("url", pa.string()),
        pa.field("revision_id", pa.int64()),
        pa.field("timestamp", pa.string()),
    )
)
