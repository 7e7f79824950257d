"""The CCNet stage in Beam: read WET/WARC -> line dedup -> lid -> perplexity -> buckets ->
document dedup -> length filter. Only composition lives here; the rules are in pipeline/ccnet/.

Line dedup is global and never holds a set in one process; it shuffles packed arrays, not one
element per line (one Beam element per line costs ~10-30 us on a local runner, more than the
normalization itself):

1. `LineKeys`: each bundle counts its line keys in a `HashCounter` (8 bytes per distinct key:
   `key63 << 1 | seen_twice`) and packs, per shard (key mod `shards`), that count state and its
   (key, doc key) pairs (16 bytes each).
2. `ByShard` + `Route`: a shard's reducer merges the bundles' count states (a key flagged, or
   present in two bundles, occurs at least twice), then streams the pair chunks and sends each
   document the packed keys it must drop: (doc key, packed keys), one element per document.
3. `Regroup` + `Apply`: documents keyed by an 8-byte doc key meet their duplicated keys and lose
   those lines. Each document travels with its line keys (8 bytes a line), computed once in step
   1: normalizing and hashing the lines is most of the line dedup's work.

With `group_files=N` the scope is groups of N input files (in sorted path order): the group
number is mixed into the 8-byte key (`scoped_hash`), so lines are counted per group, as cc_net's
per-shard dedup; a key stays 8 bytes either way.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.transforms.stats import ApproximateQuantiles
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from llama_data.beam_jobs import fs
from llama_data.beam_jobs.dedup import ExactDedup
from llama_data.beam_jobs.harness import (
    ApplySteps,
    ReadDocuments,
    StageContext,
    StageCounters,
    StageOutputs,
    StageSpec,
    TaskSpec,
    pack_document,
    unpack_document,
)
from llama_data.beam_jobs.plan import BuildContext, BuildStep
from llama_data.pipeline import model_files
from llama_data.pipeline.ccnet.buckets import (
    BUCKETS,
    PERCENTILES,
    Bucket,
    dump_cutoffs,
    load_cutoffs,
)
from llama_data.pipeline.ccnet.config import CommonCrawlConfig
from llama_data.pipeline.ccnet.filters import MinLength, doc_dedup_key
from llama_data.pipeline.ccnet.langid import LanguageId
from llama_data.pipeline.ccnet.lines import (
    HASH_DTYPE,
    LineKeyBuffer,
    duplicated_keys,
    finish,
    packed_line_keys,
    remove_packed_lines,
    route_duplicates,
)
from llama_data.pipeline.ccnet.perplexity import Perplexity, available_languages
from llama_data.pipeline.ccnet.schema import CCNET_SCHEMA
from llama_data.pipeline.ccnet.train_lm import TrainLmSettings, train_lm
from llama_data.pipeline.config import default_of
from llama_data.pipeline.document import Document, Rejected
from llama_data.pipeline.errors import UserError
from llama_data.pipeline.sketches import Histogram, RecordSpec
from llama_data.pipeline.warc import CommonCrawlReader

STAGE = "ccnet"
# ApproximateQuantiles returns num_quantiles values from min to max: 11 gives every decile, so
# the 30th and 60th percentiles are entries 3 and 6.
NUM_QUANTILES = 11


def doc_key(doc: Document) -> bytes:
    """8-byte join key of a document (its id is unique; the key only routes the shuffle)."""
    return hashlib.sha1(f"{doc.source}\0{doc.id}".encode("utf-8", "surrogatepass")).digest()[:8]


def _scope_prefix(doc: Document, groups: dict[str, int] | None) -> bytes:
    """b"" for the whole input, else the 4-byte number of the document's file group."""
    if groups is None:
        return b""
    return groups.get(str(doc.meta.get("file", "")), 0).to_bytes(4, "big")


