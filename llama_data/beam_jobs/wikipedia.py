"""The Wikipedia stage: dumps -> pages (split at bz2 stream offsets) -> filter -> clean wikitext."""

from __future__ import annotations

from collections.abc import Sequence

from llama_data.beam_jobs.build import BuildContext, BuildStep, register_source_planner
from llama_data.beam_jobs.harness import (
    ApplySteps,
    ReadDocuments,
    StageContext,
    StageOutputs,
    StageSpec,
)
from llama_data.pipeline.config import SourceConfig
from llama_data.pipeline.wikipedia import (
    PAPER_LANGUAGES,
    CleanWikitext,
    WikipediaPageFilter,
    WikipediaReader,
)
from llama_data.pipeline.wikipedia.reader import DEFAULT_SPLIT_BYTES
from llama_data.pipeline.wikipedia.schema import WIKIPEDIA_SCHEMA


def make_wikipedia_stage(
    inputs: Sequence[str],
    languages: Sequence[str] | None = PAPER_LANGUAGES,
    name: str = "wikipedia",
    split_bytes: int = DEFAULT_SPLIT_BYTES,
    use_index: bool = True,
    min_chars: int = 1,
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


@register_source_planner("wikipedia")
def plan_wikipedia(name: str, src: SourceConfig, ctx: BuildContext) -> list[BuildStep]:
    inputs = list(src.inputs)
    languages = list(getattr(src, "languages", PAPER_LANGUAGES)) or None
    split_bytes = int(getattr(src, "split_mb", DEFAULT_SPLIT_BYTES >> 20)) << 20
    use_index = bool(getattr(src, "use_index", True))
    min_chars = int(getattr(src, "min_chars", 1))
    indexes = list(getattr(src, "indexes", []))
    return [
        BuildStep(
            name,
            lambda _ctx: make_wikipedia_stage(
                inputs, languages, name, split_bytes, use_index, min_chars, indexes
            ),
            describe="MediaWiki dumps -> articles as clean text",
            inputs=inputs,
        )
    ]
