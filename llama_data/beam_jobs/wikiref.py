"""Wikipedia-reference classifier stages: training examples, the model, and the filter.

`train-wikiref` is two steps with the harness's completeness contract:

1. `wikiref-examples` (Beam): Wikipedia dumps -> cited URLs (normalized, distinct by 8-byte
   key); CommonCrawl documents (ccnet output or WET/WARC; plus fetched reference pages) keyed by
   the same key; one shuffle joins them. Cited keys give positives (one per URL); uncited
   documents are pre-sampled by seeded hash at a rate computed from the two counts (side inputs),
   slightly above what is needed, so no process ever holds the uncited documents.
2. `wikiref-model` (task): takes exactly as many negatives as positives (smallest seeded keys),
   holds out 10%, trains fastText, writes `model.bin` and `card.json`.

`wikiref-filter` scores documents (e.g. the `commoncrawl` stage's output) and rejects
`not_wikiref` under the threshold; its schema is the input's plus `wikiref_score`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics

from llama_data.beam_jobs import fs
from llama_data.beam_jobs.harness import (
    ApplySteps,
    ReadDocuments,
    StageContext,
    StageOutputs,
    StageSpec,
    TaskSpec,
)
from llama_data.beam_jobs.plan import BuildContext, BuildStep
from llama_data.pipeline import model_files, wikiref
from llama_data.pipeline.config import WikirefSection
from llama_data.pipeline.document import Document
from llama_data.pipeline.errors import UserError
from llama_data.pipeline.io import DocumentReader, ParquetDocumentReader
from llama_data.pipeline.schema import BASE_NAMES, DocumentSchema
from llama_data.pipeline.sketches import Histogram, RecordSpec
from llama_data.pipeline.warc import CommonCrawlReader

EXAMPLES_STAGE = "wikiref-examples"
MODEL_STAGE = "wikiref-model"
FILTER_STAGE = "wikiref-filter"


class _MarkRef(beam.DoFn):
    def process(self, doc: Document):
        yield doc.with_text(doc.text, wikiref_ref=True)


class _CitedUrls(beam.DoFn):
    """Articles only (namespace 0, not redirects): talk and project pages cite other things."""

    def __init__(self, stage: str, method: str = "scan") -> None:
        self.stage = stage
        self.method = method

    def setup(self) -> None:
        self._pages = Metrics.counter(self.stage, "wikipedia.articles")
        self._urls = Metrics.counter(self.stage, "wikipedia.cited_urls")

    def process(self, page: Document):
        if page.meta.get("redirect") or page.meta.get("ns", 0) not in (0, "0", None):
            return
        self._pages.inc()
        urls = wikiref.cited_normalized_urls(page.text, method=self.method)
        self._urls.inc(len(urls))
        for url in urls:
            yield wikiref.url_key(url), url


class _KeyByUrl(beam.DoFn):
    def __init__(self, stage: str) -> None:
        self.stage = stage

    def setup(self) -> None:
        self._no_url = Metrics.counter(self.stage, "cc.no_url")
        self._docs = Metrics.counter(self.stage, "cc.documents")

    def process(self, doc: Document):
        self._docs.inc()
        item = wikiref.url_doc_item(doc)
        if item is None:
            self._no_url.inc()
            return
        yield item


class _Label(beam.DoFn):
    def __init__(self, stage: str, seed: int) -> None:
        self.stage = stage
        self.seed = seed

    def setup(self) -> None:
        self._pos = Metrics.counter(self.stage, "positives")
        self._dup = Metrics.counter(self.stage, "positives.duplicate_captures")
        self._empty = Metrics.counter(self.stage, "empty_text")
        self._cited = Metrics.counter(self.stage, "cited_urls.distinct")

    def process(self, item: tuple[bytes, dict[str, Any]]):
        _, grouped = item
        cited = bool(list(grouped["cited"]))
        if cited:
            self._cited.inc()
        positive, uncited, dups = wikiref.label_url_group(cited, grouped["docs"], self.seed)
        self._dup.inc(dups)
        if positive is not None:
            if positive.text:
                self._pos.inc()
                yield wikiref.example_to_document(positive)
            else:
                self._empty.inc()
        for key, (doc_id, url, _, text) in uncited:
            yield beam.pvalue.TaggedOutput("uncited", (key, doc_id, url, text))


class _PreSample(beam.DoFn):
    def __init__(self, stage: str) -> None:
        self.stage = stage

    def setup(self) -> None:
        self._cand = Metrics.counter(self.stage, "negative_candidates")
        self._empty = Metrics.counter(self.stage, "empty_text")

    def process(self, cand: tuple[int, str, str, str], n_pos: int, n_uncited: int):
        key, doc_id, url, text = cand
        if key >= int(wikiref.negative_rate(n_pos, n_uncited) * 2**64):
            return
        norm = wikiref.lm_text(text)
        if not norm:
            self._empty.inc()
            return
        self._cand.inc()
        yield wikiref.example_to_document(wikiref.Example(doc_id, url, wikiref.NEGATIVE, norm, key))


def make_examples_stage(
    wikipedia: Sequence[str],
    cc: Sequence[str],
    refs_warc: Sequence[str] = (),
    seed: int = 0,
    name: str = EXAMPLES_STAGE,
    extractor: str = "scan",
) -> StageSpec:
    """Positives and over-sampled negative candidates as documents (label, url, sample_key)."""
    from llama_data.pipeline.wikipedia.reader import WikipediaReader

    def build(p, ctx: StageContext) -> StageOutputs:
        wiki = p | "ReadWikipedia" >> ReadDocuments(
            wikipedia, WikipediaReader(), ctx.name, ctx.progress_dir
        )
        cited = (
            wiki.docs
            | "CitedUrls" >> beam.ParDo(_CitedUrls(ctx.name, extractor))
            | "DistinctUrls" >> beam.CombinePerKey(min)
        )
        crawl = p | "ReadCC" >> ReadDocuments(
            cc, wikiref.CcDocumentsReader("commoncrawl"), ctx.name, ctx.progress_dir
        )
        docs = [crawl.docs]
        errors = [wiki.errors, crawl.errors]
        if refs_warc:
            refs = p | "ReadRefs" >> ReadDocuments(
                refs_warc, CommonCrawlReader(source="wikiref-refs"), ctx.name, ctx.progress_dir
            )
            docs.append(refs.docs | "MarkRefs" >> beam.ParDo(_MarkRef()))
            errors.append(refs.errors)
        keyed = (
            tuple(docs)
            | "AllDocs" >> beam.Flatten()
            | "KeyByUrl" >> beam.ParDo(_KeyByUrl(ctx.name))
        )
        labelled = (
            {"cited": cited, "docs": keyed}
            | "JoinOnUrl" >> beam.CoGroupByKey()
            | "Label"
            >> beam.ParDo(_Label(ctx.name, seed)).with_outputs("uncited", main="positives")
        )
        n_pos = labelled.positives | "CountPositives" >> beam.combiners.Count.Globally()
        n_unc = labelled.uncited | "CountUncited" >> beam.combiners.Count.Globally()
        negatives = labelled.uncited | "PreSample" >> beam.ParDo(
            _PreSample(ctx.name), beam.pvalue.AsSingleton(n_pos), beam.pvalue.AsSingleton(n_unc)
        )
        kept = (labelled.positives, negatives) | "Examples" >> beam.Flatten()
        return StageOutputs(kept=kept, errors=errors)

    return StageSpec(
        name=name,
        build=build,
        inputs=[*wikipedia, *cc, *refs_warc],
        config={
            "seed": seed,
            "extractor": extractor,
            "wikipedia": list(wikipedia),
            "cc": list(cc),
            "refs_warc": list(refs_warc),
        },
        schema=wikiref.EXAMPLES_SCHEMA,
        # Wikipedia pages and uncited pages are read but neither kept nor rejected: the counters
        # (articles, cited URLs, documents, positives, candidates) account for them instead.
        check_accounting=False,
    )


def read_examples(paths: Sequence[str]) -> tuple[list[wikiref.Example], list[wikiref.Example]]:
    positives, candidates = [], []
    reader = ParquetDocumentReader("wikiref")
    for path in paths:
        for rec in reader.read_path(path, fs.open_raw):
            if not isinstance(rec, Document):
                raise RuntimeError(f"unreadable examples file {path}: {rec.error}")
            ex = wikiref.document_to_example(rec)
            (positives if ex.label == wikiref.POSITIVE else candidates).append(ex)
    return positives, candidates


def make_model_task(
    examples_dir: str,
    params: wikiref.FastTextParams = wikiref.FastTextParams(),
    threshold: float = wikiref.DEFAULT_THRESHOLD,
    holdout: float = wikiref.HOLDOUT_FRACTION,
    name: str = MODEL_STAGE,
) -> TaskSpec:
    """Exactly balanced classes, 10% held out, fastText trained: `model.bin` + `card.json`."""
    pattern = fs.join(examples_dir, "*.parquet")

    def run(workdir: str, ctx: StageContext) -> dict[str, Any]:
        files = [f.path for f in fs.match_inputs([pattern], what="wikiref examples")]
        positives, candidates = read_examples(files)
        negatives = wikiref.take_negatives(candidates, len(positives))
        if len(negatives) < len(positives):
            positives = sorted(
                positives, key=lambda e: (wikiref.seeded_hash(params.seed, "trim", e.id), e.id)
            )
            positives = positives[: len(negatives)]
        if not positives:
            raise UserError(
                "no training examples: no CommonCrawl document's URL is cited by the Wikipedia input "
                "(or nothing uncited to sample); check --wikipedia/--cc, or add --refs-warc"
            )
        stats_path = fs.join(examples_dir, "stats.json")
        examples_stats = json.loads(fs.read_text(stats_path)) if fs.exists(stats_path) else {}
        card = wikiref.train_and_evaluate(
            positives,
            negatives,
            workdir,
            params,
            threshold,
            holdout,
            extra_card={
                "examples_stage": {
                    "dir": examples_dir,
                    "counters": examples_stats.get("counters", {}),
                    "config": examples_stats.get("config", {}),
                },
                "negative_candidates": len(candidates),
            },
        )
        return {"card": card, "kept": len(positives) + len(negatives)}

    return TaskSpec(
        name=name,
        run=run,
        inputs=[pattern],
        config={
            "params": params.as_kwargs(),
            "threshold": threshold,
            "holdout": holdout,
        },
    )


def filter_schema(inputs: Sequence[str]) -> DocumentSchema:
    """The first input file's typed columns (e.g. ccnet's url, perplexity, bucket) plus
    `wikiref_score`, so filtering keeps the columns a user could query before."""
    extra = []
    try:
        files = fs.match_inputs(list(inputs))
    except UserError:
        files = []
    for f in files:
        if f.path.lower().endswith(".parquet"):
            with fs.open_raw(f.path) as raw:
                schema = pq.read_schema(raw)
            extra = [
                schema.field(n)
                for n in schema.names
                if n not in BASE_NAMES and n not in ("reason", "wikiref_score")
            ]
            break
    return DocumentSchema(extra=(*extra, wikiref.SCORED_FIELD))


def make_filter_stage(
    inputs: Sequence[str],
    model: str,
    threshold: float = wikiref.DEFAULT_THRESHOLD,
    name: str = FILTER_STAGE,
    source: str = "commoncrawl",
) -> StageSpec:
    """Score documents with the classifier; reject `not_wikiref` under `threshold`."""
    model_path = wikiref.resolve_model_path(model)
    if not model_files.exists(model_path, fs.FILE_STORE):
        raise UserError(
            f"--model: no wikiref model at {model_path} (train one with `llama-data train-wikiref`)"
        )

    def build(p, ctx: StageContext) -> StageOutputs:
        read = p | "Read" >> ReadDocuments(
            inputs, DocumentReader(source), ctx.name, ctx.progress_dir
        )
        scored = read.docs | "Score" >> ApplySteps(
            [wikiref.WikirefScoreStep(model_path, threshold, fs.FILE_STORE)], ctx.name
        )
        return StageOutputs(
            kept=scored.kept, rejected=[scored.rejected], errors=[read.errors, scored.errors]
        )

    # a local model by content; a URL by the store's size and time (not read in the driver)
    model_sha = (
        wikiref.file_sha256(model_path)
        if os.path.exists(model_path)
        else f"{model_path}@{model_files.version_of(model_path, fs.FILE_STORE)}"
    )
    return StageSpec(
        name=name,
        build=build,
        inputs=list(inputs),
        config={"model": model_path, "model_sha256": model_sha, "threshold": threshold},
        schema=filter_schema(inputs),
        record=RecordSpec(
            histograms=(
                Histogram("wikiref_score", "wikiref_score", 0.0, 1.0, 50, label="reference score"),
            )
        ),
    )


def train_wikiref(
    wikipedia: Sequence[str],
    cc: Sequence[str],
    refs_warc: Sequence[str],
    output: str,
    run: Any,
    params: wikiref.FastTextParams = wikiref.FastTextParams(),
    threshold: float = wikiref.DEFAULT_THRESHOLD,
    holdout: float = wikiref.HOLDOUT_FRACTION,
    force: bool = False,
    extractor: str = "scan",
) -> list[Any]:
    """`llama-data train-wikiref`: the examples stage, then the model task (each skipped when
    complete with the same inputs and settings)."""
    from llama_data.beam_jobs.harness import run_stage, run_task

    examples = run_stage(
        make_examples_stage(wikipedia, cc, refs_warc, params.seed, extractor=extractor),
        output,
        run,
        force=force,
    )
    model = run_task(
        make_model_task(examples.stage_dir, params, threshold, holdout),
        output,
        run,
        force=force or not examples.skipped,
    )
    return [examples, model]


def train_wikiref_command(cfg: WikirefSection, output: str, run: Any, force: bool) -> str:
    """`llama-data train-wikiref` from its options: both steps, then their summaries and the
    model's holdout figures."""
    results = train_wikiref(
        cfg.wikipedia,
        cfg.cc,
        cfg.refs_warc,
        output,
        run,
        wikiref.fasttext_params(cfg),
        cfg.threshold,
        cfg.holdout,
        force,
        extractor=cfg.extractor,
    )
    lines = [r.summary() for r in results]
    held = results[-1].stats.get("card", {}).get("holdout", {})
    if held:
        lines.append(
            f"holdout ({held.get('n')} examples) at threshold {held.get('threshold')}: "
            f"precision {held.get('precision')}, recall {held.get('recall')}, AUC {held.get('auc')}"
        )
    return "\n".join(lines)


