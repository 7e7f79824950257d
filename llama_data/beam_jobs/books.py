"""The books stage: read Gutenberg/Books3 -> drop empty books -> book-level near-dedup.

Near-dedup at scale never builds one in-memory LSH index. Candidate pairs come from a shuffle
keyed by LSH Ensemble band keys (12 bytes: size partition, rows, band index, hash of the band's
values): each book emits index keys for its own size partition and query keys for its own and
larger partitions, so a book inside a longer one (a compilation) meets it in a bucket even though
their Jaccard is low. Each pair is verified on the two books' shingle sets (joined by id, two
CoGroupByKeys); the verified pairs, few by nature, are resolved into verdicts in one place
(`cluster_verdicts`), and the verdicts go back to every book as a side input. All logic lives in
`llama_data.pipeline.books` (`dedup.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import apache_beam as beam
from apache_beam.metrics import Metrics

from llama_data.beam_jobs.harness import (
    ApplySteps,
    ReadDocuments,
    StageContext,
    StageOutputs,
    StageSpec,
)
from llama_data.beam_jobs.plan import BuildContext, BuildStep, one_step
from llama_data.pipeline.books.config import BooksSourceConfig
from llama_data.pipeline.books.dedup import (
    BookSketch,
    MinHasher,
    MinHashParams,
    cluster_verdicts,
    ensemble_keys,
    rejection,
    sketch,
    verify,
)
from llama_data.pipeline.books.reader import BooksReader
from llama_data.pipeline.books.schema import BOOKS_SCHEMA
from llama_data.pipeline.books.steps import BookFilter
from llama_data.pipeline.document import Document
from llama_data.pipeline.sketches import Histogram, RecordSpec

# the verified overlap of each book dropped as a near-duplicate (threshold 0.9 by default)
OVERLAP = Histogram("overlap", "overlap", 0.5, 1.0, 50, label="verified shingle overlap")

# A bucket whose queries x indexed books exceed this proposes a star (every member with the
# smallest id) instead of all pairs, so one boilerplate-heavy bucket (many copies of one text)
# cannot produce a quadratic number of candidates. 20,000 ~ all pairs of 200 books.
MAX_BUCKET_PAIRS = 20_000


class _SketchFn(beam.DoFn):
    def __init__(self, params: MinHashParams, stage: str) -> None:
        self.params = params
        self.stage = stage

    def setup(self) -> None:
        self._hasher = MinHasher(self.params.num_perm, self.params.seed)
        self._sketched = Metrics.counter(self.stage, "near_dedup.sketched")

    def process(self, doc: Document):
        s = sketch(doc.id, doc.text, self.params, self._hasher)
        self._sketched.inc()
        yield s.id, s


def _ensemble_entries(item: tuple[str, BookSketch], params: MinHashParams):
    """(key, (is_query, id)) for each of a book's LSH Ensemble index and query keys."""
    doc_id, s = item
    keys = ensemble_keys(s.shingle_count, s.signature, params)
    for key in keys.index:
        yield key, (False, doc_id)
    for key in keys.query:
        yield key, (True, doc_id)


def _roles(members: Sequence[tuple[bool, str]]) -> tuple[list[str], list[str]]:
    return sorted({i for q, i in members if q}), sorted({i for q, i in members if not q})


def _bucket_pairs(item: tuple[bytes, Sequence[tuple[bool, str]]]):
    """Each query in a bucket with each indexed book (a pair once, smaller id first)."""
    _, members = item
    queries, indexed = _roles(members)
    if not queries or not indexed:
        return
    if len(queries) * len(indexed) <= MAX_BUCKET_PAIRS:
        seen = set()
        for a in queries:
            for b in indexed:
                pair = (a, b) if a < b else (b, a)
                if a != b and pair not in seen:
                    seen.add(pair)
                    yield pair
    else:
        everyone = sorted(set(queries) | set(indexed))
        for b in everyone[1:]:
            yield everyone[0], b


class _BucketPairsFn(beam.DoFn):
    """`_bucket_pairs`, counting the buckets that fell back to a star (`near_dedup.hot_buckets`)."""

    def __init__(self, stage: str) -> None:
        self.stage = stage

    def setup(self) -> None:
        self._hot = Metrics.counter(self.stage, "near_dedup.hot_buckets")

    def process(self, item):
        key, members = item
        members = list(members)
        queries, indexed = _roles(members)
        if len(queries) * len(indexed) > MAX_BUCKET_PAIRS:
            self._hot.inc()
        yield from _bucket_pairs((key, members))


def _attach_left(item):
    """(a, {pairs: [b...], sketch: [sketch_a]}) -> (b, (a, sketch_a)) for each partner b."""
    _, grouped = item
    sketches = list(grouped["sketch"])
    if not sketches:
        return
    left = sketches[0]
    for b in sorted(set(grouped["pairs"])):
        yield b, left


class _VerifyFn(beam.DoFn):
    def __init__(self, threshold: float, stage: str) -> None:
        self.threshold = threshold
        self.stage = stage

    def setup(self) -> None:
        self._candidates = Metrics.counter(self.stage, "near_dedup.candidate_pairs")
        self._verified = Metrics.counter(self.stage, "near_dedup.verified_pairs")

    def process(self, item):
        _, grouped = item
        rights = list(grouped["sketch"])
        if not rights:
            return
        right = rights[0]
        for left in grouped["lefts"]:
            self._candidates.inc()
            pair = verify(left, right, self.threshold)
            if pair is not None:
                self._verified.inc()
                yield {
                    **asdict(pair),
                    "len_a": _length(left, right, pair.a),
                    "len_b": _length(left, right, pair.b),
                }


