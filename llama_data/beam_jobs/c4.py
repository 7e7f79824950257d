"""C4 stages: the public release as documents, or C4 re-derived from CommonCrawl with its rules.

`--from-cc`, in the order of the reference implementation (TFDS `c4.py`): read WET/WARC ->
page length -> one page per normalized URL (the newest) -> line and page rules -> line dedup
across the whole input -> English (langdetect at 0.99) -> bad words.

The URL dedup is `ExactDedup` keyed by the normalized URL: only the pages whose URL occurs twice
are shuffled whole. The line dedup shuffles compact keys: line key -> occurrences (url rank,
doc id), whose losers (all but the smallest) go back to their pages by a second shuffle keyed by
doc id. A line seen `HOT_IN_BUNDLE` times in one bundle is a hot key: its further occurrences go
to up to 64 (line, salt) groups chosen by doc id, each names its losers but its own smallest,
and those few smallest meet in one small group (a per-bundle pre-aggregation, as combiner
lifting does, without a second shuffle of the lines that are not hot). No set of lines
is held by one process and the winner does not depend on worker count or arrival order. `text_dedup = "spans"` swaps in the three-sentence-span dedup
of the paper's wording, built the same way.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from llama_data.beam_jobs.dedup import ExactDedup
from llama_data.beam_jobs.harness import (
    ApplySteps,
    ReadDocuments,
    StageContext,
    StageOutputs,
    StageSpec,
)
from llama_data.beam_jobs.plan import BuildContext, BuildStep, one_step
from llama_data.pipeline import c4
from llama_data.pipeline.c4.config import C4SourceConfig
from llama_data.pipeline.c4.schema import FROM_CC_SCHEMA, RELEASE_SCHEMA
from llama_data.pipeline.document import Document, Rejected
from llama_data.pipeline.warc import CommonCrawlReader


@dataclass(frozen=True)
class C4Rules:
    """The knobs of `--from-cc` (defaults are the reference implementation's)."""

    badwords: str | None = None  # None: the shipped LDNOOBW English list
    lang: str = "en"
    lang_model: str = "langdetect"  # or "lid176"
    lang_threshold: float | None = None  # None: the model's default (0.99 / LID176_THRESHOLD)
    min_words_per_line: int = c4.MIN_WORDS_PER_LINE
    min_sentences: int = c4.MIN_SENTENCES
    max_word_length: int = c4.MAX_WORD_LENGTH
    max_page_length: int = c4.MAX_PAGE_LENGTH
    dedup_urls: bool = True
    text_dedup: str = "lines"  # "lines" (the reference), "spans" (the paper's wording), "none"

    def __post_init__(self) -> None:
        if self.lang_model not in c4.LANG_MODELS:
            raise ValueError(f"lang_model: {self.lang_model!r} is not one of {c4.LANG_MODELS}")
        if self.text_dedup not in c4.TEXT_DEDUP_MODES:
            raise ValueError(f"text_dedup: {self.text_dedup!r} is not one of {c4.TEXT_DEDUP_MODES}")

    @property
    def threshold(self) -> float:
        if self.lang_threshold is not None:
            return self.lang_threshold
        return c4.LANG_THRESHOLD if self.lang_model == "langdetect" else c4.LID176_THRESHOLD

    def length_steps(self) -> list:
        return [c4.C4LengthStep(self.max_page_length)]

    def clean_steps(self) -> list:
        return [c4.C4CleanStep(self.min_words_per_line, self.min_sentences, self.max_word_length)]

    def final_steps(self) -> list:
        return [
            c4.language_step(self.lang, self.threshold, self.lang_model),
            c4.BadWordsStep(self.badwords),
        ]

    def steps(self) -> list:
        """Every per-page step in order (the stage puts the global dedups between them)."""
        return self.length_steps() + self.clean_steps() + self.final_steps()

    def config(self) -> dict[str, Any]:
        return {
            "badwords": self.badwords or "ldnoobw-en (shipped)",
            "lang": self.lang,
            "lang_model": self.lang_model,
            "lang_threshold": self.threshold,
            "min_words_per_line": self.min_words_per_line,
            "min_sentences": self.min_sentences,
            "max_word_length": self.max_word_length,
            "max_page_length": self.max_page_length,
            "dedup_urls": self.dedup_urls,
            "text_dedup": self.text_dedup,
        }


def _tagged(out: Document | Rejected) -> Any:
    return beam.pvalue.TaggedOutput("rejected", out) if isinstance(out, Rejected) else out


FANOUT = 64
"""Groups a hot key's occurrences are spread over (salt 0 and 1..FANOUT-1, by doc id)."""

HOT_IN_BUNDLE = 8
"""Occurrences of one key within one bundle from which the next ones are salted."""

_MAX_TRACKED = 1 << 20  # keys counted per bundle before the count starts afresh

_MARK = None  # the value (key, 0) gets when the key has salted groups (occurrences are tuples)


def _salt(doc_id: str) -> int:
    return 1 + zlib.crc32(doc_id.encode("utf-8", "surrogatepass")) % (FANOUT - 1)


class _SaltHotKeys(beam.DoFn):
    """(key, occurrence) -> ((key, salt), occurrence), salt 0 unless the key is hot here.

    Per bundle, a key's first `HOT_IN_BUNDLE - 1` occurrences go to salt 0; from then on they go
    to a salt 1..FANOUT-1 chosen by doc id, and (key, 0) gets one marker saying the key has
    salted groups. A boilerplate line on millions of pages is thus decided in up to FANOUT
    groups instead of one; a key seen a few times stays whole in (key, 0), with no extra
    shuffle. Which occurrences get salted depends on the bundles, the result does not
    (`_local_losers` + `_global_losers` name every occurrence but the smallest)."""

    def __init__(self, occurrences: beam.DoFn, doc_of: Any) -> None:
        self.occurrences, self.doc_of = occurrences, doc_of

    def setup(self) -> None:
        self.occurrences.setup()

    def start_bundle(self) -> None:
        self._seen: dict[Any, int] = {}

    def process(self, doc: Document):
        seen = self._seen
        for key, occ in self.occurrences.process(doc):
            n = seen.get(key, 0) + 1
            if len(seen) >= _MAX_TRACKED and n == 1:
                seen.clear()
            seen[key] = n
            if n < HOT_IN_BUNDLE:
                yield (key, 0), occ
                continue
            if n == HOT_IN_BUNDLE:
                yield (key, 0), _MARK
            yield (key, _salt(self.doc_of(occ))), occ


def _local_losers(kv: tuple[tuple[Any, int], Iterable[Any]], doc_of: Any, cut_of: Any):
    """One (key, salt) group: every occurrence but its smallest is a loser (the key's winner is
    at most that one). The smallest is decided here when (key, 0) is the key's only group, else
    sent on (tagged "winners") to meet the other groups' smallest."""
    (key, salt), values = kv
    winner, marked = None, salt != 0
    for raw in values:
        if raw is _MARK:
            marked = True
            continue
        occ = tuple(raw)
        if winner is None or occ < winner:
            winner = occ
    if winner is None:
        return
    skipped = False
    for raw in values:
        if raw is _MARK:
            continue
        occ = tuple(raw)
        if occ == winner and not skipped:
            skipped = True
            continue
        yield doc_of(occ), cut_of(key, occ)
    if marked:
        yield beam.pvalue.TaggedOutput("winners", (key, winner))


def _global_losers(kv: tuple[Any, Iterable[Any]], doc_of: Any, cut_of: Any):
    """A salted key's groups' smallest occurrences (at most FANOUT): all but the smallest lose."""
    key, winners = kv
    occs = sorted(tuple(w) for w in winners)
    for occ in occs[1:]:
        yield doc_of(occ), cut_of(key, occ)


class _Losers(beam.PTransform):
    """Documents -> (doc id, cut) for every occurrence of a key but the smallest (`iter_losers`
    over each key), with hot keys spread over up to FANOUT groups (`_SaltHotKeys`)."""

    def __init__(self, what: str, occurrences: beam.DoFn, doc_of: Any, cut_of: Any) -> None:
        super().__init__()
        self.what, self.occurrences, self.doc_of, self.cut_of = what, occurrences, doc_of, cut_of

    def expand(self, docs):
        local = (
            docs
            | f"{self.what}Keys" >> beam.ParDo(_SaltHotKeys(self.occurrences, self.doc_of))
            | f"Group{self.what}s" >> beam.GroupByKey()
            | "Losers"
            >> beam.FlatMap(_local_losers, self.doc_of, self.cut_of).with_outputs(
                "winners", main="losers"
            )
        )
        salted = (
            local.winners
            | f"Salted{self.what}s" >> beam.GroupByKey()
            | "SaltedLosers" >> beam.FlatMap(_global_losers, self.doc_of, self.cut_of)
        )
        return (local.losers, salted) | f"All{self.what}Losers" >> beam.Flatten()


class _CutDedup(beam.PTransform):
    """A dedup across the input that cuts pieces out of pages: each page's (key, occurrence)
    pairs, `_Losers` names the occurrences to cut (doc id, cut), and the cuts meet their pages
    again for `apply`: `.kept`, `.rejected`."""

    def __init__(
        self, what: str, occurrences: beam.DoFn, doc_of: Any, cut_of: Any, apply: beam.DoFn
    ) -> None:
        super().__init__()
        self.what, self.occurrences, self.apply = what, occurrences, apply
        self.doc_of, self.cut_of = doc_of, cut_of

    def expand(self, docs):
        cuts = docs | f"{self.what}Losers" >> _Losers(
            self.what, self.occurrences, self.doc_of, self.cut_of
        )
        by_id = docs | "ById" >> beam.Map(lambda d: (d.id, d))
        return (
            {"docs": by_id, "cuts": cuts}
            | "JoinCuts" >> beam.CoGroupByKey()
            | "Cut" >> beam.ParDo(self.apply).with_outputs("rejected", main="kept")
        )


class _LineOccurrences(beam.DoFn):
    def process(self, doc: Document):
        yield from c4.line_occurrences(doc)


def _line_doc(occ: Any) -> str:
    return occ[1]  # (url rank, doc id)


def _line_cut(key: Any, _occ: Any) -> Any:
    return key


class _ApplyLineCuts(beam.DoFn):
    def __init__(self, stage: str, min_sentences: int) -> None:
        self.stage = stage
        self.min_sentences = min_sentences

    def setup(self) -> None:
        self._global = Metrics.counter(self.stage, "line_dedup.global_duplicate")
        self._local = Metrics.counter(self.stage, "line_dedup.local_duplicate")
        self._docs = Metrics.counter(self.stage, "line_dedup.docs_cut")

    def process(self, item: tuple[str, dict[str, Iterable[Any]]]):
        _, grouped = item
        losing = set(grouped["cuts"])
        for doc in grouped["docs"]:
            out, cut = c4.apply_line_cuts(doc, losing, self.min_sentences)
            self._global.inc(cut.global_duplicates)
            self._local.inc(cut.local_duplicates)
            if cut.global_duplicates or cut.local_duplicates:
                self._docs.inc()
            yield _tagged(out)


class LineDedup(_CutDedup):
    """Keep every line on one page of the input (`remove_duplicate_text`): `.kept`, `.rejected`."""

    def __init__(self, stage: str, min_sentences: int = c4.MIN_SENTENCES) -> None:
        super().__init__(
            "Line", _LineOccurrences(), _line_doc, _line_cut, _ApplyLineCuts(stage, min_sentences)
        )


class _SpanOccurrences(beam.DoFn):
    def process(self, doc: Document):
        for pos, key in enumerate(c4.span_keys(doc.text)):
            yield key, (doc.id, pos)


def _span_doc(occ: Any) -> str:
    return occ[0]  # (doc id, span position)


def _span_cut(_key: Any, occ: Any) -> int:
    return occ[1]


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
            yield _tagged(out)


class SpanDedup(_CutDedup):
    """Keep one occurrence of every three-sentence span across the input: `.kept`, `.rejected`."""

    def __init__(self, stage: str, min_sentences: int = c4.MIN_SENTENCES) -> None:
        super().__init__(
            "Span", _SpanOccurrences(), _span_doc, _span_cut, _ApplyCuts(stage, min_sentences)
        )


def make_c4_stage(
    inputs: Sequence[str],
    from_cc: bool = C4SourceConfig.from_cc,
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
        rejected, errors = [], [read.errors]
        length = read.docs | "Length" >> ApplySteps(rules.length_steps(), ctx.name)
        rejected.append(length.rejected)
        errors.append(length.errors)
        pages = [length.kept]
        if rules.dedup_urls:
            urls = length.kept | "UrlDedup" >> ExactDedup(
                c4.url_key,
                ctx.name,
                order_fn=c4.newest_first,
                reason="duplicate_url",
                name_winner=False,
            )
            rejected.append(urls.rejected)
            pages = list(urls.kept)  # unique pages and the newest of each contested URL
        cleaned = []
        for i, part in enumerate(pages):
            clean = part | f"Clean{i}" >> ApplySteps(rules.clean_steps(), ctx.name)
            cleaned.append(clean.kept)
            rejected.append(clean.rejected)
            errors.append(clean.errors)
        # flattened once the rules have cut the pages down to the lines they keep
        pages = cleaned[0] if len(cleaned) == 1 else tuple(cleaned) | "Cleaned" >> beam.Flatten()
        if rules.text_dedup != "none":
            dedup_cls = LineDedup if rules.text_dedup == "lines" else SpanDedup
            dedup = pages | "TextDedup" >> dedup_cls(ctx.name, rules.min_sentences)
            rejected.append(dedup.rejected)
            pages = dedup.kept
        final = pages | "Final" >> ApplySteps(rules.final_steps(), ctx.name)
        rejected.append(final.rejected)
        errors.append(final.errors)
        return StageOutputs(kept=final.kept, rejected=rejected, errors=errors)

    return StageSpec(
        name=name,
        build=build_from_cc,
        inputs=list(inputs),
        config={"mode": "from_cc", **rules.config()},
        schema=FROM_CC_SCHEMA,
    )


def plan(name: str, src: C4SourceConfig, ctx: BuildContext) -> list[BuildStep]:
    """[sources.c4] (or `llama-data c4`): the release read as is, or C4 re-derived from CC."""
    rules = C4Rules(
        badwords=src.badwords,
        lang_model=src.lang_model,
        lang_threshold=src.lang_threshold,
        min_words_per_line=src.min_words_per_line,
        min_sentences=src.min_sentences,
        max_page_length=src.max_page_length,
        dedup_urls=src.dedup_urls,
        text_dedup=src.text_dedup,
    )
    inputs = list(src.inputs)
    return one_step(
        name,
        lambda _ctx: make_c4_stage(inputs, src.from_cc, rules, name),
        "WET/WARC -> C4 rules -> line dedup" if src.from_cc else "C4 release json.gz",
        inputs,
    )
