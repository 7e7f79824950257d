"""Scale-safe job graphs (issue #16): what a stage's pipeline looks like, checked on the graph
Beam builds, not by running it.

- After file expansion, the work is spread: every file-reading DoFn (`_ReadSplitFn` of
  `ReadDocuments`, GitHub's licence rows) reads from a `Reshuffle`, so the few elements made in
  the driver (file splits) are not all processed by the worker that made them.
- C4's line dedup spreads a line seen often within a bundle over up to `FANOUT` (line, salt)
  groups, so a boilerplate line on many pages is no hot key; its result is the single-group
  rule's (`c4.iter_losers`), whatever the bundles.
"""

from __future__ import annotations

import random
from pathlib import Path

import apache_beam as beam
from apache_beam.pipeline import PipelineVisitor
from apache_beam.testing.util import assert_that, equal_to

from llama_data.beam_jobs import c4 as c4_job
from llama_data.beam_jobs.build import load_build_config, plan_build
from llama_data.beam_jobs.ccnet import make_ccnet_stage
from llama_data.beam_jobs.harness import StageContext, StageSpec
from llama_data.beam_jobs.plan import BuildContext
from llama_data.beam_jobs.runners import RunOptions
from llama_data.pipeline import c4


class _FileReads(PipelineVisitor):
    """Every ParDo whose DoFn reads files, with whether its input comes out of a Reshuffle."""

    READERS = ("_ReadSplitFn", "_LicenseRowsFn")

    def __init__(self) -> None:
        self.reads: list[tuple[str, bool]] = []

    def visit_transform(self, node) -> None:  # noqa: ANN001 - Beam's AppliedPTransform
        t = node.transform
        if not isinstance(t, beam.ParDo) or type(t.fn).__name__ not in self.READERS:
            return
        producer = next(iter(node.main_inputs.values())).producer
        spread = False
        while producer is not None:
            if isinstance(producer.transform, beam.Reshuffle):
                spread = True
                break
            producer = producer.parent
        self.reads.append((node.full_label, spread))


def _demo_stage_specs(tmp_path: Path) -> dict[str, StageSpec]:
    """Every Beam stage of the demo build that needs no earlier stage's output, and the CCNet
    stage (built with a model folder it never opens: the graph does not load models)."""
    config = load_build_config(None)
    ctx = BuildContext(config=config, output=str(tmp_path / "out"), run=RunOptions(quiet=True))
    specs: dict[str, StageSpec] = {}
    for step in plan_build(ctx):
        if step.deps:
            continue
        spec = step.make(ctx)
        if isinstance(spec, StageSpec):
            specs[step.name] = spec
    cc = config.sources["commoncrawl"]
    specs["commoncrawl"] = make_ccnet_stage(cc.inputs, str(tmp_path / "lm"), ["en"])
    return specs


def test_every_stage_spreads_its_file_splits_with_a_reshuffle(tmp_path: Path) -> None:
    specs = _demo_stage_specs(tmp_path)
    assert {"arxiv", "books", "c4", "github", "wikipedia", "stackexchange", "commoncrawl"} <= set(
        specs
    )
    for name, spec in specs.items():
        p = beam.Pipeline()
        ctx = StageContext(name, str(tmp_path), str(tmp_path / name), RunOptions(quiet=True))
        spec.build(p, ctx)
        visitor = _FileReads()
        p.visit(visitor)
        assert visitor.reads, f"{name}: no file read found in its graph"
        not_spread = [label for label, spread in visitor.reads if not spread]
        assert not not_spread, f"{name}: read without a Reshuffle before it: {not_spread}"


def _occurrences(seed: int = 0) -> list[tuple[bytes, tuple[str, str]]]:
    """A hot line on 3,000 pages, warm lines on a few, cold lines on one, in random order."""
    rng = random.Random(seed)
    occ = [(b"hot", (f"{rng.getrandbits(32):08x}", f"doc{i}")) for i in range(3000)]
    for k in range(300):
        for j in range(rng.randint(1, 4)):
            occ.append((b"warm%d" % k, (f"{rng.getrandbits(32):08x}", f"w{k}-{j}")))
    occ += [(b"cold%d" % k, ("ff", f"c{k}")) for k in range(300)]
    # the same occurrence twice (two identical pages): only one of them is the winner
    occ += [(b"twin", ("00", "t")), (b"twin", ("00", "t")), (b"twin", ("01", "u"))]
    rng.shuffle(occ)
    return occ


class _Given(beam.DoFn):
    """Occurrences given as they are (the stage derives them from each page's lines)."""

    def process(self, kv):  # noqa: ANN001, ANN201
        yield kv


def test_salted_line_losers_equal_the_single_group_rule() -> None:
    occ = _occurrences()
    by_key: dict[bytes, list[tuple[str, str]]] = {}
    for key, o in occ:
        by_key.setdefault(key, []).append(o)
    expected = [(o[1], key) for key, os_ in by_key.items() for o in c4.iter_losers(os_)]
    assert len(expected) > 3000
    for chunks in (1, 7, 64):  # one bundle, or several: other occurrences salted, same losers
        with beam.Pipeline() as p:
            losers = (
                p
                | f"Chunks{chunks}" >> beam.Create([occ[i::chunks] for i in range(chunks)])
                | beam.Reshuffle()
                | beam.FlatMap(lambda part: part)
                | c4_job._Losers("Line", _Given(), c4_job._line_doc, c4_job._line_cut)
            )
            assert_that(losers, equal_to(expected))


