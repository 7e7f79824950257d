"""Command line: click commands that parse and validate, then call one function each.

Errors the user can fix (a bad flag, a config typo, an input that matches nothing) print one line
and exit with code 2; anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from llama_data import __version__
from llama_data.pipeline.errors import UserError

RUNNER_CHOICES = ("DirectRunner", "DataflowRunner", "SparkRunner", "FlinkRunner", "PrismRunner")


class UsageFailure(click.ClickException):
    exit_code = 2


class _BeamImportNoise(logging.Filter):
    """Beam's optional-dependency warnings (apitools, bigquery) logged on the root logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or "apache_beam" not in record.pathname


def _setup_logging(quiet: bool) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _BeamImportNoise) for f in handler.filters):
            handler.addFilter(_BeamImportNoise())
    logging.getLogger("apache_beam").setLevel(logging.ERROR if quiet else logging.WARNING)
    logging.getLogger("llama_data").setLevel(logging.WARNING if quiet else logging.INFO)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn UserError (and its ConfigError) into a one-line message with exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            raise UsageFailure(str(exc)) from None

    return wrapper


def run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--runner/--workers/--force/--quiet and Beam pipeline options passed through after `--`."""
    fn = click.option(
        "--runner",
        type=click.Choice(RUNNER_CHOICES),
        default=None,
        help="Beam runner (default DirectRunner, Beam's local runner).",
    )(fn)
    fn = click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=None,
        help="Local worker processes (DirectRunner multi-process mode when > 1); cluster parallelism otherwise.",
    )(fn)
    fn = click.option(
        "--force", is_flag=True, help="Rerun stages even when their outputs are complete."
    )(fn)
    fn = click.option("--quiet", "-q", is_flag=True, help="No progress display or summaries.")(fn)
    fn = click.argument("beam_args", nargs=-1, type=click.UNPROCESSED)(fn)
    return fn


def stage_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options of every single-stage command: --input (repeatable glob) and --output, + run options."""
    fn = run_options(fn)
    fn = click.option(
        "--output", "-o", required=True, help="Output root; the stage writes OUTPUT/<stage>/."
    )(fn)
    fn = click.option(
        "--input",
        "-i",
        "inputs",
        multiple=True,
        required=True,
        help="Input file or glob (local, gs://, s3://, http(s)://); repeatable.",
    )(fn)
    return fn


def make_run_options(
    runner: str | None,
    workers: int | None,
    beam_args: tuple[str, ...],
    quiet: bool,
    defaults: Any = None,
):
    from llama_data.beam_jobs.runners import RunOptions

    _setup_logging(quiet)
    if beam_args and beam_args[0] != "--" and not str(beam_args[0]).startswith("--"):
        raise UserError(
            f"unexpected argument {beam_args[0]!r} (Beam pipeline options go after `--`)"
        )
    return RunOptions(
        runner=runner or (defaults.runner if defaults else "DirectRunner"),
        workers=workers or (defaults.workers if defaults else 1),
        pipeline_args=tuple(defaults.pipeline_args if defaults else ())
        + tuple(a for a in beam_args if a != "--"),
        quiet=quiet,
    )


def run_cli_stage(spec: Any, output: str, run: Any, force: bool) -> Any:
    """Run one stage from a command and print its summary (or nothing with --quiet)."""
    from llama_data.beam_jobs.harness import run_stage

    result = run_stage(spec, output, run, force=force)
    if not run.quiet:
        click.echo(result.summary())
    return result


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llama-data")
def main() -> None:
    """Build LLaMA-style pre-training data: sources, filters, tokenizer and mixture shards.

    Start with `llama-data build` (the bundled demo) or `llama-data build --config build.toml`.
    """
    _setup_logging(quiet=False)


@main.command()
@click.option(
    "--config",
    "-c",
    "config_path",
    default=None,
    help="Build config (TOML). Default: the bundled demo.",
)
@click.option(
    "--output",
    "-o",
    default=None,
    help="Output root (default: [build].output, else ./demo-out for the demo, ./llama-data-out).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the plan (stages, inputs matched, what is complete) and exit.",
)
@run_options
@user_errors
def build(
    config_path: str | None,
    output: str | None,
    dry_run: bool,
    runner: str | None,
    workers: int | None,
    force: bool,
    quiet: bool,
    beam_args: tuple[str, ...],
) -> None:
    """Run every stage the config asks for, skipping complete ones."""
    import os

    from llama_data.beam_jobs.build import load_build_config, run_build

    config = load_build_config(config_path)
    run = make_run_options(runner, workers, beam_args, quiet, defaults=config.build)
    out = output or config.build.output or ("demo-out" if config_path is None else "llama-data-out")
    if "://" not in out:
        out = os.path.abspath(out)
    results = run_build(config, out, run, force=force, dry_run=dry_run, echo=click.echo)
    if results and not quiet:
        click.echo(f"Outputs are in {out}")


@main.command("dedup-exact")
@click.option(
    "--source",
    default="documents",
    show_default=True,
    help="Source name for documents that carry none.",
)
@stage_options
@user_errors
def dedup_exact(
    inputs: tuple[str, ...],
    output: str,
    source: str,
    runner: str | None,
    workers: int | None,
    force: bool,
    quiet: bool,
    beam_args: tuple[str, ...],
) -> None:
    """Remove exact duplicate documents across the whole input (whitespace-normalized text).

    The document with the smallest id is kept; the others are rejected as `duplicate_of:<id>`.
    """
    from llama_data.beam_jobs.documents import make_dedup_exact_stage

    run = make_run_options(runner, workers, beam_args, quiet)
    run_cli_stage(make_dedup_exact_stage(list(inputs), source=source), output, run, force)


