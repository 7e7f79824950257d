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


@main.command("train-tokenizer")
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    required=True,
    help="Cleaned documents (Parquet stage outputs or JSONL), glob; repeatable.",
)
@click.option(
    "--output",
    "-o",
    required=True,
    help="Folder for tokenizer.model and tokenizer.json (the card).",
)
@click.option("--vocab-size", type=click.IntRange(min=260), default=32000, show_default=True)
@click.option(
    "--weights",
    default="table1",
    show_default=True,
    help="Sampling weights: table1 or a JSON/TOML file.",
)
@click.option(
    "--sample-bytes",
    type=click.IntRange(min=1),
    default=100_000_000,
    show_default=True,
    help="Size of the training sample, split over sources by weight.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Trainer threads (recorded in the model, so fixed for reproducibility).",
)
@user_errors
def train_tokenizer(
    inputs: tuple[str, ...],
    output: str,
    vocab_size: int,
    weights: str,
    sample_bytes: int,
    seed: int,
    threads: int,
) -> None:
    """Train the SentencePiece BPE tokenizer (LLaMA settings) on a mixture-weighted sample."""
    from llama_data.beam_jobs.tokenize import train_tokenizer_cli

    click.echo(
        train_tokenizer_cli(list(inputs), output, vocab_size, weights, sample_bytes, seed, threads)
    )


@main.command()
@click.option(
    "--tokenizer", "-t", required=True, help="tokenizer.model, or the folder train-tokenizer wrote."
)
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    required=True,
    help="Cleaned documents (Parquet stage outputs or JSONL), glob; repeatable.",
)
@click.option("--output", "-o", required=True, help="Folder for the per-source token streams.")
@run_options
@user_errors
def tokenize(
    tokenizer: str,
    inputs: tuple[str, ...],
    output: str,
    runner: str | None,
    workers: int | None,
    force: bool,
    quiet: bool,
    beam_args: tuple[str, ...],
) -> None:
    """Encode documents into per-source token streams (BOS ... EOS per document), in parallel."""
    from llama_data.beam_jobs.tokenize import tokenize_cli

    run = make_run_options(runner, workers, beam_args, quiet)
    message = tokenize_cli(list(inputs), tokenizer, output, run)
    if not quiet:
        click.echo(message)


@main.command()
@click.option(
    "--input", "-i", "input_dir", required=True, help="Token streams written by `tokenize`."
)
@click.option(
    "--output", "-o", required=True, help="Shard folder: shard-NNNNN.arrow + manifest.json."
)
@click.option(
    "--weights",
    default="table1",
    show_default=True,
    help="table1, or a JSON/TOML file {source: weight} or {weights = {...}, max_epochs = {...}}.",
)
@click.option(
    "--tokens",
    type=click.IntRange(min=1),
    default=None,
    help="Total training tokens (default: the most for which no source exceeds its max epochs).",
)
@click.option("--context-length", type=click.IntRange(min=1), default=2048, show_default=True)
@click.option(
    "--renormalize",
    is_flag=True,
    help="Allow missing/empty sources: spread their weight over the others (the manifest records it).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the per-epoch document order."
)
@click.option(
    "--shard-bytes", type=click.IntRange(min=1), default=256 * 1024 * 1024, show_default=True
)
@click.option(
    "--rows-per-shard", type=click.IntRange(min=1), default=None, help="Overrides --shard-bytes."
)
@run_options
@user_errors
def mix(
    input_dir: str,
    output: str,
    weights: str,
    tokens: int | None,
    context_length: int,
    renormalize: bool,
    seed: int,
    shard_bytes: int,
    rows_per_shard: int | None,
    runner: str | None,
    workers: int | None,
    force: bool,
    quiet: bool,
    beam_args: tuple[str, ...],
) -> None:
    """Cut training rows from the token streams at exact proportions into Arrow shards."""
    from llama_data.beam_jobs.tokenize import mix_cli

    run = make_run_options(runner, workers, beam_args, quiet)
    text = mix_cli(
        input_dir,
        output,
        weights,
        run,
        context_length,
        tokens,
        renormalize,
        seed,
        shard_bytes,
        rows_per_shard,
    )
    if not quiet:
        click.echo(text)


@main.command()
@click.argument("out")
@click.option("--no-paper", is_flag=True, help="Leave out the paper's columns.")
@user_errors
def report(out: str, no_paper: bool) -> None:
    """Print this build's Table 1 (from OUT/tokens/manifest.json or a shard folder)."""
    from llama_data.pipeline.report import report_cli

    click.echo(report_cli(out, paper=not no_paper))


@main.group()
def download() -> None:
    """Fetch published dumps (resumable, verified by checksums where the publisher gives them)."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llama-train")
def train_main() -> None:
    """Train the LLaMA architecture on llama-data token shards."""
    _setup_logging(quiet=False)


if __name__ == "__main__":
    sys.exit(main())
