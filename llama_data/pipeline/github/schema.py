"""The GitHub stage's output columns; `meta` (JSON) keeps ref, mode, blob_id, size, binary,
copies."""

from __future__ import annotations

import pyarrow as pa

from llama_data.pipeline.schema import DocumentSchema

GITHUB_SCHEMA = DocumentSchema(
    extra=(
        pa.field("repo_name", pa.string()),
        pa.field("path", pa.string()),
        pa.field("license", pa.string()),
        pa.field("language", pa.string()),
    )
)