def _length(x: BookSketch, y: BookSketch, doc_id: str) -> int:
    return x.length if x.id == doc_id else y.length


def _verdicts(rows: list[dict], stage: str) -> dict:
    """The verified pairs resolved into verdicts; each cluster's size (its keeper and the
    books dropped for it) counted as `near_dedup.cluster_size.<n>` for the report."""
    from llama_data.pipeline.books.dedup import VerifiedPair

    pairs = [
        VerifiedPair(r["a"], r["b"], r["overlap"], r["jaccard"], r["a_in_b"], r["b_in_a"])
        for r in rows
    ]
    lengths = {r["a"]: r["len_a"] for r in rows} | {r["b"]: r["len_b"] for r in rows}
    verdicts = cluster_verdicts(pairs, lengths)
    dropped: dict[str, int] = {}
    for v in verdicts.values():
        dropped[v.keeper] = dropped.get(v.keeper, 0) + 1
    sizes: dict[int, int] = {}
    for n in dropped.values():
        sizes[n + 1] = sizes.get(n + 1, 0) + 1
    for size, n in sizes.items():
        Metrics.counter(stage, f"near_dedup.cluster_size.{size}").inc(n)
    return verdicts


class _ApplyVerdictFn(beam.DoFn):
    def process(self, doc: Document, verdicts: dict):
        verdict = verdicts.get(doc.id)
        if verdict is None:
            yield doc
        else:
            yield beam.pvalue.TaggedOutput("rejected", rejection(doc, verdict))


class NearDedupBooks(beam.PTransform):
    """docs -> `.kept` and `.rejected` (`near_duplicate_of:<keeper>`, overlap in meta)."""

    def __init__(self, params: MinHashParams, stage: str) -> None:
        super().__init__()
        self.params = params
        self.stage = stage

    def expand(self, docs):
        params = self.params
        sketches = docs | "Sketch" >> beam.ParDo(_SketchFn(params, self.stage))
        pairs = (
            sketches
            | "EnsembleKeys" >> beam.FlatMap(_ensemble_entries, params)
            | "GroupByBand" >> beam.GroupByKey()
            | "BucketPairs" >> beam.ParDo(_BucketPairsFn(self.stage))
            | "DistinctPairs" >> beam.Distinct()
        )
        lefts = (
            {"pairs": pairs, "sketch": sketches}
            | "JoinLeft" >> beam.CoGroupByKey()
            | "AttachLeft" >> beam.FlatMap(_attach_left)
        )
        verified = (
            {"lefts": lefts, "sketch": sketches}
            | "JoinRight" >> beam.CoGroupByKey()
            | "Verify" >> beam.ParDo(_VerifyFn(params.threshold, self.stage))
        )
        verdicts = (
            verified
            | "AllPairs" >> beam.combiners.ToList()
            | "Cluster" >> beam.Map(_verdicts, self.stage)
        )
        out = docs | "Apply" >> beam.ParDo(
            _ApplyVerdictFn(), beam.pvalue.AsSingleton(verdicts)
        ).with_outputs("rejected", main="kept")
        return out


def make_books_stage(
    inputs: Sequence[str],
    params: MinHashParams | None = None,
    name: str = "books",
    dedup: bool = BooksSourceConfig.dedup,
) -> StageSpec:
    """Gutenberg/Books3 -> licence stripped, empty books rejected, near-duplicates removed."""
    params = params or MinHashParams()

    def build(p, ctx: StageContext) -> StageOutputs:
        read = p | "Read" >> ReadDocuments(inputs, BooksReader(), ctx.name, ctx.progress_dir)
        filtered = read.docs | "Filter" >> ApplySteps([BookFilter()], ctx.name)
        if not dedup:
            return StageOutputs(
                kept=filtered.kept,
                rejected=[filtered.rejected],
                errors=[read.errors, filtered.errors],
            )
        near = filtered.kept | "NearDedup" >> NearDedupBooks(params, ctx.name)
        ctx.stats["near_dedup"] = {
            **asdict(params),
            "measure": "containment |A∩B|/min(|A|,|B|)",
            "candidates": "LSH Ensemble: size partitions [2^p, 2^(p+1)), bands per size ratio",
        }
        return StageOutputs(
            kept=near.kept,
            rejected=[filtered.rejected, near.rejected],
            errors=[read.errors, filtered.errors],
        )

    return StageSpec(
        name=name,
        build=build,
        inputs=list(inputs),
        schema=BOOKS_SCHEMA,
        config={"source": "books", "dedup": dedup, "near_dedup": asdict(params)},
        record=RecordSpec(histograms=(OVERLAP,)),
    )


def plan(name: str, src: BooksSourceConfig, ctx: BuildContext) -> list[BuildStep]:
    """[sources.books] (or `llama-data books`); `dedup = false` skips the near-dedup."""
    params = MinHashParams(
        num_perm=src.num_perm,
        ngram=src.ngram,
        threshold=src.threshold,
        lsh_threshold=src.lsh_threshold,
    )
    inputs = list(src.inputs)
    return one_step(
        name,
        lambda _ctx: make_books_stage(inputs, params, name=name, dedup=src.dedup),
        "books -> licence stripped -> near-dedup" if src.dedup else "books -> licence stripped",
        inputs,
    )