def test_a_hot_line_is_spread_over_fanout_groups() -> None:
    fn = c4_job._SaltHotKeys(_Given(), c4_job._line_doc)
    fn.setup()
    fn.start_bundle()
    out = [kv for i in range(6400) for kv in fn.process((b"hot", ("00", f"doc{i}")))]
    groups: dict[tuple[bytes, int], int] = {}
    for (key, salt), value in out:
        groups[key, salt] = groups.get((key, salt), 0) + (value is not c4_job._MARK)
    assert groups[b"hot", 0] == c4_job.HOT_IN_BUNDLE - 1
    assert len(groups) == c4_job.FANOUT  # salt 0 and every other salt
    assert max(groups.values()) < 2 * 6400 / (c4_job.FANOUT - 1)
    marks = [v for (k, s), v in out if s == 0 and v is c4_job._MARK]
    assert len(marks) == 1  # (hot, 0) is told once per bundle that the key was salted
    # a line seen a few times stays in one group, with no marker
    fn.start_bundle()
    few = [kv for i in range(3) for kv in fn.process((b"rare", ("00", f"d{i}")))]
    assert {k for k, _ in few} == {(b"rare", 0)} and all(v is not c4_job._MARK for _, v in few)


def _key(doc) -> bytes:  # noqa: ANN001
    from llama_data.pipeline.dedup import exact_text_key

    return exact_text_key(doc.text)


def test_exact_dedup_past_its_bloom_cap_shuffles_everything_with_the_same_verdicts() -> None:
    """The Bloom filter every worker gets grows with the duplicated keys: past
    `max_bloom_keys` it is a 64-bit filter every key hits (every document is contested, i.e.
    shuffled), and the verdicts stay the same."""
    from apache_beam.metrics.metric import MetricsFilter

    from llama_data.beam_jobs.dedup import ExactDedup
    from llama_data.pipeline.document import Document

    # 60 texts, the first 40 twice: 80 documents share a key, 20 do not
    docs = [Document(id=f"d{i:03d}", text=f"text {i % 60}", source="s") for i in range(100)]
    for cap, contested in ((1 << 26, 80), (0, 100)):
        p = beam.Pipeline()
        out = p | beam.Create(docs) | ExactDedup(_key, "test", max_bloom_keys=cap)
        kept = out.kept | beam.Flatten() | "KeptIds" >> beam.Map(lambda d: d.id)
        rejected = out.rejected | "RejIds" >> beam.Map(lambda r: (r.doc.id, r.reason))
        assert_that(kept, equal_to([f"d{i:03d}" for i in range(60)]), label="CheckKept")
        assert_that(
            rejected,
            equal_to([(f"d{i:03d}", f"duplicate_of:d{i - 60:03d}") for i in range(60, 100)]),
            label="CheckRejected",
        )
        result = p.run()
        result.wait_until_finish()
        counters = result.metrics().query(MetricsFilter().with_name("dedup.contested"))
        seen = sum(c.committed for c in counters["counters"])
        # with the filter: the 80 and its false positives (1%); without: every document
        assert contested <= seen < 90 if cap else seen == contested


def test_documents_of_a_large_file_that_cannot_be_split_are_spread(tmp_path: Path) -> None:
    """A file over `spread_docs_bytes` that its reader cannot split (gzip JSON lines) has its
    documents reshuffled after the read, so one worker reads it but all work on it; a format
    its reader splits (a multistream bz2 dump) does not need it. The documents are the same."""
    import gzip
    import json

    from llama_data.beam_jobs.harness import ReadDocuments
    from llama_data.pipeline.io import DocumentReader
    from llama_data.pipeline.wikipedia.reader import WikipediaReader

    path = tmp_path / "docs.jsonl.gz"
    path.write_bytes(
        gzip.compress(
            "".join(
                json.dumps({"id": f"d{i}", "text": f"text {i}"}) + "\n" for i in range(50)
            ).encode()
        )
    )
    wiki = sorted((Path(load_build_config(None).path).parent / "wikipedia").glob("*.bz2"))[0]

    def labels(p: beam.Pipeline) -> list[str]:
        found: list[str] = []

        class V(PipelineVisitor):
            def enter_composite_transform(self, node) -> None:  # noqa: ANN001
                if isinstance(node.transform, beam.Reshuffle):
                    found.append(node.full_label)

        p.visit(V())
        return found

    for threshold, spread in ((1 << 30, False), (0, True)):
        p = beam.Pipeline()
        read = p | f"Read{threshold}" >> ReadDocuments(
            [str(path)], DocumentReader(), "test", spread_docs_bytes=threshold
        )
        ids = read.docs | beam.Map(lambda d: d.id)
        assert_that(ids, equal_to([f"d{i}" for i in range(50)]))
        assert any(label.endswith("SpreadDocs") for label in labels(p)) == spread
        p.run().wait_until_finish()
    p = beam.Pipeline()
    _ = p | ReadDocuments([str(wiki)], WikipediaReader(), "test", spread_docs_bytes=0)
    assert not any(label.endswith("SpreadDocs") for label in labels(p))