class _LineKeysFn(beam.DoFn):
    """Per bundle: the line keys of its documents, packed per shard (counts to main, pairs to
    `pairs`); flushed early when a bundle holds more than `flush_pairs` pairs."""

    def __init__(
        self, stage: str, groups: dict[str, int] | None, shards: int, flush_pairs: int
    ) -> None:
        self.stage = stage
        self.groups = groups
        self.shards = shards
        self.flush_pairs = flush_pairs

    def setup(self) -> None:
        self._lines = Metrics.counter(self.stage, "line_dedup.lines_in")
        self._pairs = Metrics.counter(self.stage, "line_dedup.doc_distinct_lines")
        self._state = Metrics.distribution(self.stage, "line_dedup.bundle_state_bytes")

    def start_bundle(self) -> None:
        self._buf = LineKeyBuffer()

    def process(self, doc: Document):
        keys = packed_line_keys(doc.text, _scope_prefix(doc, self.groups))
        distinct = np.unique(keys)
        dkey = doc_key(doc)
        self._lines.inc(len(keys))
        self._pairs.inc(len(distinct))
        self._buf.add_packed_document(dkey, distinct.tobytes())
        # the document goes to the regroup with its line keys, so they are not computed twice
        yield beam.pvalue.TaggedOutput("docs", (dkey, (_DOC, (pack_document(doc), keys.tobytes()))))
        if self._buf.pairs() >= self.flush_pairs:
            yield from self._drain()

    def _drain(self):
        self._state.update(self._buf.counter.nbytes())
        counts, pairs = self._buf.drain(self.shards)
        yield from counts
        for kv in pairs:
            yield beam.pvalue.TaggedOutput("pairs", kv)

    def finish_bundle(self):
        for out in self._drain():
            if isinstance(out, beam.pvalue.TaggedOutput):
                yield beam.pvalue.TaggedOutput(
                    out.tag, WindowedValue(out.value, MIN_TIMESTAMP, [GlobalWindow()])
                )
            else:
                yield WindowedValue(out, MIN_TIMESTAMP, [GlobalWindow()])


def _route_shard(item: tuple[int, dict[str, Iterable[bytes]]]):
    """One shard: keys seen at least twice (from all bundles' counts), sent to their documents."""
    _, grouped = item
    dup = duplicated_keys(grouped["counts"])
    if len(dup):
        for chunk in grouped["pairs"]:
            yield from route_duplicates(dup, chunk)


_DOC, _KEYS = 0, 1


class _ApplyLineDedupFn(beam.DoFn):
    def __init__(self, stage: str, groups: dict[str, int] | None) -> None:
        self.stage = stage
        self.groups = groups

    def setup(self) -> None:
        self._removed = Metrics.counter(self.stage, "line_dedup.lines_removed")
        self._chars_in = Metrics.counter(self.stage, "line_dedup.chars_in")
        self._chars_out = Metrics.counter(self.stage, "line_dedup.chars_kept")

    def process(self, item: tuple[bytes, Iterable[tuple[int, bytes]]]):
        # two passes over the re-iterable group: its few packed key sets, then its document(s)
        _, values = item
        parts = [np.frombuffer(packed, dtype=HASH_DTYPE) for tag, packed in values if tag == _KEYS]
        dup = np.concatenate(parts) if parts else np.empty(0, dtype=HASH_DTYPE)
        for tag, payload in values:  # one per key, unless two ids collide in 8 bytes
            if tag != _DOC:
                continue
            doc = unpack_document(payload[0])
            keys = np.frombuffer(payload[1], dtype=HASH_DTYPE)
            out = finish(remove_packed_lines(doc, dup, keys))
            d = out.doc if isinstance(out, Rejected) else out
            self._removed.inc(d.meta["original_nlines"] - d.meta["nlines"])
            self._chars_in.inc(d.meta["original_length"])
            self._chars_out.inc(d.meta["length"])
            if isinstance(out, Rejected):
                yield beam.pvalue.TaggedOutput("rejected", out)
            else:
                yield out


class LineDedup(beam.PTransform):
    """Documents -> `.kept` (duplicated lines removed) and `.rejected` (nothing left)."""

    def __init__(
        self,
        stage: str = STAGE,
        file_groups: dict[str, int] | None = None,
        shards: int = 256,
        flush_pairs: int = 4 << 20,
    ) -> None:
        super().__init__()
        self.stage = stage
        self.file_groups = file_groups
        self.shards = shards
        self.flush_pairs = flush_pairs

    def expand(self, docs):
        keys = docs | "LineKeys" >> beam.ParDo(
            _LineKeysFn(self.stage, self.file_groups, self.shards, self.flush_pairs)
        ).with_outputs("pairs", "docs", main="counts")
        to_remove = (
            {"counts": keys.counts, "pairs": keys.pairs}
            | "ByShard" >> beam.CoGroupByKey()
            | "Route" >> beam.FlatMap(_route_shard).with_output_types(tuple[bytes, bytes])
        )
        tagged = to_remove | "TagKeys" >> beam.Map(lambda kv: (kv[0], (_KEYS, kv[1])))
        # a tagged-union GroupByKey: what CoGroupByKey does, without copying groups into lists
        return (
            (keys.docs, tagged)
            | "Both" >> beam.Flatten()
            | "Regroup" >> beam.GroupByKey()
            | "Apply"
            >> beam.ParDo(_ApplyLineDedupFn(self.stage, self.file_groups)).with_outputs(
                "rejected", main="kept"
            )
        )


