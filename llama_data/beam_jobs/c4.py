"""C4 stages: the public release as documents, or C4 re-derived from CommonCrawl with its rules.

`--from-cc`: Read WET/WARC -> line and page rules -> English (lid.176) -> bad words ->
three-sentence-span dedup across the whole input. The span dedup is two shuffles keyed by
compact keys: span key -> occurrences (doc id, position), whose losers (all but the smallest) go
back to their documents by a second shuffle keyed by doc id. No set of spans is held by one
process and the winner does not depend on worker count or arrival order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from llama_data.beam_jobs.build import BuildContext, BuildStep, register_source_planner
from llama_data.beam_jobs.harness import (
    ApplySteps,
    ReadDocuments,
    StageContext,
    StageOutputs,
    StageSpec,
)
from llama_data.pipeline import c4
from llama_data.pipeline.config import SourceConfig
from llama_data.pipeline.document import Document, Rejected
from llama_data.pipeline.schema import DocumentSchema
from llama_data.pipeline.warc import CommonCrawlReader

RELEASE_SCHEMA = DocumentSchema(
    extra=(pa.field("url", pa.string()), pa.field("timestamp", pa.string()))
)
FROM_CC_SCHEMA = DocumentSchema(
    extra=(
        pa.field("url", pa.string()),
        pa.field("date", pa.string()),
        pa.field("language", pa.string()),
        pa.field("language_score", pa.float64()),
        pa.field("nlines", pa.int64()),
        pa.field("original_nlines", pa.int64()),
        pa.field("duplicate_spans", pa.int64()),
    )
)


@dataclass(frozen=True)
class C4Rules:
    """The knobs of `--from-cc` (defaults are the C4 paper's)."""

    badwords: str | None = None  # None: the shipped LDNOOBW English list
    lang: str = "en"
    lang_threshold: float = c4.LANG_THRESHOLD
    min_words_per_line: int = c4.MIN_WORDS_PER_LINE
    min_sentences: int = c4.MIN_SENTENCES
    max_word_length: int = c4.MAX_WORD_LENGTH
    dedup_spans: bool = True

    def steps(self) -> list:
        return [
            c4.C4CleanStep(self.min_words_per_line, self.min_sentences, self.max_word_length),
            c4.language_step(self.lang, self.lang_threshold),
            c4.BadWordsStep(self.badwords),
        ]

    def config(self) -> dict[str, Any]:
        return {
            "badwords": self.badwords or "ldnoobw-en (shipped)",
            "lang": self.lang,
            "lang_threshold": self.lang_threshold,
            "min_words_per_line": self.min_words_per_line,
            "min_sentences": self.min_sentences,
            "max_word_length": self.max_word_length,
            "dedup_spans": self.dedup_spans,
        }


class _SpanOccurrences(beam.DoFn):
    def process(self, doc: Document):
        for pos, key in enumerate(c4.span_keys(doc.text)):
            yield key, (doc.id, pos)


class _ApplyCuts(beam.DoFn):
    def __init__(self, stage: str, min_sentences: int) -> None:
        self.stage = stage
        self.min_sentences = min_sentences

    def setup(self) -> None:
        self._cut_spans = Metrics.counter(self.stage, "span_dedup.spans_cut")
        self._cut_docs = Metrics.counter(self.stage, "span_dedup.docs_cut")

    def process(self, item: tuple[str, dict[str, Iterable[Any]]]):
        _, grouped = item
        positions = sorted(set(grouped["cuts"]))
        for doc in grouped["docs"]:
            out = c4.apply_span_cuts(doc, positions, self.min_sentences)
            if positions:
                self._cut_spans.inc(len(positions))
                self._cut_docs.inc()
            if isinstance(out, Rejected):
                yield beam.pvalue.TaggedOutput("rejected", out)
            else:
                yield out


class SpanDedup(beam.PTransform):
    """Keep one occurrence of every three-sentence span across the input: `.kept`, `.rejected`."""

    def __init__(self, stage: str, min_sentences: int = c4.MIN_SENTENCES) -> None:
        super().__init__()
        self.stage = stage
        self.min_sentences = min_sentences

    def expand(self, docs):
        cuts = (
            docs
            | "SpanKeys" >> beam.ParDo(_SpanOccurrences())
            | "GroupSpans" >> beam.GroupByKey()
            | "Losers" >> beam.FlatMap(lambda kv: c4.iter_span_losers(kv[1]))
        )
        by_id = docs | "ById" >> beam.Map(lambda d: (d.id, d))
        out = (
            {"docs": by_id, "cuts": cuts}
            | "JoinCuts" >> beam.CoGroupByKey()
            | "Cut"
            >> beam.ParDo(_ApplyCuts(self.stage, self.min_sentences)).with_outputs(
                "rejected", main="kept"
            )
        )
        return out


def make_c4_stage(
    inputs: Sequence[str],
    from_cc: bool = False,
    rules: C4Rules = C4Rules(),
    name: str = "c4",
) -> StageSpec:
    """The public release read unchanged, or (`from_cc`) C4 re-derived from WET/WARC files."""
    if not from_cc:

        def build_release(p, ctx: StageContext) -> StageOutputs:
            read = p | "Read" >> ReadDocuments(
                inputs, c4.C4JsonReader(), ctx.name, ctx.progress_dir
            )
            return StageOutputs(kept=read.docs, errors=[read.errors])

        return StageSpec(
            name=name,
            build=build_release,
            inputs=list(inputs),
            config={"mode": "release"},
            schema=RELEASE_SCHEMA,
        )

    def build_from_cc(p, ctx: StageContext) -> StageOutputs:
        read = p | "Read" >> ReadDocuments(
            inputs, CommonCrawlReader(source=c4.SOURCE), ctx.name, ctx.progress_dir
        )
        ruled = read.docs | "Rules" >> ApplySteps(rules.steps(), ctx.name)
        if not rules.dedup_spans:
            return StageOutputs(
                kept=ruled.kept, rejected=[ruled.rejected], errors=[read.errors, ruled.errors]
            )
        dedup = ruled.kept | "SpanDedup" >> SpanDedup(ctx.name, rules.min_sentences)
        return StageOutputs(
            kept=dedup.kept,
            rejected=[ruled.rejected, dedup.rejected],
            errors=[read.errors, ruled.errors],
        )

    return StageSpec(
        name=name,
        build=build_from_cc,
        inputs=list(inputs),
        config={"mode": "from_cc", **rules.config()},
        schema=FROM_CC_SCHEMA,
    )


@register_source_planner("c4")
def plan_c4(name: str, src: SourceConfig, ctx: BuildContext) -> list[BuildStep]:
    inputs = list(src.inputs)
    from_cc = bool(getattr(src, "from_cc", False))
    rules = C4Rules(
        badwords=getattr(src, "badwords", None),
        lang_threshold=float(getattr(src, "lang_threshold", c4.LANG_THRESHOLD)),
        min_words_per_line=int(getattr(src, "min_words_per_line", c4.MIN_WORDS_PER_LINE)),
        min_sentences=int(getattr(src, "min_sentences", c4.MIN_SENTENCES)),
        dedup_spans=bool(getattr(src, "dedup_spans", True)),
    )
    return [
        BuildStep(
            name,
            lambda _ctx: make_c4_stage(inputs, from_cc, rules, name),
            describe="WET/WARC -> C4 rules -> span dedup" if from_cc else "C4 release json.gz",
            inputs=inputs,
        )
    ]
