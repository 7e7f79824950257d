"""Command line: click commands that parse and validate, then call one function each.

Errors the user can fix (a bad flag, a config typo, an input that matches nothing) print one line
and exit with code 2; anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from llama_data import __version__
from llama_data.pipeline import config
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


PAPER_WIKIPEDIA_LANGUAGES = ",".join(config.PAPER_WIKIPEDIA_LANGUAGES)


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
@click.option(
    "--split-mb",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Size of the byte ranges an extracted Posts.xml is cut into for parallel reading.",
)
@stage_options
@user_errors
def stackexchange(
    inputs: tuple[str, ...],
    output: str,
    top_sites: int,
    include_meta: bool,
    split_mb: int,
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
    spec = make_stackexchange_stage(
        list(inputs), top_sites or None, include_meta, split_bytes=split_mb << 20
    )
    run_cli_stage(spec, output, run, force)


@main.command("c4")
@click.option(
    "--from-cc",
    is_flag=True,
    help="Re-derive C4 from CommonCrawl WET/WARC with C4's rules instead of reading the release.",
)
@click.option(
    "--badwords",
    default=None,
    help="Bad-words list (one a line) for --from-cc. Default: the shipped LDNOOBW English list (CC BY 4.0).",
)
@click.option(
    "--lang-threshold",
    type=click.FloatRange(0.0, 1.0),
    default=0.99,
    show_default=True,
    help="Minimum lid.176 English probability for --from-cc (the C4 paper's 0.99).",
)
@click.option(
    "--no-span-dedup", is_flag=True, help="Skip the three-sentence-span dedup (--from-cc)."
)
@click.option("--name", default="c4", show_default=True, help="Stage (output folder) name.")
@stage_options
@user_errors
def c4_command(
    inputs: tuple[str, ...],
    output: str,
    from_cc: bool,
    badwords: str | None,
    lang_threshold: float,
    no_span_dedup: bool,
    name: str,
    runner: str | None,
    workers: int | None,
    force: bool,
    quiet: bool,
    beam_args: tuple[str, ...],
) -> None:
    """C4 documents: the public release (`c4-*.json.gz`) unchanged, or re-derived with --from-cc.

    With --from-cc every rule is a named reason: line counters (line_no_endmark,
    line_too_few_words, line_javascript, line_policy, line_too_long_word) and page rejections
    (lorem_ipsum, curly_bracket, too_few_sentences, lang, badwords, dedup_too_few_sentences).
    """
    import os

    from llama_data.beam_jobs.c4 import C4Rules, make_c4_stage

    if badwords is not None and "://" not in badwords and not os.path.isfile(badwords):
        raise UserError(f"--badwords: no such file {badwords!r}")
    run = make_run_options(runner, workers, beam_args, quiet)
    rules = C4Rules(badwords=badwords, lang_threshold=lang_threshold, dedup_spans=not no_span_dedup)
    run_cli_stage(
        make_c4_stage(list(inputs), from_cc=from_cc, rules=rules, name=name), output, run, force
    )


@main.command("train-wikiref")
@click.option(
    "--wikipedia",
    "wikipedia",
    multiple=True,
    required=True,
    help="Wikipedia XML dump(s) (glob, repeatable).",
)
@click.option(
    "--cc",
    "cc",
    multiple=True,
    required=True,
    help="CommonCrawl documents: `llama-data ccnet` output (Parquet/JSON lines) or WET/WARC (glob, repeatable).",
)
@click.option(
    "--refs-warc",
    "refs_warc",
    multiple=True,
    help="WARC/WET of fetched reference pages: extra positives (repeatable).",
)
@click.option(
    "--output",
    "-o",
    required=True,
    help="Output root: writes wikiref-examples/ and wikiref-model/.",
)
@click.option(
    "--extractor",
    type=click.Choice(["scan", "parse"]),
    default="scan",
    show_default=True,
    help="Citation extractor: a fast regex scan, or a full mwparserfromhell parse (~15x slower).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the negative sample, holdout split and training.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0),
    default=0.25,
    show_default=True,
    help="Threshold the card reports.",
)
@click.option(
    "--holdout",
    type=click.FloatRange(0.01, 0.5),
    default=0.1,
    show_default=True,
    help="Held-out fraction.",
)
@click.option("--lr", type=float, default=0.5, show_default=True, help="fastText learning rate.")
@click.option("--epoch", type=int, default=10, show_default=True, help="fastText epochs.")
@click.option("--dim", type=int, default=32, show_default=True, help="fastText vector size.")
@click.option(
    "--word-ngrams",
    type=click.IntRange(1, 5),
    default=2,
    show_default=True,
    help="fastText wordNgrams.",
)
@click.option(
    "--min-count",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="fastText minCount.",
)
@click.option(
    "--bucket",
    type=click.IntRange(min=1),
    default=1_000_000,
    show_default=True,
    help="fastText hash buckets (model size = bucket * dim * 4 bytes).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="fastText threads (1 is bit-reproducible; more is faster but not).",
)
@run_options
@user_errors
def train_wikiref(
    wikipedia: tuple[str, ...],
    cc: tuple[str, ...],
    refs_warc: tuple[str, ...],
    output: str,
    extractor: str,
    seed: int,
    threshold: float,
    holdout: float,
    lr: float,
    epoch: int,
    dim: int,
    word_ngrams: int,
    min_count: int,
    bucket: int,
    threads: int,
    runner: str | None,
    workers: int | None,
    force: bool,
    quiet: bool,
    beam_args: tuple[str, ...],
) -> None:
    """Train the Wikipedia-reference classifier from Wikipedia dumps and CommonCrawl documents.

    Positives are documents whose URL a Wikipedia article cites; negatives as many random uncited
    documents (seeded). The model and a card with holdout precision, recall and AUC land in
    OUTPUT/wikiref-model/.
    """
    from llama_data.beam_jobs.wikiref import train_wikiref as run_train
    from llama_data.pipeline.wikiref import FastTextParams

    run = make_run_options(runner, workers, beam_args, quiet)
    params = FastTextParams(
        lr=lr,
        epoch=epoch,
        dim=dim,
        wordNgrams=word_ngrams,
        minCount=min_count,
        bucket=bucket,
        thread=threads,
        seed=seed,
    )
    results = run_train(
        list(wikipedia),
        list(cc),
        list(refs_warc),
        output,
        run,
        params,
        threshold,
        holdout,
        force,
        extractor=extractor,
    )
    if not quiet:
        for r in results:
            click.echo(r.summary())
        card = results[-1].stats.get("card", {})
        held = card.get("holdout", {})
        if held:
            click.echo(
                f"holdout ({held.get('n')} examples) at threshold {held.get('threshold')}: "
                f"precision {held.get('precision')}, recall {held.get('recall')}, AUC {held.get('auc')}"
            )


@main.command("wikiref-filter")
@click.option(
    "--model", required=True, help="train-wikiref's wikiref-model/ folder, or a fastText .bin."
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0),
    default=0.25,
    show_default=True,
    help="Keep documents scoring at least this.",
)
@click.option(
    "--name", default="wikiref-filter", show_default=True, help="Stage (output folder) name."
)
@stage_options
@user_errors
def wikiref_filter(
    inputs: tuple[str, ...],
    output: str,
    model: str,
    threshold: float,
    name: str,
    runner: str | None,
    workers: int | None,
    force: bool,
    quiet: bool,
    beam_args: tuple[str, ...],
) -> None:
    """Score documents with the Wikipedia-reference classifier; reject `not_wikiref` below the threshold.

    Every document gets a `wikiref_score` column; the input's other columns are kept.
    """
    from llama_data.beam_jobs.wikiref import make_filter_stage

    run = make_run_options(runner, workers, beam_args, quiet)
    run_cli_stage(make_filter_stage(list(inputs), model, threshold, name=name), output, run, force)


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
    default=0.6,
    show_default=True,
    help="Containment the LSH Ensemble bands are tuned for (candidates only; every pair is "
    "verified).",
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


@main.command()
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    help="BigQuery github_repos files+contents export rows: JSON lines (.jsonl[.gz|.zst]) or "
    "Parquet; file or glob, repeatable.",
)
@click.option(
    "--licenses",
    multiple=True,
    help="Export of the github_repos.licenses table (repo_name, license); repeatable. Without "
    "it a `license` column on the rows is used.",
)
@click.option(
    "--repos",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder of local git checkouts (DIR/name or DIR/owner/name); licences are classified "
    "from each checkout's LICENSE/COPYING files.",
)
@click.option(
    "--bigquery",
    is_flag=True,
    help="Read the BigQuery tables directly (needs llama-data[gcp], credentials, and "
    "--project/--temp_location after `--`).",
)
@click.option(
    "--bq-dataset",
    default="bigquery-public-data.github_repos",
    show_default=True,
    help="project.dataset holding files/contents/licenses.",
)
@click.option(
    "--bq-licensed-only",
    is_flag=True,
    help="Push the licence filter into the query (scans less, but other licences go uncounted).",
)
@click.option("--bq-skip-binary", is_flag=True, help="Leave binary blobs out of the query.")
@click.option("--bq-limit", type=click.IntRange(min=1), default=None, help="LIMIT, for trials.")
@click.option(
    "--allow-license",
    "allowed",
    multiple=True,
    help="Licence keys to keep (default: apache-2.0, bsd-2-clause, bsd-3-clause, mit).",
)
@click.option(
    "--max-row-bytes",
    type=click.IntRange(min=1),
    default=8 * 1024 * 1024,
    show_default=True,
    help="Rows/files larger than this are not parsed (rejected too_large or dead-lettered).",
)
@click.option(
    "--max-file-bytes",
    type=click.IntRange(min=1),
    default=1024 * 1024,
    show_default=True,
    help="Files larger than this (UTF-8 bytes) are rejected too_large.",
)
@click.option("--max-line-length", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option(
    "--max-mean-line-length", type=click.FloatRange(min=0), default=100.0, show_default=True
)
@click.option("--min-alnum-fraction", type=click.FloatRange(0, 1), default=0.25, show_default=True)
@click.option("--min-alpha-per-token", type=click.FloatRange(min=0), default=1.5, show_default=True)
@click.option("--no-dedup", is_flag=True, help="Skip the exact content dedup.")
@click.option("--output", "-o", required=True, help="Output root; the stage writes OUTPUT/github/.")
@run_options
@user_errors
def github(
    inputs: tuple[str, ...],
    licenses: tuple[str, ...],
    repos: str | None,
    bigquery: bool,
    bq_dataset: str,
    bq_licensed_only: bool,
    bq_skip_binary: bool,
    bq_limit: int | None,
    allowed: tuple[str, ...],
    max_row_bytes: int,
    max_file_bytes: int,
    max_line_length: int,
    max_mean_line_length: float,
    min_alnum_fraction: float,
    min_alpha_per_token: float,
    no_dedup: bool,
    output: str,
    runner: str | None,
    workers: int | None,
    force: bool,
    quiet: bool,
    beam_args: tuple[str, ...],
) -> None:
    """GitHub: keep Apache/BSD/MIT projects, drop low-quality and generated files, strip licence
    headers, and remove exact duplicate files (the first (repo_name, path) copy is kept)."""
    from llama_data.beam_jobs.github import GithubOptions, make_github_stage
    from llama_data.pipeline.github.bigquery import BigQuerySource
    from llama_data.pipeline.github.licenses import ALLOWED_LICENSES, normalize_license_key

    run = make_run_options(runner, workers, beam_args, quiet)
    source = None
    if bigquery:
        try:
            source = BigQuerySource(
                dataset=bq_dataset,
                licenses_only=bq_licensed_only,
                skip_binary=bq_skip_binary,
                limit=bq_limit,
            )
        except ValueError as exc:
            raise UserError(f"--bigquery: {exc}") from exc
    keys = sorted({normalize_license_key(k) for k in allowed}) or sorted(ALLOWED_LICENSES)
    options = GithubOptions(
        inputs=inputs,
        licenses=licenses,
        repos=repos,
        bigquery=source,
        allowed_licenses=tuple(keys),
        max_row_bytes=max_row_bytes,
        max_file_bytes=max_file_bytes,
        max_line_length=max_line_length,
        max_mean_line_length=max_mean_line_length,
        min_alnum_fraction=min_alnum_fraction,
        min_alpha_per_token=min_alpha_per_token,
        dedup=not no_dedup,
    )
    run_cli_stage(make_github_stage(options), output, run, force)


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
        context_length=context_length,
        total_tokens=tokens,
        renormalize=renormalize,
        seed=seed,
        target_bytes=shard_bytes,
        rows_per_shard=rows_per_shard,
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


# ---------------------------------------------------------------------------------------------
# llama-train: the trainer (llama_data/model/)


def _model_overrides(pairs: tuple[str, ...]) -> dict:
    out: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageFailure(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            out[key.strip()] = int(value)
        except ValueError:
            try:
                out[key.strip()] = float(value)
            except ValueError as e:
                raise UsageFailure(f"--set {key}: {value!r} is not a number") from e
    return out


@train_main.command("fit")
@click.option("--data", type=click.Path(), help="Shard directory (with manifest.json).")
@click.option("--preset", help="Model preset: tiny, 125m, 1b, 7b, 13b, 33b, 65b.")
@click.option("--out", type=click.Path(), help="Run directory (checkpoints, logs); re-run resumes.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    help="TOML/JSON file of training options (command-line options win).",
)
@click.option(
    "--set",
    "model_set",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a model config field, e.g. --set n_layers=4.",
)
@click.option("--steps", type=int, help="Optimizer steps [default: one pass over the shards].")
@click.option("--batch-tokens", type=int, help="Global batch in tokens [default: the preset's].")
@click.option("--micro-batch", type=int, help="Rows per process per micro-step [8].")
@click.option("--lr", type=float, help="Peak learning rate [default: the preset's].")
@click.option("--warmup-steps", type=int, help="Linear warmup steps [2000].")
@click.option(
    "--final-lr-ratio", type=float, help="Cosine ends at this fraction of the peak [0.1]."
)
@click.option("--weight-decay", type=float, help="AdamW weight decay [0.1].")
@click.option("--grad-clip", type=float, help="Clip gradient norm [1.0]; 0 disables.")
@click.option("--seed", type=int, help="Initialization seed [0].")
@click.option(
    "--dtype",
    type=click.Choice(["auto", "bf16", "fp32"]),
    help="Compute dtype [auto: bf16 autocast on CUDA, fp32 on CPU].",
)
@click.option("--compile/--no-compile", default=None, help="torch.compile the model.")
@click.option(
    "--activation-checkpointing/--no-activation-checkpointing",
    default=None,
    help="Recompute activations in backward to save memory.",
)
@click.option(
    "--parallel",
    type=click.Choice(["ddp", "fsdp"]),
    help="Under torchrun: DDP or FSDP2 fully_shard [ddp].",
)
@click.option("--checkpoint-every", type=int, help="Steps between checkpoints [1000].")
@click.option("--keep-checkpoints", type=int, help="Keep the last K checkpoints [3].")
@click.option(
    "--async-checkpoint/--no-async-checkpoint",
    default=None,
    help="Write checkpoints in the background while training goes on [off].",
)
@click.option("--log-every", type=int, help="Steps between log records [10].")
@click.option(
    "--init-from",
    type=click.Path(exists=True, file_okay=False),
    help="Initial weights from a Hugging Face LlamaForCausalLM folder.",
)
@click.option("--peak-tflops", type=float, help="Peak bf16 TFLOP/s per GPU for MFU.")
@click.option(
    "--verify",
    type=click.Choice(["sha256", "size", "none"]),
    help="Check shard files against the manifest [size].",
)
@click.option("--device", help="auto, cpu or cuda [auto].")
@click.option("--progress/--no-progress", default=None, help="Progress line [on a terminal].")
@click.option(
    "--dry-run", is_flag=True, help="Build the model on the meta device and print its size."
)
def fit_cmd(config_file: str | None, model_set: tuple[str, ...], dry_run: bool, **options) -> None:
    """Train a LLaMA model on token shards (resumes the run in --out if it has checkpoints)."""
    from llama_data.model import trainer

    options["model"] = _model_overrides(model_set)
    try:
        if dry_run:
            info = trainer.dry_run(options["preset"] or "tiny", options["model"])
            click.echo(
                f"preset {info['preset']}: {info['parameters']:,} parameters "
                f"({info['parameters_human']}) built on the meta device"
            )
            click.echo(json.dumps(info, indent=2))
            return
        cfg = trainer.config_from_sources(config_file, options)
        trainer.fit(cfg)
    except (trainer.TrainError, ValueError) as e:
        raise UsageFailure(str(e)) from e


@train_main.command("eval")
@click.option(
    "--checkpoint",
    required=True,
    type=click.Path(exists=True),
    help="Run directory, checkpoint folder or Hugging Face folder.",
)
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--micro-batch", default=8, show_default=True, type=int)
@click.option("--max-rows", type=int, help="Evaluate only the first N rows.")
@click.option("--dtype", type=click.Choice(["auto", "bf16", "fp32"]), default="auto")
@click.option("--device", default="auto", show_default=True)
def eval_cmd(
    checkpoint: str, data: str, micro_batch: int, max_rows: int | None, dtype: str, device: str
) -> None:
    """Perplexity per source on a shard directory (JSON on stdout)."""
    from llama_data.model import trainer

    try:
        model, _ = trainer.load_model(checkpoint, device)
        result = trainer.evaluate(model, data, micro_batch, max_rows, dtype)
    except (trainer.TrainError, ValueError) as e:
        raise UsageFailure(str(e)) from e
    click.echo(json.dumps(result, indent=2))


@train_main.command("sample")
@click.option(
    "--checkpoint",
    required=True,
    type=click.Path(exists=True),
    help="Run directory, checkpoint folder or Hugging Face folder.",
)
@click.option("--prompt", default="", help="Text to continue (a BOS token is prepended).")
@click.option(
    "--tokenizer",
    type=click.Path(dir_okay=False),
    help="SentencePiece model [default: the one in the training shards' manifest].",
)
@click.option("--max-new-tokens", default=128, show_default=True, type=int)
@click.option("--temperature", default=0.8, show_default=True, type=float, help="0 = greedy.")
@click.option("--top-p", default=0.95, show_default=True, type=float)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--device", default="auto", show_default=True)
def sample_cmd(
    checkpoint: str,
    prompt: str,
    tokenizer: str | None,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    seed: int,
    device: str,
) -> None:
    """Generate text with a KV cache."""
    from llama_data.model import generate, trainer

    try:
        model, meta = trainer.load_model(checkpoint, device)
        data = (meta.get("train") or {}).get("data")
        tok = generate.Tokenizer(generate.find_tokenizer(tokenizer, data, checkpoint))
        if tok.vocab_size != model.cfg.vocab_size:
            raise ValueError(
                f"tokenizer has {tok.vocab_size} pieces, the model {model.cfg.vocab_size}"
            )
        ids = generate.generate(
            model, tok.encode(prompt), max_new_tokens, temperature, top_p, seed, tok.eos_id
        )
    except (trainer.TrainError, ValueError) as e:
        raise UsageFailure(str(e)) from e
    click.echo(prompt + tok.decode(ids))


@train_main.command("export-hf")
@click.option(
    "--checkpoint",
    required=True,
    type=click.Path(exists=True),
    help="Run directory or checkpoint folder.",
)
@click.option("--out", required=True, type=click.Path(), help="Folder to write.")
@click.option(
    "--dtype",
    type=click.Choice(["float32", "bfloat16", "float16"]),
    default="float32",
    show_default=True,
)
@click.option(
    "--tokenizer",
    type=click.Path(dir_okay=False),
    help="SentencePiece model [default: the one in the training shards' manifest].",
)
def export_hf_cmd(checkpoint: str, out: str, dtype: str, tokenizer: str | None) -> None:
    """Write a Hugging Face LlamaForCausalLM folder (config.json, safetensors, tokenizer)."""
    from llama_data.model import export, trainer

    try:
        path = export.export_checkpoint(checkpoint, out, dtype, tokenizer)
    except (trainer.TrainError, ValueError) as e:
        raise UsageFailure(str(e)) from e
    click.echo(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