class _BucketFn(beam.DoFn):
    """The `Bucket` step with cutoffs from a side input (computed by the same pipeline)."""

    def __init__(self, stage: str, keep: Sequence[str]) -> None:
        self.stage = stage
        self.keep = tuple(keep)

    def setup(self) -> None:
        self._step: Bucket | None = None
        self._count = StageCounters(self.stage)

    def process(self, doc: Document, cutoffs: dict[str, tuple[float, float]]):
        if self._step is None:
            self._step = Bucket(cutoffs, self.keep)
            self._step.bind_counters(self._count)
        out = self._step.process(doc)
        if isinstance(out, Rejected):
            yield beam.pvalue.TaggedOutput("rejected", out)
        else:
            yield out


def _cutoffs_of(item: tuple[str, list[float]]) -> tuple[str, tuple[float, float]]:
    lang, qs = item
    step = (NUM_QUANTILES - 1) // 10
    return lang, (float(qs[PERCENTILES[0] // 10 * step]), float(qs[PERCENTILES[1] // 10 * step]))


def file_groups(paths: Sequence[str], group_files: int | None) -> dict[str, int] | None:
    """Group number of each input file (sorted order), or None for one global scope."""
    if not group_files:
        return None
    return {p: i // group_files for i, p in enumerate(sorted(paths))}


BYTES_PER_SHARD = 64 << 20
"""Input bytes (compressed WET/WARC) per line-dedup shard: ~4 million lines, a 32 MB count state."""


def line_dedup_shards(input_bytes: int) -> int:
    """Shards of the line-dedup shuffle for an input of this size.

    A document gets one routed element per shard holding one of its duplicated lines (a page with
    100 boilerplate lines gets ~100 at 256 shards, one at 1), so few shards are cheaper; many
    bound each reducer's state. One per 64 MB of input, up to 4096 (a whole Common Crawl
    snapshot then holds ~50 million distinct lines a shard, 400 MB of state).
    """
    return max(1, min(4096, -(-input_bytes // BYTES_PER_SHARD)))


def make_ccnet_stage(
    inputs: Sequence[str],
    lm_dir: str,
    languages: Sequence[str],
    *,
    keep: Sequence[str] = tuple(default_of(CommonCrawlConfig, "keep")),
    min_length: int = CommonCrawlConfig.min_length,
    min_lang_score: float = CommonCrawlConfig.min_lang_score,
    cutoffs: dict[str, tuple[float, float]] | None = None,
    group_files: int | None = None,
    name: str = STAGE,
    source: str = "commoncrawl",
    lm_fingerprint: str = "",
    lid_model: str | None = None,
) -> StageSpec:
    """The whole CCNet stage. `cutoffs=None` computes them from the input (per language).

    `lm_dir` and `lid_model` may be `gs://`/`s3://` URLs: the scoring steps copy the model files
    to each worker machine's disk once, in their setup (`model_files`, `fs.FILE_STORE`)."""
    langs = tuple(languages)

    def build(p, ctx: StageContext) -> StageOutputs:
        matched = fs.match_inputs(list(inputs))
        groups = file_groups([f.path for f in matched], group_files)
        read = p | "Read" >> ReadDocuments(
            matched, CommonCrawlReader(source), ctx.name, ctx.progress_dir
        )
        shards = line_dedup_shards(sum(f.size for f in matched))
        ctx.stats["line_dedup_shards"] = shards
        lines = read.docs | "LineDedup" >> LineDedup(ctx.name, groups, shards=shards)
        scored = lines.kept | "Score" >> ApplySteps(
            [
                LanguageId(langs, min_lang_score, lid_model, fs.FILE_STORE),
                Perplexity(lm_dir, langs, fs.FILE_STORE),
            ],
            ctx.name,
        )
        if cutoffs is None:
            cut = (
                scored.kept
                | "Ppl" >> beam.Map(lambda d: (d.meta["language"], float(d.meta["perplexity"])))
                | "Quantiles" >> ApproximateQuantiles.PerKey(NUM_QUANTILES)
                | "Cutoffs" >> beam.Map(_cutoffs_of)
            )
            _write_cutoffs(cut, ctx.stage_dir)
            ctx.stats["cutoffs"] = _LazyCutoffs(fs.join(ctx.stage_dir, "cutoffs.json"))
            ctx.stats["cutoffs_from"] = "input (Beam ApproximateQuantiles, per language)"
            cut_side = beam.pvalue.AsDict(cut)
        else:
            cut_side = beam.pvalue.AsDict(
                p | "GivenCutoffs" >> beam.Create(sorted(cutoffs.items()))
            )
            ctx.stats["cutoffs"] = dump_cutoffs(cutoffs)
            ctx.stats["cutoffs_from"] = "cutoff file"
        bucketed = scored.kept | "Bucket" >> beam.ParDo(
            _BucketFn(ctx.name, keep), cutoffs=cut_side
        ).with_outputs("rejected", main="kept")
        dedup = bucketed.kept | "DocDedup" >> ExactDedup(
            doc_dedup_key, ctx.name, reason="duplicate", name_winner=False
        )
        # the length rule on each part of the dedup's output, so no document is buffered again
        final = [
            part | f"Length{i or ''}" >> ApplySteps([MinLength(min_length)], ctx.name)
            for i, part in enumerate(dedup.kept)
        ]
        return StageOutputs(
            kept=[f.kept for f in final],
            rejected=[
                lines.rejected,
                scored.rejected,
                bucketed.rejected,
                dedup.rejected,
                *(f.rejected for f in final),
            ],
            errors=[read.errors, scored.errors, *(f.errors for f in final)],
        )

    return StageSpec(
        name=name,
        build=build,
        inputs=list(inputs),
        schema=CCNET_SCHEMA,
        config={
            "languages": list(langs),
            "keep": list(keep),
            "min_length": min_length,
            "min_lang_score": min_lang_score,
            "cutoffs": dump_cutoffs(cutoffs) if cutoffs else "from input",
            "line_dedup_scope": f"groups of {group_files} files" if group_files else "whole input",
            "lm_dir": str(lm_dir),
            "lm": lm_fingerprint,
            **({"lid_model": lid_model_version(lid_model)} if lid_model else {}),
        },
        record=RecordSpec(
            histograms=(
                Histogram(
                    "perplexity",
                    "perplexity",
                    1.0,
                    1e5,
                    60,
                    log=True,
                    by="language",
                    label="KenLM perplexity",
                ),
            )
        ),
    )


def _write_cutoffs(cut, stage_dir: str) -> None:
    """cutoffs.json next to the outputs (in `load_cutoffs`'s format, so a later run can reuse it)."""
    (
        cut
        | "CutoffList" >> beam.combiners.ToList()
        | "CutoffJson" >> beam.Map(lambda items: json.dumps(dump_cutoffs(dict(items)), indent=2))
        | "WriteCutoffs"
        >> beam.io.WriteToText(
            fs.join(stage_dir, "cutoffs"),
            file_name_suffix=".json",
            num_shards=1,
            shard_name_template="",
        )
    )


class _LazyCutoffs:
    """Read back, when stats.json is written after the run, the cutoffs the pipeline computed."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self) -> dict[str, Any]:
        try:
            return json.loads(fs.read_text(self.path))
        except (OSError, ValueError):
            return {}


def lm_fingerprint(lm_dir: str, languages: Sequence[str]) -> str:
    """Digest of the model files used, so a retrained LM reruns the stage (size and mtime of a
    local file, the object store's size and time for a URL)."""
    h = hashlib.sha256()
    for lang in sorted(languages):
        for name in (f"{lang}.sp.model", f"{lang}.arpa.bin"):
            version = model_files.version_of(model_files.join(lm_dir, name), fs.FILE_STORE)
            h.update(f"{name}:{version}".encode())
    return h.hexdigest()[:16]


def lid_model_version(path: str) -> str:
    """The lid model given (path and version), for the stage's fingerprint."""
    return f"{path}@{model_files.version_of(path, fs.FILE_STORE)}"


def ccnet_stage_from_options(
    inputs: Sequence[str],
    lm_dir: str,
    *,
    languages: Sequence[str] | None = None,
    keep: Sequence[str] = tuple(default_of(CommonCrawlConfig, "keep")),
    min_length: int = CommonCrawlConfig.min_length,
    min_lang_score: float = CommonCrawlConfig.min_lang_score,
    cutoffs_file: str | None = None,
    group_files: int | None = None,
    name: str = STAGE,
    lid_model: str | None = None,
) -> StageSpec:
    """Validate what a user passed (models present, buckets known, cutoffs readable), then build.

    `lm_dir`, `lid_model` and `cutoffs_file` may be local or `gs://`/`s3://`/`http(s)://`."""
    if not model_files.is_remote(lm_dir) and not os.path.isdir(lm_dir):
        raise UserError(f"--lm: {lm_dir!r} is not a folder (train one with `llama-data train-lm`)")
    try:
        have = available_languages(lm_dir, fs.FILE_STORE)
    except Exception as exc:  # noqa: BLE001 - an object store's own error, said in one line
        raise UserError(f"--lm: cannot list {lm_dir!r}: {exc}") from exc
    langs = list(languages) if languages else have
    if not langs:
        raise UserError(f"--lm: no <lang>.sp.model + <lang>.arpa.bin pair in {lm_dir!r}")
    missing = [lang for lang in langs if lang not in have]
    if missing:
        raise UserError(
            f"--languages: no perplexity model for {', '.join(missing)} in {lm_dir!r} "
            f"(models for: {', '.join(have) or 'none'})"
        )
    bad = [b for b in keep if b not in BUCKETS]
    if bad or not keep:
        raise UserError(
            f"--keep: buckets are {', '.join(BUCKETS)}; got {', '.join(keep) or 'none'}"
        )
    cutoffs = None
    if cutoffs_file:
        try:
            cutoffs = load_cutoffs(fs.model_file(cutoffs_file))
        except (OSError, ValueError, KeyError, IndexError, model_files.ModelFileError) as exc:
            raise UserError(f"--cutoffs: cannot read {cutoffs_file!r}: {exc}") from exc
        lacking = [lang for lang in langs if lang not in cutoffs]
        if lacking:
            raise UserError(f"--cutoffs: {cutoffs_file!r} has no cutoffs for {', '.join(lacking)}")
    return make_ccnet_stage(
        inputs,
        lm_dir,
        langs,
        keep=keep,
        min_length=min_length,
        min_lang_score=min_lang_score,
        cutoffs=cutoffs,
        group_files=group_files,
        name=name,
        lm_fingerprint=lm_fingerprint(lm_dir, langs),
        lid_model=_checked_lid_model(lid_model),
    )


def _checked_lid_model(path: str | None) -> str | None:
    if path and not model_files.exists(path, fs.FILE_STORE):
        raise UserError(f"--lid-model: no file at {path!r}")
    return path


def plan(name: str, src: CommonCrawlConfig, ctx: BuildContext) -> list[BuildStep]:
    """CCNet: a perplexity model trained from `lm_from`'s output (unless `lm` is given), then
    the ccnet stage over the WET/WARC inputs."""
    inputs = list(src.inputs)
    steps: list[BuildStep] = []
    deps: tuple[str, ...] = ()
    lm_step = f"{name}-lm"
    if src.lm is None:
        if src.lm_from not in ctx.config.sources:
            raise UserError(
                f"sources.{name}.lm_from: the config builds no source {src.lm_from!r} to train the "
                f"perplexity model from; add it, or set sources.{name}.lm to a train-lm folder"
            )
        steps.append(
            BuildStep(
                lm_step,
                lambda c: _train_lm_task(lm_step, c.documents_of(src.lm_from), src),
                deps=(src.lm_from,),
                describe=f"train-lm {','.join(src.languages)} from {src.lm_from}",
            )
        )
        deps = (lm_step,)

    def make(c: BuildContext) -> StageSpec:
        return ccnet_stage_from_options(
            inputs,
            src.lm or c.stage_dir(lm_step),
            languages=src.languages,
            keep=src.keep,
            min_length=src.min_length,
            min_lang_score=src.min_lang_score,
            cutoffs_file=src.cutoffs,
            group_files=src.dedup_group_files,
            name=name,
            lid_model=src.lid_model,
        )

    steps.append(
        BuildStep(
            name,
            make,
            deps=deps,
            describe="WET/WARC -> line dedup -> lid -> perplexity buckets -> doc dedup -> length",
            inputs=inputs,
        )
    )
    return steps


def _train_lm_task(name: str, inputs: list[str], src: CommonCrawlConfig) -> TaskSpec:
    def run(workdir: str, _ctx) -> dict:  # noqa: ANN001
        cards = {
            lang: train_lm(
                inputs, workdir, TrainLmSettings(lang=lang, vocab_size=src.lm_vocab_size)
            )
            for lang in src.languages
        }
        docs = sum(card["training"]["docs"] for card in cards.values())
        return {
            "in": docs,
            "kept": docs,
            "models": {lang: card["training"] for lang, card in cards.items()},
        }

    return TaskSpec(
        name=name,
        run=run,
        inputs=list(inputs),
        config={"languages": list(src.languages), "vocab_size": src.lm_vocab_size, "order": 5},
    )
