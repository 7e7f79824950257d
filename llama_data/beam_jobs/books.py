"""The books stage: read Gutenberg/Books3 -> drop empty books -> book-level near-dedup.

Near-dedup at scale never builds one in-memory LSH index. Candidate pairs come from a shuffle
keyed by LSH band (10-byte keys: band index + hash of the band's values); each pair is verified
on the two books' shingle sets (joined by id, two CoGroupByKeys); the verified pairs, few by
nature, are clustered (connected components) in one place, and the resulting verdicts go back
to every book as a side input. All logic lives in `llama_data.pipeline.books`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from llama_data.beam_jobs.harness import (
    ApplySteps,
    ReadDocuments,
    StageContext,
    StageOutputs,
    StageSpec,
)
from llama_data.pipeline.books import (
    BookFilter,
    BookSketch,
    BooksReader,
    MinHasher,
    MinHashParams,
    band_keys,
    cluster_verdicts,
    rejection,
    sketch,
    verify,
)
from llama_data.pipeline.document import Document
from llama_data.pipeline.schema import DocumentSchema

BOOKS_SCHEMA = DocumentSchema(
    extra=(
        pa.field("title", pa.string()),
        pa.field("author", pa.string()),
        pa.field("near_duplicate_of", pa.string()),
        pa.field("overlap", pa.float64()),
    )
)
# Buckets larger than this propose a star (every member with the smallest id) instead of all
# pairs, so one boilerplate-heavy bucket cannot produce a quadratic number of candidates.
MAX_BUCKET_PAIRS_SIZE = 200


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


def _band_entries(item: tuple[str, BookSketch], params: MinHashParams):
    doc_id, s = item
    if s.shingle_count == 0:
        return
    for key in band_keys(s.signature, params.bands, params.rows):
        yield key, doc_id


def _bucket_pairs(item: tuple[bytes, Sequence[str]]):
    _, ids = item
    members = sorted(set(ids))
    if len(members) <= MAX_BUCKET_PAIRS_SIZE:
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                yield a, b
    else:
        for b in members[1:]:
            yield members[0], b


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


def _verdicts(rows: list[dict]) -> dict:
    from llama_data.pipeline.books import VerifiedPair

    pairs = [VerifiedPair(r["a"], r["b"], r["overlap"], r["jaccard"]) for r in rows]
    lengths = {r["a"]: r["len_a"] for r in rows} | {r["b"]: r["len_b"] for r in rows}
    return cluster_verdicts(pairs, lengths)


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
            | "BandKeys" >> beam.FlatMap(_band_entries, params)
            | "GroupByBand" >> beam.GroupByKey()
            | "BucketPairs" >> beam.FlatMap(_bucket_pairs)
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
            verified | "AllPairs" >> beam.combiners.ToList() | "Cluster" >> beam.Map(_verdicts)
        )
        out = docs | "Apply" >> beam.ParDo(
            _ApplyVerdictFn(), beam.pvalue.AsSingleton(verdicts)
        ).with_outputs("rejected", main="kept")
        return out


def make_books_stage(
    inputs: Sequence[str],
    params: MinHashParams | None = None,
    name: str = "books",
    dedup: bool = True,
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
        ctx.stats["near_dedup"] = {**asdict(params), "measure": "containment |A∩B|/min(|A|,|B|)"}
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
    )
