"""The Stack Exchange stage: posts -> (top sites) -> grouped by question via a shuffle -> text.

Answers meet their question through GroupByKey on `<site>/<question id>`, never an in-memory map
of a site, so a site of any size fits. `--top-sites` counts posts per site with a combiner and
hands the chosen site list to the filter as a side input. Accounting: the reader counts every
post as `in`; answers merged into their question's document are taken off `in` and counted as
`posts.answers_merged`, so `in == kept + rejected + errors` holds in documents.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import apache_beam as beam
from apache_beam.metrics import Metrics

from llama_data.beam_jobs import fs
from llama_data.beam_jobs.harness import (
    ApplySteps,
    ReadDocuments,
    StageContext,
    StageCounters,
    StageOutputs,
    StageSpec,
)
from llama_data.beam_jobs.plan import BuildContext, BuildStep, one_step
from llama_data.pipeline.document import Document, Rejected
from llama_data.pipeline.errors import UserError
from llama_data.pipeline.stackexchange.config import StackExchangeSourceConfig
from llama_data.pipeline.stackexchange.reader import StackExchangeReader, is_meta_site, site_of
from llama_data.pipeline.stackexchange.schema import STACKEXCHANGE_SCHEMA
from llama_data.pipeline.stackexchange.steps import (
    PostFilter,
    PostHtmlToText,
    assemble_question,
    question_key,
    top_sites,
)
from llama_data.pipeline.steps import run_steps


class _TopSitesFilter(beam.DoFn):
    def __init__(self, stage: str) -> None:
        self.stage = stage

    def setup(self) -> None:
        self._skipped = Metrics.counter(self.stage, "se_posts.not_top_site")

    def process(self, doc: Document, keep: list[str]):
        if doc.meta.get("site") in set(keep):
            yield doc
        else:
            self._skipped.inc()
            yield beam.pvalue.TaggedOutput("rejected", Rejected(doc.with_text(""), "not_top_site"))


class _Assemble(beam.DoFn):
    """HTML to text and assembly, after the shuffle: a site read by one worker (a .7z cannot be
    split) still has its posts converted by all of them."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.html = PostHtmlToText()

    def setup(self) -> None:
        self._in = Metrics.counter(self.stage, "in")
        self._merged = Metrics.counter(self.stage, "posts.answers_merged")
        self._questions = Metrics.counter(self.stage, "posts.questions")
        self.html.bind_counters(StageCounters(self.stage))
        self.html.setup()

    def process(self, item: tuple[str, Iterable[Document]]):
        key, posts = item
        posts = list(posts)
        texts: list[Document] = []
        errors = 0
        for out in run_steps([self.html], posts, self.stage):
            if isinstance(out, Document):
                texts.append(out)
            else:  # a post whose HTML cannot be read: a dead letter; its question goes on
                errors += 1
                out.stage = out.stage or self.stage
                yield beam.pvalue.TaggedOutput("errors", out)
        outs = list(assemble_question(key, texts)) if texts else []
        merged = len(posts) - errors - len(outs)
        if merged:
            self._in.dec(merged)
            self._merged.inc(merged)
        for out in outs:
            if isinstance(out, Document):
                self._questions.inc()
                yield out
            else:
                yield beam.pvalue.TaggedOutput("rejected", out)


def make_stackexchange_stage(
    inputs: Sequence[str],
    top_n: int | None = None,
    include_meta: bool = StackExchangeSourceConfig.include_meta,
    name: str = "stackexchange",
    split_bytes: int = StackExchangeSourceConfig.split_mb << 20,
) -> StageSpec:
    """Site archives / Posts.xml to one document per question; `top_n` keeps the largest sites."""
    if top_n is not None and top_n < 1:
        raise UserError(f"--top-sites: must be >= 1, got {top_n}")

    def build(p, ctx: StageContext) -> StageOutputs:
        files = fs.match_inputs(list(inputs))
        meta = sorted({site_of(f.path) for f in files if is_meta_site(site_of(f.path))})
        if not include_meta:
            files = [f for f in files if not is_meta_site(site_of(f.path))]
            ctx.stats["meta_sites_skipped"] = meta
        if not files:
            raise UserError("stackexchange: every input is a meta site (pass --include-meta)")
        ctx.stats["sites"] = sorted({site_of(f.path) for f in files})
        read = p | "Read" >> ReadDocuments(
            files, StackExchangeReader(split_bytes=split_bytes), ctx.name, ctx.progress_dir
        )
        posts = read.docs | "Posts" >> ApplySteps(
            [PostFilter(exclude_meta=not include_meta)], ctx.name
        )
        rejected = [posts.rejected]
        kept_posts = posts.kept
        if top_n is not None:
            chosen = (
                kept_posts
                | "Site" >> beam.Map(lambda d: d.meta["site"])
                | "PostsPerSite" >> beam.combiners.Count.PerElement()
                | "AllCounts" >> beam.combiners.ToList()
                | "TopN" >> beam.Map(lambda counts: top_sites(dict(counts), top_n))
            )
            top = kept_posts | "TopSites" >> beam.ParDo(
                _TopSitesFilter(ctx.name), beam.pvalue.AsSingleton(chosen)
            ).with_outputs("rejected", main="kept")
            kept_posts = top.kept
            rejected.append(top.rejected)
        grouped = (
            kept_posts
            | "ByQuestion" >> beam.Map(lambda d: (question_key(d), d))
            | "Group" >> beam.GroupByKey()
            | "Assemble"
            >> beam.ParDo(_Assemble(ctx.name)).with_outputs("rejected", "errors", main="kept")
        )
        rejected.append(grouped.rejected)
        return StageOutputs(
            kept=grouped.kept,
            rejected=rejected,
            errors=[read.errors, posts.errors, grouped.errors],
        )

    return StageSpec(
        name=name,
        build=build,
        inputs=list(inputs),
        schema=STACKEXCHANGE_SCHEMA,
        config={
            "source": "stackexchange",
            "top_sites": top_n,
            "include_meta": include_meta,
            "split_bytes": split_bytes,
            "answer_order": "score desc (numeric), answer id asc",
        },
    )


def plan(name: str, src: StackExchangeSourceConfig, ctx: BuildContext) -> list[BuildStep]:
    """[sources.stackexchange] (or `llama-data stackexchange`)."""
    inputs = list(src.inputs)
    return one_step(
        name,
        lambda _ctx: make_stackexchange_stage(
            inputs, src.top_sites or None, src.include_meta, name, src.split_mb << 20
        ),
        "Stack Exchange posts -> one document per question",
        inputs,
    )
