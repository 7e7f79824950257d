"""Beam composition of the token stages: train-tokenizer, tokenize, mix (no text logic here).

tokenize: input units (file, row group) -> Reshuffle -> encode each unit in a worker (SentencePiece
loaded once per worker in `setup`, batched C++ encoding) -> per-source token files. mix: shard
indices -> Reshuffle -> each worker computes and writes whole shards. Both write to local folders
(the token files are memory-mapped by their readers).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from llama_data.beam_jobs import fs
from llama_data.beam_jobs.harness import StageContext, TaskSpec, run_pipeline
from llama_data.beam_jobs.plan import BuildContext, BuildStep, final_stage
from llama_data.beam_jobs.runners import RunOptions
from llama_data.pipeline import model_files
from llama_data.pipeline.doc_batches import DocUnit, InputError, doc_units, expand_inputs
from llama_data.pipeline.errors import UserError
from llama_data.pipeline.mix_shards import MixJob, ShardBuilder, finish_mix, prepare_mix
from llama_data.pipeline.mixture import MixtureError, MixtureSpec, load_mixture_spec
from llama_data.pipeline.report import format_table1
from llama_data.pipeline.shards import ShardError, run_tmp_dir
from llama_data.pipeline.token_streams import TokenStreamError, summarize, tokenize_unit
from llama_data.pipeline.tokenizer import (
    MODEL_NAME,
    Tokenizer,
    TokenizerError,
    resolve_model_path,
    train_tokenizer_from_files,
)


class _TokenizeUnitFn(beam.DoFn):
    def __init__(self, model_path: str, out_dir: str) -> None:
        self.model_path = model_path
        self.out_dir = out_dir

    def setup(self) -> None:
        # a gs:// / s3:// model is copied to this machine's disk once (model_files)
        self._tokenizer = Tokenizer(fs.model_file(self.model_path))
        self._tokenizer.sp  # noqa: B018 - load the model once per worker
        self._docs = Metrics.counter("tokenize", "documents")
        self._tokens = Metrics.counter("tokenize", "tokens")
        self._errors = Metrics.counter("tokenize", "errors")

    def process(self, item: tuple[int, DocUnit]):
        index, unit = item
        stats = tokenize_unit(unit, index, self._tokenizer, self.out_dir)
        for counts in stats["sources"].values():
            self._docs.inc(counts["documents"])
            self._tokens.inc(counts["tokens"])
        self._errors.inc(stats["errors"])
        yield stats


def run_tokenize(
    inputs: Sequence[str], tokenizer: str, output: str, run: RunOptions
) -> dict[str, Any]:
    """Tokenize every document of the inputs into OUTPUT/<source>/part-*.arrow + sources.json."""
    if model_files.is_remote(tokenizer):
        # the driver reads the model too (vocabulary size): through the run's S3/GCS options
        FileSystems.set_options(PipelineOptions(list(run.pipeline_args)))
        url = tokenizer if tokenizer.endswith(".model") else model_files.join(tokenizer, MODEL_NAME)
        try:
            model = Path(fs.model_file(url))
        except (OSError, model_files.ModelFileError) as exc:
            raise UserError(f"--tokenizer: cannot read {url}: {exc}") from exc
        shown, given = url, url
    else:
        model = resolve_model_path(tokenizer)
        shown, given = str(model.resolve()), str(model)
    paths = expand_inputs(list(inputs))
    if not paths:
        raise UserError(f"tokenize: no input files match {list(inputs)}")
    units = doc_units(paths)
    out = Path(output).absolute()
    tmp = run_tmp_dir(out)
    tok = Tokenizer(model)
    items = list(enumerate(units))
    run_pipeline(
        run,
        "tokenize",
        lambda p: (
            p
            | "Units" >> beam.Create(items)
            | "Spread" >> beam.Reshuffle()
            | "Encode" >> beam.ParDo(_TokenizeUnitFn(given, str(tmp)))
        ),
    )
    info = {"path": shown, **tok.describe()}
    summary = summarize(tmp, info)
    summary["units"] = len(units)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return summary


class _WriteShardFn(beam.DoFn):
    def __init__(self, job: MixJob, tmp_dir: str) -> None:
        self.job = job
        self.tmp_dir = tmp_dir

    def setup(self) -> None:
        self._builder = ShardBuilder(self.job)
        self._rows = Metrics.counter("mix", "rows")

    def process(self, index: int):
        info = self._builder.write_shard(index, self.tmp_dir)
        self._rows.inc(info["rows"])
        # Each worker leaves a sidecar; the driver collects them (no result transport needed).
        Path(self.tmp_dir, f"{info['file']}.json").write_text(json.dumps(info))
        yield index


def run_mix(job: MixJob, output: str, run: RunOptions) -> dict[str, Any]:
    """Write all shards of `job` in parallel, then the manifest; returns the manifest."""
    out = Path(output).absolute()
    tmp = run_tmp_dir(out)
    run_pipeline(
        run,
        "mix",
        lambda p: (
            p
            | "Shards" >> beam.Create(list(range(job.n_shards)))
            | "Spread" >> beam.Reshuffle()
            | "Write" >> beam.ParDo(_WriteShardFn(job, str(tmp)))
        ),
    )
    infos = []
    for sidecar in sorted(tmp.glob("shard-*.arrow.json")):
        infos.append(json.loads(sidecar.read_text()))
        sidecar.unlink()
    return finish_mix(job, infos, tmp, out)


def plan_job(
    tokenized: str,
    output: str,
    spec: MixtureSpec,
    context_length: int = 2048,
    total_tokens: int | None = None,
    renormalize: bool = False,
    seed: int = 0,
    target_bytes: int | None = None,
    rows_per_shard: int | None = None,
) -> MixJob:
    """Plan the mixture; problems the user can fix become UserError."""
    try:
        return prepare_mix(
            tokenized,
            spec,
            context_length=context_length,
            total_tokens=total_tokens,
            renormalize=renormalize,
            seed=seed,
            rows_per_shard=rows_per_shard,
            output_dir=output,
            **({"target_bytes": target_bytes} if target_bytes else {}),
        )
    except (MixtureError, TokenStreamError, ShardError) as exc:
        raise UserError(f"mix: {exc}") from exc


def mix_cli(tokenized: str, output: str, weights: str, run: RunOptions, **options: Any) -> str:
    """`llama-data mix`: plan, write the shards, and return this mixture's Table 1.

    `options` are `plan_job`'s (context_length, total_tokens, renormalize, seed, ...).
    """
    try:
        spec = load_mixture_spec(weights)
    except MixtureError as exc:
        raise UserError(f"mix: {exc}") from exc
    job = plan_job(tokenized, output, spec, **options)
    manifest = run_mix(job, output, run)
    return format_table1(manifest) + f"\nShards and manifest.json are in {output}"


def tokenize_cli(inputs: Sequence[str], tokenizer: str, output: str, run: RunOptions) -> str:
    try:
        summary = run_tokenize(inputs, tokenizer, output, run)
    except (TokenizerError, TokenStreamError, InputError) as exc:
        raise UserError(f"tokenize: {exc}") from exc
    lines = [f"Token streams in {output}:"]
    for name, s in summary["sources"].items():
        lines.append(
            f"  {name:<14} {s['documents']:>10,} documents  {s['tokens']:>14,} tokens  "
            f"{s['text_bytes']:>14,} text bytes"
        )
    if summary["errors"]:
        lines.append(f"  {summary['errors']} unreadable input unit(s): see {output}/errors/")
    return "\n".join(lines)


def train_tokenizer_job(inputs: Sequence[str], output: str, **options: Any) -> dict[str, Any]:
    try:
        return train_tokenizer_from_files(list(inputs), output, **options)
    except (TokenizerError, InputError, MixtureError) as exc:
        raise UserError(f"train-tokenizer: {exc}") from exc


def train_tokenizer_cli(
    inputs: Sequence[str],
    output: str,
    vocab_size: int,
    weights: str,
    sample_bytes: int,
    seed: int,
    threads: int,
) -> str:
    try:
        spec = load_mixture_spec(weights)
    except MixtureError as exc:
        raise UserError(f"train-tokenizer: {exc}") from exc
    card = train_tokenizer_job(
        inputs,
        output,
        vocab_size=vocab_size,
        weights=dict(spec.weights),
        sample_bytes=sample_bytes,
        seed=seed,
        num_threads=threads,
    )
    lines = [f"Tokenizer in {output}: vocab {card['vocab_size']}, sha256 {card['sha256'][:12]}"]
    for name, s in card["sample"].items():
        lines.append(f"  sample {name:<14} {s['documents']:>8,} documents  {s['bytes']:>12,} bytes")
    return "\n".join(lines)


# --- build tasks -------------------------------------------------------------------------------


def make_tokenizer_task(
    inputs: Sequence[str],
    name: str = "tokenizer",
    vocab_size: int = 32000,
    weights: dict[str, float] | None = None,
    sample_bytes: int = 100_000_000,
    seed: int = 0,
    num_threads: int = 4,
) -> TaskSpec:
    options = {
        "vocab_size": vocab_size,
        "weights": weights,
        "sample_bytes": sample_bytes,
        "seed": seed,
        "num_threads": num_threads,
    }

    def run(workdir: str, ctx: StageContext) -> dict[str, Any]:
        card = train_tokenizer_job(inputs, workdir, **options)
        sampled = sum(s["documents"] for s in card["sample"].values())
        return {
            "in": sampled,
            "kept": sampled,
            "tokenizer": {k: card[k] for k in ("sha256", "vocab_size")},
            "sample": card["sample"],
        }

    return TaskSpec(
        name=name, run=run, inputs=list(inputs), config={"stage": "train-tokenizer", **options}
    )


def _local_stage_dir(ctx: StageContext) -> str:
    if "://" in ctx.stage_dir:
        raise UserError(
            f"{ctx.name}: token streams and shards are memory-mapped, so the build output must be "
            f"a local (or mounted) folder, not {ctx.stage_dir}"
        )
    return ctx.stage_dir


def make_tokenize_task(
    inputs: Sequence[str], tokenizer_dir: str, name: str = "tokenized"
) -> TaskSpec:
    model = os.path.join(tokenizer_dir, "tokenizer.model")

    def run(workdir: str, ctx: StageContext) -> dict[str, Any]:
        # Straight into the (cleared) stage folder, built under a `.tmp-<run>` folder and renamed there: token
        # streams are as large as the corpus and should not pass through a local temp folder.
        summary = run_tokenize(inputs, model, _local_stage_dir(ctx), ctx.run)
        docs = sum(s["documents"] for s in summary["sources"].values())
        return {
            "in": docs,
            "kept": docs,
            "sources": summary["sources"],
            "errors": {"unreadable_unit": summary["errors"]} if summary["errors"] else {},
        }

    return TaskSpec(name=name, run=run, inputs=[*inputs, model], config={"stage": "tokenize"})


def make_mix_task(
    tokenized_dir: str,
    spec: MixtureSpec,
    name: str = "tokens",
    context_length: int = 2048,
    total_tokens: int | None = None,
    renormalize: bool = False,
    seed: int = 0,
    target_bytes: int | None = None,
) -> TaskSpec:
    summary = os.path.join(tokenized_dir, "sources.json")
    options = {
        "context_length": context_length,
        "total_tokens": total_tokens,
        "renormalize": renormalize,
        "seed": seed,
        "target_bytes": target_bytes,
    }

    def run(workdir: str, ctx: StageContext) -> dict[str, Any]:
        out = _local_stage_dir(ctx)
        job = plan_job(tokenized_dir, out, spec, **options)
        manifest = run_mix(job, out, ctx.run)
        return {
            "in": manifest["total_rows"],
            "kept": manifest["total_rows"],
            "tokens": manifest["total_tokens"],
            "shards": len(manifest["shards"]),
        }

    config = {
        "stage": "mix",
        "weights": dict(spec.weights),
        "max_epochs": dict(spec.max_epochs),
        **options,
    }
    return TaskSpec(name=name, run=run, inputs=[summary], config=config)


def plan(ctx: BuildContext, planned: Sequence[BuildStep] = ()) -> list[BuildStep]:
    """tokenizer -> tokenized -> tokens, after every configured source (whatever they are).

    Each source's final stage (`final_stage`: its own, or the last step refining it) writes OUT/<stage>/*.parquet documents
    whose `source` column is its mixture name; the token stages take all of them. They are
    planned when at least one configured source has a mixture weight.
    """
    tok = ctx.config.section("tokenizer")
    mixture = ctx.config.section("mixture")
    if mixture.weights_file:
        base = load_mixture_spec(mixture.weights_file)
    elif mixture.weights:
        base = MixtureSpec(dict(mixture.weights), {}, "config")
    else:
        base = load_mixture_spec("table1")
    spec = MixtureSpec(dict(base.weights), {**base.max_epochs, **mixture.max_epochs}, base.name)
    if not any(spec.weights.get(name, 0) > 0 for name in ctx.config.sources):
        # Nothing configured is in the mixture (e.g. only a corpus of your own to clean): no
        # tokens to make. Name your source in [mixture] weights to get shards from it.
        return []
    sources = tuple(final_stage(planned, name) for name in ctx.config.sources)

    def documents(c: BuildContext) -> list[str]:
        return [g for name in sources for g in c.documents_of(name)]

    return [
        BuildStep(
            "tokenizer",
            lambda c: make_tokenizer_task(
                documents(c),
                vocab_size=tok.vocab_size,
                weights=dict(spec.weights),
                sample_bytes=tok.sample_bytes,
                seed=tok.seed,
                num_threads=tok.num_threads,
            ),
            deps=sources,
            describe="train-tokenizer (SentencePiece BPE, mixture sample)",
        ),
        BuildStep(
            "tokenized",
            lambda c: make_tokenize_task(documents(c), c.stage_dir("tokenizer")),
            deps=(*sources, "tokenizer"),
            describe="tokenize (per-source token streams)",
        ),
        BuildStep(
            "tokens",
            lambda c: make_mix_task(
                c.stage_dir("tokenized"),
                spec,
                context_length=mixture.context_length,
                total_tokens=mixture.tokens,
                renormalize=mixture.renormalize,
                seed=mixture.seed,
                target_bytes=mixture.shard_bytes,
            ),
            deps=("tokenized",),
            describe="mix (Table 1 proportions -> shards + manifest)",
        ),
    ]
