"""The CCNet stage's output columns (cc_net's JSON fields, typed)."""

from __future__ import annotations

import pyarrow as pa

from llama_data.pipeline.schema import DocumentSchema

CCNET_SCHEMA = DocumentSchema(
    extra=(
        pa.field("url", pa.string()),
        pa.field("date", pa.string()),
        pa.field("digest", pa.string()),
        pa.field("title", pa.string()),
        pa.field("nlines", pa.int32()),
        pa.field("length", pa.int32()),
        pa.field("original_nlines", pa.int32()),
        pa.field("original_length", pa.int32()),
        pa.field("language", pa.string()),
        pa.field("language_score", pa.float32()),
        pa.field("perplexity", pa.float32()),
        pa.field("bucket", pa.string()),
    )
)
