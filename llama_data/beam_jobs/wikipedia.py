"""The Wikipedia stage: dumps -> pages (split at bz2 stream offsets) -> filter -> clean wikitext."""

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
from llama_data.pipeline.wikipedia import (
    PAPER_LANGUAGES,
    CleanWikitext,
    WikipediaPageFilter,
    WikipediaReader,
)
from llama_data.pipeline.wikipedia.config import WikipediaSourceConfig
from llama_data.pipeline.wikipedia.schema import WIKIPEDIA_SCHEMA


def make_wikipedia_stage(
    inputs: Sequence[str],
    languages: Sequence[str] | None = PAPER_LANGUAGES,
    name: str = "wikipedia",
    split_bytes: int = WikipediaSourceConfig.split_mb << 20,
    use_index: bool = WikipediaSourceConfig.use_index,
    min_chars: int = WikipediaSourceConfig.min_chars,
    index_paths: Sequence[str] = (),
) -> StageSpec:
    """MediaWiki XML dumps to clean article text; `languages=None` keeps every language."""
    langs = None if languages is None else sorted(set(languages))

    def build(p, ctx: StageContext) -> StageOutputs:
        reader = WikipediaReader(
            split_bytes=split_bytes, use_index=use_index, index_paths=index_paths
        )
        read = p | "Read" >> ReadDocuments(inputs, reader, ctx.name, ctx.progress_dir)
        steps = read.docs | "Clean" >> ApplySteps(
            [WikipediaPageFilter(langs), CleanWikitext(min_chars=min_chars)], ctx.name
        )
        return StageOutputs(
            kept=steps.kept, rejected=[steps.rejected], errors=[read.errors, steps.errors]
        )

    return StageSpec(
        name=name,
        build=build,
        inputs=list(inputs),
        schema=WIKIPEDIA_SCHEMA,
        config={
            "source": "wikipedia",
            "languages": langs,
            "split_bytes": split_bytes,
            "use_index": use_index,
            "min_chars": min_chars,
            "namespaces": [0],
            "index_paths": sorted(index_paths),
        },
    )


def plan(name: str, src: WikipediaSourceConfig, ctx: BuildContext) -> list[BuildStep]:
    """[sources.wikipedia] (or `llama-data wikipedia`); `languages = []` keeps every language."""
    inputs = list(src.inputs)
    return one_step(
        name,
        lambda _ctx: make_wikipedia_stage(
            inputs,
            list(src.languages) or None,
            name,
            src.split_mb << 20,
            src.use_index,
            src.min_chars,
            list(src.indexes),
        ),
        "MediaWiki dumps -> articles as clean text",
        inputs,
    )
