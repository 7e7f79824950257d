"""The C4 stage's output columns: the public release's (`RELEASE_SCHEMA`) and `--from-cc`'s
(`FROM_CC_SCHEMA`)."""

from __future__ import annotations

import pyarrow as pa

from llama_data.pipeline.schema import DocumentSchema

RELEASE_SCHEMA = DocumentSchema(
    extra=(pa.field("url", pa.string()), pa.field("timestamp", pa.string()))
)
FROM_CC_SCHEMA = DocumentSchema(
    extra=(
        pa.field("url", pa.string()),
        pa.field("date", pa.string()),
        pa.field("language", pa.string()),
        pa.field("language_score", pa.float64()),
        pa.field("nlines", pa.int64()),
        pa.field("original_nlines", pa.int64()),
        pa.field("duplicate_lines", pa.int64()),
        pa.field("duplicate_spans", pa.int64()),
    )
)
