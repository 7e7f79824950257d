"""Stages over documents users bring (JSON lines or Parquet): read as they are, or with exact
dedup across the whole input; the planner of any source given as `format = "documents"`."""

from __future__ import annotations

from collections.abc import Sequence

from llama_data.beam_jobs.dedup import ExactDedup
from llama_data.beam_jobs.harness import (
    ReadDocuments,
    StageContext,
    StageOutputs,
    StageSpec,
)
from llama_data.beam_jobs.plan import BuildContext, BuildStep, one_step
from llama_data.pipeline.config import SourceConfig
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
        return StageOutputs(
            kept=dedup.kept, rejected=[dedup.rejected], errors=[read.errors, *dedup.errors]
        )

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


def make_read_stage(inputs: Sequence[str], source: str, name: str) -> StageSpec:
    """Read documents and keep them all (a source of your own with `dedup = false`)."""

    def build(p, ctx: StageContext) -> StageOutputs:
        read = p | "Read" >> ReadDocuments(
            inputs, DocumentReader(source), ctx.name, ctx.progress_dir
        )
        return StageOutputs(kept=read.docs, errors=[read.errors])

    return StageSpec(name=name, build=build, inputs=list(inputs), config={"source": source})


def plan(name: str, src: SourceConfig, ctx: BuildContext) -> list[BuildStep]:
    """A source given as documents: read them, and drop exact duplicates unless `dedup = false`."""
    inputs = list(src.inputs)
    if src.dedup:
        return one_step(
            name,
            lambda _ctx: make_dedup_exact_stage(inputs, source=name, name=name),
            "documents -> exact dedup",
            inputs,
        )
    return one_step(name, lambda _ctx: make_read_stage(inputs, name, name), "documents", inputs)