def plan(ctx: BuildContext, planned: Sequence[BuildStep] = ()) -> list[BuildStep]:
    """[wikiref]: train the classifier (unless `model` is given), then filter `source`'s output
    (a step that refines `source`: its output is that source's share of the mixture)."""
    if "wikiref" not in ctx.config.sections:
        return []
    cfg = ctx.config.sections["wikiref"]
    has_source = cfg.source in ctx.config.sources
    steps: list[BuildStep] = []
    model_deps: tuple[str, ...] = ()
    if cfg.model:
        fixed_model: str = cfg.model

        def model_of(_c: BuildContext) -> str:
            return fixed_model

    else:
        wikipedia = list(cfg.wikipedia)
        if not wikipedia and "wikipedia" in ctx.config.sources:
            wikipedia = list(ctx.config.sources["wikipedia"].inputs)
        if not wikipedia:
            raise UserError(
                "wikiref: set model = <trained model>, or wikipedia = [dumps] (or a [sources.wikipedia])"
            )
        cc_static = list(cfg.cc)
        if not cc_static and not has_source:
            raise UserError(f"wikiref: set cc = [documents] or configure [sources.{cfg.source}]")
        refs = list(cfg.refs_warc)
        params = wikiref.fasttext_params(cfg)
        steps.append(
            BuildStep(
                EXAMPLES_STAGE,
                lambda c: make_examples_stage(
                    wikipedia,
                    cc_static or c.documents_of(cfg.source),
                    refs,
                    cfg.seed,
                    extractor=cfg.extractor,
                ),
                deps=() if cc_static else (cfg.source,),
                describe="cited URLs x CommonCrawl -> labelled examples",
                inputs=[*wikipedia, *cc_static, *refs],
            )
        )
        steps.append(
            BuildStep(
                MODEL_STAGE,
                lambda c: make_model_task(
                    c.stage_dir(EXAMPLES_STAGE), params, cfg.threshold, cfg.holdout
                ),
                deps=(EXAMPLES_STAGE,),
                describe="fastText wikiref classifier + card",
            )
        )
        model_deps = (MODEL_STAGE,)

        def model_of(c: BuildContext) -> str:
            return c.stage_dir(MODEL_STAGE)

    if has_source:
        name = f"{cfg.source}-wikiref"
        steps.append(
            BuildStep(
                name,
                lambda c: make_filter_stage(
                    c.documents_of(cfg.source), model_of(c), cfg.threshold, name, cfg.source
                ),
                deps=(cfg.source, *model_deps),
                describe=f"wikiref score, reject not_wikiref < {cfg.threshold}",
                refines=cfg.source,
            )
        )
    return steps
