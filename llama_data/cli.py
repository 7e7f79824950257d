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


@main.command()
@click.option(
    "--max-input-depth",
    type=click.IntRange(1, 64),
    default=16,
    show_default=True,
    help="Nesting limit of \\input/\\include/\\subfile.",
)
@click.option(
    "--max-macro-depth",
    type=click.IntRange(1, 256),
    default=32,
    show_default=True,
    help="Nesting limit of user macro expansion (a recursive \\def stops here).",
)
@click.option(
    "--max-paper-mb",
    type=click.IntRange(1, 4096),
    default=256,
    show_default=True,
    help="Decompressed size limit of one paper (gzip bombs are cut here).",
)
@click.option(
    "--requester-pays",
    is_flag=True,
    help="Send RequestPayer=requester on S3 reads (needed for s3://arxiv/src/; you pay the transfer).",
)
@stage_options
@user_errors
def arxiv(
    inputs: tuple[str, ...],
    output: str,
    max_input_depth: int,
    max_macro_depth: int,
    max_paper_mb: int,
    requester_pays: bool,
    runner: str | None,
    workers: int | None,
    force: bool,
    quiet: bool,
    beam_args: tuple[str, ...],
) -> None:
    """arXiv LaTeX sources -> cleaned papers (LLaMA: no preamble, comments, bibliography; macros expanded).

    Inputs: bulk tars (arXiv_src_YYMM_NNN.tar, also straight from s3://arxiv/src/ with
    `pip install llama-data[aws]`, --requester-pays and AWS credentials; Beam S3 options such as
    `-- --s3_region_name=us-east-1` go after `--`), per-paper .gz/.tar.gz, or extracted folders.
    """
    from llama_data.beam_jobs.arxiv import make_arxiv_stage

    run = make_run_options(runner, workers, beam_args, quiet)
    spec = make_arxiv_stage(
        list(inputs),
        max_input_depth=max_input_depth,
        max_macro_depth=max_macro_depth,
        max_paper_mb=max_paper_mb,
        requester_pays=requester_pays,
    )
    run_cli_stage(spec, output, run, force)


@main.command()
@click.option(
    "--ngram", type=click.IntRange(1, 50), default=5, show_default=True, help="Words per shingle."
)
@click.option(
    "--num-perm",
    type=click.IntRange(16, 1024),
    default=128,
    show_default=True,
    help="MinHash permutations.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=0.9,
    show_default=True,
    help="Verified shingle overlap |A∩B|/min(|A|,|B|) above which a book is a duplicate.",
)
@click.option(
    "--lsh-threshold",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=0.7,
    show_default=True,
    help="Jaccard level the LSH bands are tuned for (candidates only; every pair is verified).",
)
@click.option("--no-dedup", is_flag=True, help="Strip licences and drop empty books only.")
@stage_options
@user_errors
def books(
    inputs: tuple[str, ...],
    output: str,
    ngram: int,
    num_perm: int,
    threshold: float,
    lsh_threshold: float,
    no_dedup: bool,
    runner: str | None,
    workers: int | None,
    force: bool,
    quiet: bool,
    beam_args: tuple[str, ...],
) -> None:
    """Gutenberg .txt and Books3 .jsonl[.zst] -> books without licence text, near-duplicates removed."""
    from llama_data.beam_jobs.books import make_books_stage
    from llama_data.pipeline.books import MinHashParams

    run = make_run_options(runner, workers, beam_args, quiet)
    try:
        params = MinHashParams(
            num_perm=num_perm, ngram=ngram, threshold=threshold, lsh_threshold=lsh_threshold
        )
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    run_cli_stage(make_books_stage(list(inputs), params, dedup=not no_dedup), output, run, force)


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


@download.command("gutenberg")
@click.option("--output", "-o", required=True, help="Folder for the .txt files (and a manifest).")
@click.option(
    "--base-url",
    default="https://www.gutenberg.org",
    show_default=True,
    help="Gutenberg site or mirror (any host serving the same paths).",
)
@click.option(
    "--ids",
    default=None,
    help="Ebook numbers: `11,84,2701` or ranges `1-100`. Default: every text in the catalog.",
)
@click.option(
    "--language",
    default=None,
    help="With the catalog: only books in this language code (e.g. en).",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many books.")
@user_errors
def download_gutenberg(
    output: str, base_url: str, ids: str | None, language: str | None, limit: int | None
) -> None:
    """Project Gutenberg plain-text books (resumable; reruns skip what arrived)."""
    from llama_data.pipeline.books_download import download_gutenberg as fetch

    result = fetch(
        output, base_url=base_url, ids=ids, language=language, limit=limit, echo=click.echo
    )
    click.echo(result)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llama-train")
def train_main() -> None:
    """Train the LLaMA architecture on llama-data token shards."""
    _setup_logging(quiet=False)


if __name__ == "__main__":
    sys.exit(main())
