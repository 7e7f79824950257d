"""C4 stages: the public release as documents, or C4 re-derived from CommonCrawl with its rules.

`--from-cc`, in the order of the reference implementation (TFDS `c4.py`): read WET/WARC ->
page length -> one page per normalized URL (the newest) -> line and page rules -> line dedup
across the whole input -> English (langdetect at 0.99) -> bad words.

The URL dedup is `ExactDedup` keyed by the normalized URL: only the pages whose URL occurs twice
are shuffled whole. The line dedup shuffles compact keys: each line's winner (the smallest
occurrence (url rank, doc id)) comes from a combiner the runner lifts (one accumulator per key
per bundle, so a boilerplate line on millions of pages is no hot key there); the occurrences go
to (line key, salt) groups, 64 salts by doc id, which the winner joins, and the losers (all
occurrences but the winner) go back to their pages by a shuffle keyed by doc id. No set of lines
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
"""Salts a line key's occurrences are spread over: a line on a million pages is decided in 64
groups of ~16k occurrences, not one group of a million on one worker."""

_OCC, _WIN = 0, 1


def _salt(doc_id: str) -> int:
    return zlib.crc32(doc_id.encode("utf-8", "surrogatepass")) % FANOUT


class _WinnerFn(beam.CombineFn):
    """Per key: (smallest occurrence, occurrences capped at 2, mask of the salts holding one).

    A combiner, so the runner lifts it: each bundle sends one accumulator per distinct key
    through the shuffle, and a boilerplate line on a million pages costs one accumulator per
    bundle there, not a million values in one group."""

    def create_accumulator(self) -> tuple[Any, int, int]:
        return (None, 0, 0)

    def add_input(self, acc: tuple[Any, int, int], value: tuple[Any, int]) -> tuple[Any, int, int]:
        winner, n, mask = acc
        occ, salt = tuple(value[0]), value[1]
        return (occ if winner is None or occ < winner else winner, min(n + 1, 2), mask | 1 << salt)

    def merge_accumulators(self, accs: Iterable[tuple[Any, int, int]]) -> tuple[Any, int, int]:
        winner, n, mask = None, 0, 0
        for w, k, m in accs:
            if w is not None and (winner is None or w < winner):
                winner = w
            n, mask = min(n + k, 2), mask | m
        return (winner, n, mask)

    def extract_output(self, acc: tuple[Any, int, int]) -> tuple[Any, int, int]:
        return acc


class _Losers(beam.PTransform):
    """(key, occurrence) -> (doc id, cut) for every occurrence of a key but the smallest.

    The winner of each key comes from a lifted combiner (`_WinnerFn`); it goes only to the salts
    holding an occurrence of a key seen twice; each (key, salt) group then names its losers. The
    result is `c4.iter_losers`' over the whole key, whatever the runner's bundles or order."""

    def __init__(self, what: str, doc_of: Any, cut_of: Any) -> None:
        super().__init__()
        self.what, self.doc_of, self.cut_of = what, doc_of, cut_of

    def expand(self, occurrences):
        doc_of, cut_of = self.doc_of, self.cut_of
        salted = occurrences | f"Salt{self.what}s" >> beam.Map(
            lambda kv: ((kv[0], _salt(doc_of(kv[1]))), (_OCC, kv[1]))
        )
        winners = (
            occurrences
            | f"WithSalt{self.what}s" >> beam.Map(lambda kv: (kv[0], (kv[1], _salt(doc_of(kv[1])))))
            | f"Winner{self.what}s" >> beam.CombinePerKey(_WinnerFn())
            | f"ToSalts{self.what}s" >> beam.FlatMap(_route_winner)
        )
        return (
            (salted, winners)
            | f"Both{self.what}s" >> beam.Flatten()
            | f"Group{self.what}s" >> beam.GroupByKey()
            | "Losers" >> beam.FlatMap(_salt_losers, doc_of, cut_of)
        )


def _route_winner(kv: tuple[Any, tuple[Any, int, int]]):
    key, (winner, n, mask) = kv
    if n < 2:
        return
    salt = 0
    while mask:
        if mask & 1:
            yield (key, salt), (_WIN, winner)
        mask >>= 1
        salt += 1


def _salt_losers(kv: tuple[tuple[Any, int], Iterable[Any]], doc_of: Any, cut_of: Any):
    (key, _), values = kv
    winner = next((tuple(v) for tag, v in values if tag == _WIN), None)
    if winner is None:  # a key seen once
        return
    skipped = False
    for tag, raw in values:
        if tag != _OCC:
            continue
        occ = tuple(raw)
        if occ == winner and not skipped:
            skipped = True
            continue
        yield doc_of(occ), cut_of(key, occ)


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
        cuts = (
            docs
            | f"{self.what}Keys" >> beam.ParDo(self.occurrences)
            | f"{self.what}Losers" >> _Losers(self.what, self.doc_of, self.cut_of)
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