@main.command("train-lm")
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    required=True,
    help="Document files or globs (Parquet or JSON lines, e.g. the wikipedia stage output); repeatable.",
)
@click.option(
    "--lang",
    required=True,
    help="Language code of the model (documents that name another language are skipped).",
)
@click.option(
    "--output",
    "-o",
    required=True,
    help="Model folder: writes <lang>.sp.model, <lang>.arpa.bin, <lang>.card.json.",
)
@click.option(
    "--vocab-size",
    type=click.IntRange(min=100),
    default=65536,
    show_default=True,
    help="SentencePiece vocabulary (an upper bound on small corpora).",
)
@click.option(
    "--order",
    type=click.IntRange(min=2, max=9),
    default=5,
    show_default=True,
    help="KenLM n-gram order.",
)
@click.option(
    "--max-docs",
    type=click.IntRange(min=1),
    default=None,
    help="Train on at most this many documents.",
)
@click.option(
    "--lmplz-memory", default="20%", show_default=True, help="lmplz -S (memory for sorting)."
)
@user_errors
def train_lm_command(
    inputs: tuple[str, ...],
    lang: str,
    output: str,
    vocab_size: int,
    order: int,
    max_docs: int | None,
    lmplz_memory: str,
) -> None:
    """Train the CCNet perplexity model: SentencePiece + KenLM 5-gram on normalized text."""
    from llama_data.pipeline.ccnet.train_lm import TrainLmSettings, train_lm

    _setup_logging(quiet=False)
    settings = TrainLmSettings(
        lang=lang, order=order, vocab_size=vocab_size, max_docs=max_docs, lmplz_memory=lmplz_memory
    )
    card = train_lm(list(inputs), output, settings)
    t = card["training"]
    click.echo(
        f"[train-lm] {lang}: {t['docs']:,} docs, {t['lines']:,} lines, {t['tokens']:,} tokens, "
        f"vocab {t['vocab_size']:,} in {card['seconds']}s -> {output}"
    )


@main.command("ccnet")
@click.option("--lm", "lm_dir", required=True, help="Folder of perplexity models (from train-lm).")
@click.option(
    "--languages",
    default=None,
    help="Comma-separated languages to keep (default: every language with a model in --lm).",
)
@click.option(
    "--keep", default="head,middle", show_default=True, help="Perplexity buckets to keep."
)
@click.option(
    "--min-length",
    type=click.IntRange(min=0),
    default=300,
    show_default=True,
    help="Minimum characters after dedup.",
)
@click.option(
    "--min-lang-score",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Minimum fastText language score.",
)
@click.option(
    "--cutoffs",
    "cutoffs_file",
    default=None,
    help="Perplexity cutoff file (JSON {lang: [p30, p60]} or cc_net cutoff.csv); default: computed from the input.",
)
@click.option(
    "--dedup-group-files",
    type=click.IntRange(min=1),
    default=None,
    help="Line dedup within groups of N input files (default: the whole input).",
)
@stage_options
@user_errors
def ccnet_command(
    inputs: tuple[str, ...],
    output: str,
    lm_dir: str,
    languages: str | None,
    keep: str,
    min_length: int,
    min_lang_score: float,
    cutoffs_file: str | None,
    dedup_group_files: int | None,
    runner: str | None,
    workers: int | None,
    force: bool,
    quiet: bool,
    beam_args: tuple[str, ...],
) -> None:
    """CommonCrawl WET/WARC through the CCNet method: line dedup, language id, perplexity
    buckets, document dedup, length filter."""
    from llama_data.beam_jobs.ccnet import ccnet_stage_from_options

    run = make_run_options(runner, workers, beam_args, quiet)
    spec = ccnet_stage_from_options(
        list(inputs),
        lm_dir,
        languages=[x.strip() for x in languages.split(",") if x.strip()] if languages else None,
        keep=[x.strip() for x in keep.split(",") if x.strip()],
        min_length=min_length,
        min_lang_score=min_lang_score,
        cutoffs_file=cutoffs_file,
        group_files=dedup_group_files,
    )
    run_cli_stage(spec, output, run, force)


@main.group()
def download() -> None:
    """Fetch published dumps (resumable, verified by checksums where the publisher gives them)."""


@download.command("cc")
@click.option("--snapshot", required=True, help="Crawl id, e.g. CC-MAIN-2023-06.")
@click.option(
    "--segments",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="How many WET files (first N of wet.paths.gz).",
)
@click.option(
    "--output", "-o", required=True, help="Folder for the WET files and download-manifest.json."
)
@click.option(
    "--base-url",
    default="https://data.commoncrawl.org",
    show_default=True,
    help="Common Crawl HTTP endpoint (or a mirror).",
)
@user_errors
def download_cc_command(snapshot: str, segments: int, output: str, base_url: str) -> None:
    """Fetch a snapshot's wet.paths.gz and its first N WET files (resumable, verified)."""
    from llama_data.pipeline.ccnet.download_cc import download_cc

    def report(d) -> None:
        what = "already complete" if d.skipped else f"{d.bytes:,} bytes"
        click.echo(f"  {d.path.name}: {what}")

    manifest = download_cc(snapshot, segments, output, base_url, on_file=report)
    click.echo(f"[download cc] {snapshot}: {segments} WET file(s) -> {output} ({manifest.name})")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llama-train")
def train_main() -> None:
    """Train the LLaMA architecture on llama-data token shards."""
    _setup_logging(quiet=False)


if __name__ == "__main__":
    sys.exit(main())
