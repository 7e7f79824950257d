"""The arXiv stage's output columns."""

from __future__ import annotations

import pyarrow as pa

from llama_data.pipeline.schema import DocumentSchema

ARXIV_SCHEMA = DocumentSchema(
    extra=(pa.field("arxiv_id", pa.string()), pa.field("main_file", pa.string()))
)
