"""The arXiv stage: containers (bulk tars, per-paper archives, folders) -> cleaned LaTeX.

Each input file is one unit of work (a bulk tar holds ~1-2k papers and is streamed, since
`s3://arxiv/src/` objects are read through Beam's S3 filesystem without seeking). Extracted
paper folders are expanded in the driver (`expand_inputs`): Beam's file matching lists files only.
"""

from __future__ import annotations

from collections.abc import Sequence

from llama_data.beam_jobs.harness import (
    ApplySteps,
    ReadDocuments,
    StageContext,
    StageOutputs,
    StageSpec,
)
from llama_data.beam_jobs.plan import BuildContext, BuildStep, one_step
from llama_data.beam_jobs.s3 import enable_requester_pays
from llama_data.pipeline.arxiv import ArxivClean, ArxivReader, Limits
from llama_data.pipeline.arxiv.archive import expand_inputs, folders_fingerprint
from llama_data.pipeline.arxiv.config import ArxivSourceConfig
from llama_data.pipeline.arxiv.schema import ARXIV_SCHEMA
from llama_data.pipeline.io import FileSplit, OpenRaw, ReadResult


class RequesterPaysArxivReader(ArxivReader):
    """The arXiv reader for requester-pays buckets: each worker process enables the S3 hook."""

    def read(self, split: FileSplit, open_raw: OpenRaw) -> ReadResult:
        if split.path.startswith("s3://"):
            enable_requester_pays()
        yield from super().read(split, open_raw)


def make_arxiv_stage(
    inputs: Sequence[str],
    name: str = "arxiv",
    max_input_depth: int = ArxivSourceConfig.max_input_depth,
    max_macro_depth: int = ArxivSourceConfig.max_macro_depth,
    max_paper_mb: int = ArxivSourceConfig.max_paper_mb,
    requester_pays: bool = ArxivSourceConfig.requester_pays,
) -> StageSpec:
    """arXiv sources -> one cleaned LaTeX document per paper (LLaMA §2.1).

    `requester_pays` is for `s3://arxiv/src/` (the requester pays for the transfer).
    """
    paths = expand_inputs(inputs)
    limits = Limits(max_paper_bytes=max_paper_mb << 20)
    reader_cls = RequesterPaysArxivReader if requester_pays else ArxivReader
    reader = reader_cls(limits=limits, max_depth=max_input_depth)
    if requester_pays:
        enable_requester_pays()  # the driver lists and sizes the inputs too

    def build(p, ctx: StageContext) -> StageOutputs:
        read = p | "Read" >> ReadDocuments(paths, reader, ctx.name, ctx.progress_dir)
        cleaned = read.docs | "Clean" >> ApplySteps([ArxivClean(max_macro_depth)], ctx.name)
        return StageOutputs(
            kept=cleaned.kept, rejected=[cleaned.rejected], errors=[read.errors, cleaned.errors]
        )

    return StageSpec(
        name=name,
        build=build,
        inputs=paths,
        schema=ARXIV_SCHEMA,
        config={
            "source": "arxiv",
            "max_input_depth": max_input_depth,
            "max_macro_depth": max_macro_depth,
            "max_paper_mb": max_paper_mb,
            "requester_pays": requester_pays,
            "folders": folders_fingerprint(paths),
        },
    )


def plan(name: str, src: ArxivSourceConfig, ctx: BuildContext) -> list[BuildStep]:
    """[sources.arxiv] (or `llama-data arxiv`)."""
    inputs = expand_inputs(src.inputs)
    return one_step(
        name,
        lambda _ctx: make_arxiv_stage(
            inputs,
            name=name,
            max_input_depth=src.max_input_depth,
            max_macro_depth=src.max_macro_depth,
            max_paper_mb=src.max_paper_mb,
            requester_pays=src.requester_pays,
        ),
        "arXiv sources -> cleaned LaTeX",
        inputs,
    )
