"""The Stack Exchange stage's output columns: id is `<site>/<question id>`; score is the
question's."""

from __future__ import annotations

import pyarrow as pa

from llama_data.pipeline.schema import DocumentSchema

STACKEXCHANGE_SCHEMA = DocumentSchema(
    extra=(
        pa.field("site", pa.string()),
        pa.field("question_id", pa.int64()),
        pa.field("title", pa.string()),
        pa.field("score", pa.int64()),
        pa.field("answer_count", pa.int64()),
        pa.field("license", pa.string()),
    )
)
