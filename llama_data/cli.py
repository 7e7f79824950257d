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


PAPER_WIKIPEDIA_LANGUAGES = "bg,ca,cs,da,de,en,es,fr,hr,hu,it,nl,pl,pt,ro,ru,sl,sr,sv,uk"


def _language_list(value: str, flag: str = "--languages") -> list[str] | None:
    """`bg,ca,...` -> codes; `all` -> None (no language filter)."""
    import re

    if value.strip().lower() == "all":
        return None
    langs = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in langs if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]+)*", v)]
    if bad or not langs:
        raise UserError(f"{flag}: {bad[0] if bad else value!r} is not a language code like 'en'")
    return langs


@main.command()
@click.option(
    "--languages",
    default=PAPER_WIKIPEDIA_LANGUAGES,
    show_default=True,
    help="Wikipedia languages to keep (from each dump's siteinfo), comma-separated, or 'all'.",
)
@click.option(
    "--split-mb",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Size of the byte ranges a multistream dump or plain .xml is cut into for parallel reading.",
)
@click.option(
    "--index",
    "indexes",
    multiple=True,
    help="A multistream -index.txt.bz2 kept elsewhere than beside its dump (repeatable); "
    "by default the index is looked for next to each dump.",
)
@click.option(
    "--no-index",
    is_flag=True,
    help="Find multistream offsets by scanning the dump even when its -index.txt.bz2 is beside it.",
)
@stage_options
@user_errors
def wikipedia(
    inputs: tuple[str, ...],
    output: str,
    languages: str,
    split_mb: int,
    indexes: tuple[str, ...],
    no_index: bool,
    runner: str | None,
    workers: int | None,
    force: bool,
    quiet: bool,
    beam_args: tuple[str, ...],
) -> None:
    """MediaWiki XML dumps -> articles as clean text (OUTPUT/wikipedia/).

    Keeps namespace-0 articles of the chosen languages; redirects, disambiguation pages and other
    languages are rejected with their reason. Wikitext is cleaned with mwparserfromhell.
    """
    from llama_data.beam_jobs.wikipedia import make_wikipedia_stage

    langs = _language_list(languages)
    run = make_run_options(runner, workers, beam_args, quiet)
    spec = make_wikipedia_stage(
        list(inputs),
        langs,
        split_bytes=split_mb << 20,
        use_index=not no_index,
        index_paths=list(indexes),
    )
    run_cli_stage(spec, output, run, force)


@main.command()
@click.option(
    "--top-sites",
    type=click.IntRange(min=0),
    default=28,
    show_default=True,
    help="Keep the N largest sites by post count, counted from the inputs (0 = all sites).",
)
@click.option("--include-meta", is_flag=True, help="Also read meta sites (skipped by default).")
@stage_options
@user_errors
def stackexchange(
    inputs: tuple[str, ...],
    output: str,
    top_sites: int,
    include_meta: bool,
    runner: str | None,
    workers: int | None,
    force: bool,
    quiet: bool,
    beam_args: tuple[str, ...],
) -> None:
    """Stack Exchange site archives (.7z) or Posts.xml -> one document per question.

    The text is the title, the question, then its answers by score (highest first, numeric).
    """
    from llama_data.beam_jobs.stackexchange import make_stackexchange_stage

    run = make_run_options(runner, workers, beam_args, quiet)
    spec = make_stackexchange_stage(list(inputs), top_sites or None, include_meta)
    run_cli_stage(spec, output, run, force)


@main.group()
def download() -> None:
    """Fetch published dumps (resumable, verified by checksums where the publisher gives them)."""


@download.command("wikipedia")
@click.option(
    "--languages",
    default=PAPER_WIKIPEDIA_LANGUAGES,
    show_default=True,
    help="Languages to fetch, comma-separated.",
)
@click.option("--date", required=True, help="Dump date YYYYMMDD (or 'latest').")
@click.option("--output", "-o", required=True, help="Folder; each wiki goes to OUTPUT/<db>/.")
@click.option(
    "--base-url",
    default="https://dumps.wikimedia.org",
    show_default=True,
    help="Dump server (a mirror, or a local server for tests).",
)
@click.option(
    "--no-multistream",
    is_flag=True,
    help="Fetch pages-articles.xml.bz2 (one stream) instead of the multistream dump + index.",
)
@user_errors
def download_wikipedia_cmd(
    languages: str, date: str, output: str, base_url: str, no_multistream: bool
) -> None:
    """Wikimedia articles dumps, verified with the published sha1sums (md5sums as fallback)."""
    import re
    from pathlib import Path

    from llama_data.pipeline.wikipedia.download import download_wikipedia

    if not re.fullmatch(r"\d{8}|latest", date):
        raise UserError(f"--date: expected YYYYMMDD or 'latest', got {date!r}")
    langs = _language_list(languages)
    if langs is None:
        raise UserError("--languages: name the languages to download ('all' is not a list)")
    download_wikipedia(langs, date, Path(output), base_url, not no_multistream, echo=click.echo)


@download.command("stackexchange")
@click.option(
    "--sites",
    required=True,
    help="Sites, comma-separated (beer.stackexchange.com, or beer; stackoverflow.com).",
)
@click.option("--output", "-o", required=True, help="Folder for the site archives (.7z).")
@click.option(
    "--base-url",
    default="https://archive.org/download/stackexchange",
    show_default=True,
    help="Where the dump's per-site .7z files are (a mirror, or a local server for tests).",
)
@user_errors
def download_stackexchange_cmd(sites: str, output: str, base_url: str) -> None:
    """The Stack Exchange dump's per-site archives, verified with the item's checksums."""
    from pathlib import Path

    from llama_data.pipeline.stackexchange import download_stackexchange

    names = [s.strip() for s in sites.split(",") if s.strip()]
    if not names:
        raise UserError("--sites: name at least one site")
    download_stackexchange(names, Path(output), base_url, echo=click.echo)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llama-train")
def train_main() -> None:
    """Train the LLaMA architecture on llama-data token shards."""
    _setup_logging(quiet=False)


if __name__ == "__main__":
    sys.exit(main())
