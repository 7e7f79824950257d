"""Stages over documents users bring (JSON lines or Parquet): exact dedup across the whole input."""

from __future__ import annotations

from collections.abc import Sequence

from llama_data.beam_jobs.dedup import ExactDedup
from llama_data.beam_jobs.harness import (
    ReadDocuments,
    StageContext,
    StageOutputs,
    StageSpec,
)
from llama_data.pipeline.dedup import exact_text_key
from llama_data.pipeline.document import Document
from llama_data.pipeline.io import DocumentReader
from llama_data.pipeline.schema import BASE_SCHEMA


def text_key(doc: Document) -> bytes:
    return exact_text_key(doc.text)


def make_dedup_exact_stage(
    inputs: Sequence[str], source: str = "documents", name: str = "dedup-exact"
) -> StageSpec:
    """Read documents and drop exact duplicates (whitespace-normalized text) across all inputs."""

    def build(p, ctx: StageContext) -> StageOutputs:
        read = p | "Read" >> ReadDocuments(
            inputs, DocumentReader(source), ctx.name, ctx.progress_dir
        )
        dedup = read.docs | "Dedup" >> ExactDedup(
            text_key, ctx.name, kept_files=ctx.kept_files(BASE_SCHEMA)
        )
        return StageOutputs(kept=dedup.kept, rejected=[dedup.rejected], errors=[read.errors])

    return StageSpec(
        name=name,
        build=build,
        inputs=list(inputs),
        config={
            "source": source,
            "dedup": "exact",
            "key": "blake2b-128(whitespace-normalized text)",
        },
    )
