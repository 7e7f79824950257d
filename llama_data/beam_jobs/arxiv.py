"""The arXiv stage: containers (bulk tars, per-paper archives, folders) -> cleaned LaTeX.

Each input file is one unit of work (a bulk tar holds ~1-2k papers and is streamed, since
`s3://arxiv/src/` objects are read through Beam's S3 filesystem without seeking). Extracted
paper folders are expanded here, in the driver, because Beam's file matching lists files only.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence

import pyarrow as pa

from llama_data.beam_jobs.harness import (
    ApplySteps,
    ReadDocuments,
    StageContext,
    StageOutputs,
    StageSpec,
)
from llama_data.pipeline.arxiv import ArxivClean, ArxivReader, Limits
from llama_data.pipeline.arxiv.archive import paper_directories
from llama_data.pipeline.errors import UserError
from llama_data.pipeline.schema import DocumentSchema

ARXIV_SCHEMA = DocumentSchema(
    extra=(pa.field("arxiv_id", pa.string()), pa.field("main_file", pa.string()))
)


def expand_inputs(patterns: Sequence[str]) -> list[str]:
    """Files and globs stay as they are; local folders become their paper folders."""
    out: list[str] = []
    for pattern in patterns:
        if "://" in pattern:
            out.append(pattern)
            continue
        if os.path.isdir(pattern):
            papers = paper_directories(pattern)
            if not papers:
                raise UserError(f"input {pattern!r}: a folder without .tex files")
            out += papers
            continue
        hits = sorted(glob.glob(pattern))
        dirs = [h for h in hits if os.path.isdir(h)]
        if dirs:
            for d in dirs:
                out += paper_directories(d)
            out += [h for h in hits if os.path.isfile(h)]
        else:
            out.append(pattern)
    return out


def make_arxiv_stage(
    inputs: Sequence[str],
    name: str = "arxiv",
    max_input_depth: int = 16,
    max_macro_depth: int = 32,
    max_paper_mb: int = 256,
) -> StageSpec:
    """arXiv sources -> one cleaned LaTeX document per paper (LLaMA §2.1)."""
    paths = expand_inputs(inputs)
    limits = Limits(max_paper_bytes=max_paper_mb << 20)
    reader = ArxivReader(limits=limits, max_depth=max_input_depth)

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
        },
    )
