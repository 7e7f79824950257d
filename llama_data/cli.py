"""Command line: click commands that parse and validate, then call one function each.

Errors the user can fix (a bad flag, a config typo, an input that matches nothing) print one line
and exit with code 2; anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import re
import sys
import types
import typing
from collections.abc import Callable
from typing import Any

import click

from llama_data import __version__
from llama_data.pipeline import config
from llama_data.pipeline.ccnet.train_lm import TrainLmSettings
from llama_data.pipeline.errors import UserError
from llama_data.pipeline.wikipedia import config as wikipedia_config


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


@dataclasses.dataclass(frozen=True)
class RunArgs:
    """The run options every Beam command shares, as one value."""

    runner: str | None
    workers: int | None
    force: bool
    quiet: bool
    beam_args: tuple[str, ...]

    def options(self, defaults: Any = None) -> Any:
        """Beam `RunOptions` (a config's [build] section fills what the flags leave out)."""
        from llama_data.beam_jobs.runners import RunOptions

        _setup_logging(self.quiet)
        first = self.beam_args[0] if self.beam_args else "--"
        if first != "--" and not str(first).startswith("--"):
            raise UserError(f"unexpected argument {first!r} (Beam pipeline options go after `--`)")
        runner = self.runner or (defaults.runner if defaults else "DirectRunner")
        workers = self.workers or (defaults.workers if defaults else 1)
        if runner in config.LOCAL_RUNNERS and workers > config.MAX_LOCAL_WORKERS:
            raise UserError(
                f"--workers: at most {config.MAX_LOCAL_WORKERS} for {runner}, got {workers}"
            )
        return RunOptions(
            runner=runner,
            workers=workers,
            pipeline_args=tuple(defaults.pipeline_args if defaults else ())
            + tuple(a for a in self.beam_args if a != "--"),
            quiet=self.quiet,
        )


def run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--runner/--workers/--force/--quiet and Beam pipeline options passed through after `--`,
    handed to the command as one `run_args: RunArgs`."""

    @functools.wraps(fn)
    def command(
        *args: Any,
        runner: str | None,
        workers: int | None,
        force: bool,
        quiet: bool,
        beam_args: tuple[str, ...],
        **kwargs: Any,
    ) -> Any:
        return fn(*args, run_args=RunArgs(runner, workers, force, quiet, beam_args), **kwargs)

    wrapped = click.option(
        "--runner",
        type=click.Choice(config.RUNNER_NAMES),
        default=None,
        help="Beam runner (default DirectRunner, Beam's local runner).",
    )(command)
    wrapped = click.option(
        "--workers",
        type=click.IntRange(min=1, max=config.MAX_WORKERS),
        default=None,
        help="Local worker processes (DirectRunner multi-process mode when > 1); cluster "
        "parallelism otherwise.",
    )(wrapped)
    wrapped = click.option(
        "--force", is_flag=True, help="Rerun stages even when their outputs are complete."
    )(wrapped)
    wrapped = click.option("--quiet", "-q", is_flag=True, help="No progress display or summaries.")(
        wrapped
    )
    return click.argument("beam_args", nargs=-1, type=click.UNPROCESSED)(wrapped)


def stage_options(
    fn: Callable[..., Any] | None = None,
    *,
    inputs_required: bool = True,
    input_help: str = "Input file or glob (local, gs://, s3://, http(s)://); repeatable.",
) -> Any:
    """Options of every single-stage command: --input (repeatable glob) and --output, + run options."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = run_options(fn)
        fn = click.option(
            "--output", "-o", required=True, help="Output root; the stage writes OUTPUT/<stage>/."
        )(fn)
        return click.option(
            "--input", "-i", "inputs", multiple=True, required=inputs_required, help=input_help
        )(fn)

    return deco(fn) if fn is not None else deco


# --- a source's settings as options: defaults and help come from its config dataclass ---------


def _flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _base_type(tp: Any) -> Any:
    """`X | None` -> X."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if typing.get_origin(tp) in (types.UnionType, typing.Union) else tp


def _setting_option(f: dataclasses.Field, tp: Any) -> Callable[..., Any]:
    meta, flag, default = f.metadata, _flag(f), config.field_default(f)
    if default is dataclasses.MISSING:
        default = None
    base = _base_type(tp)
    if base is bool:
        if flag.startswith("--no-"):  # present: the opposite of the default
            return click.option(
                flag, f.name, flag_value=not default, default=default, help=meta["help"]
            )
        return click.option(flag, f.name, is_flag=True, default=default, help=meta["help"])
    if typing.get_origin(base) is list:
        if meta["sep"]:
            text = meta["sep"].join(default)
            return click.option(
                flag, f.name, default=text, show_default=bool(text), help=meta["help"]
            )
        return click.option(flag, f.name, multiple=True, help=meta["help"])
    return click.option(
        flag,
        f.name,
        type=base,
        default=default,
        required=meta["required"],
        show_default=default is not None,
        help=meta["help"],
    )


def setting_options(cls: type) -> Callable[..., Any]:
    """One option per documented setting of config dataclass `cls` (`config.setting`)."""
    hints = typing.get_type_hints(cls)

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        for f in reversed(config.documented_fields(cls)):
            fn = _setting_option(f, hints[f.name])(fn)
        return fn

    return deco


def config_from_options(cls: type, values: dict[str, Any], **fixed: Any) -> Any:
    """The typed config of a command's options (validated; errors name the flag)."""
    hints = typing.get_type_hints(cls)
    kwargs = dict(fixed)
    for f in config.documented_fields(cls):
        value = values.pop(f.name)
        if typing.get_origin(_base_type(hints[f.name])) is list:
            sep = f.metadata["sep"]
            if sep:
                value = (
                    []
                    if value.strip().lower() == "all"
                    else [v.strip() for v in value.split(sep) if v.strip()]
                )
            else:
                value = list(value) if value else config.field_default(f)
        kwargs[f.name] = value
    cfg = cls(**kwargs)
    try:
        if hasattr(cfg, "validate"):
            cfg.validate("<option>")
    except config.ConfigError as exc:
        flags = {f.name: _flag(f) for f in config.documented_fields(cls)}
        message = re.sub(
            r"<option>\.(\w+)", lambda m: flags.get(m.group(1), "--" + m.group(1)), str(exc)
        )
        raise UserError(message.replace("<option>", "options")) from None
    return cfg


def source_command(
    source: str, command: str | None = None, **stage_kw: Any
) -> Callable[[Callable[..., Any]], Any]:
    """The command of a source: its settings as options, then the same planner `build` uses on
    a config of this source alone. The decorated function only carries the docstring."""
    cls = config.source_configs()[source]

    def deco(doc_fn: Callable[..., Any]) -> Any:
        @main.command(command or source, help=doc_fn.__doc__)
        @setting_options(cls)
        @click.option(
            "--name",
            default=command or source,
            show_default=True,
            help="Stage (output folder) name.",
        )
        @stage_options(**stage_kw)
        @user_errors
        def run_command(
            inputs: tuple[str, ...],
            output: str,
            name: str,
            run_args: RunArgs,
            **values: Any,
        ) -> None:
            from llama_data.beam_jobs.build import run_source

            run = run_args.options()
            cfg = config_from_options(cls, values, inputs=list(inputs))
            run_source(source, name, cfg, output, run, run_args.force, echo=click.echo)

        return run_command

    return deco


def _register_source_commands() -> None:
    """A command per source in the configs' registry: its name, help and input option come from
    the config class (`command`, `command_help`, `input_help`, `inputs_required`), so a new
    source adds nothing here."""
    for source, cls in sorted(config.source_configs().items()):
        command = getattr(cls, "command", source)
        stage_kw = {"inputs_required": getattr(cls, "inputs_required", True)}
        if getattr(cls, "input_help", None):
            stage_kw["input_help"] = cls.input_help
        doc = getattr(cls, "command_help", None) or cls.__doc__

        def help_only() -> None:
            pass

        help_only.__doc__ = doc
        source_command(source, command, **stage_kw)(help_only)


def run_cli_stage(spec: Any, output: str, run: Any, force: bool) -> Any:
    """Run one stage from a command and print its summary (or nothing with --quiet)."""
    from llama_data.beam_jobs.harness import run_stage
    from llama_data.beam_jobs.output_lock import claim_output

    with claim_output(output):
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
    run_args: RunArgs,
) -> None:
    """Run every stage the config asks for, skipping complete ones."""
    import os

    from llama_data.beam_jobs.build import load_build_config, run_build

    config = load_build_config(config_path)
    run = run_args.options(defaults=config.build)
    out = output or config.build.output or ("demo-out" if config_path is None else "llama-data-out")
    if "://" not in out:
        out = os.path.abspath(out)
    results = run_build(config, out, run, force=run_args.force, dry_run=dry_run, echo=click.echo)
    if results and not run_args.quiet and not run.graph_only:
        click.echo(f"Outputs are in {out}")
        page = os.path.join(out, "report", "index.html")
        if "://" not in out and os.path.isfile(page):
            click.echo(f"Report: {page}")


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
    run_args: RunArgs,
) -> None:
    """Remove exact duplicate documents across the whole input (whitespace-normalized text).

    The document with the smallest id is kept; the others are rejected as `duplicate_of:<id>`.
    """
    from llama_data.beam_jobs.documents import make_dedup_exact_stage

    run = run_args.options()
    run_cli_stage(make_dedup_exact_stage(list(inputs), source=source), output, run, run_args.force)


PAPER_WIKIPEDIA_LANGUAGES = ",".join(wikipedia_config.PAPER_WIKIPEDIA_LANGUAGES)


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


@main.command("train-wikiref")
@click.option(
    "--wikipedia", multiple=True, required=True, help="Wikipedia XML dump(s) (glob, repeatable)."
)
@click.option(
    "--cc",
    multiple=True,
    required=True,
    help="CommonCrawl documents: `llama-data ccnet` output (Parquet/JSON lines) or WET/WARC "
    "(glob, repeatable).",
)
@click.option(
    "--refs-warc",
    multiple=True,
    help="WARC/WET of fetched reference pages: extra positives (repeatable).",
)
@click.option(
    "--output",
    "-o",
    required=True,
    help="Output root: writes wikiref-examples/ and wikiref-model/.",
)
@setting_options(config.WikirefSection)
@run_options
@user_errors
def train_wikiref(
    wikipedia: tuple[str, ...],
    cc: tuple[str, ...],
    refs_warc: tuple[str, ...],
    output: str,
    run_args: RunArgs,
    **values: Any,
) -> None:
    """Train the Wikipedia-reference classifier from Wikipedia dumps and CommonCrawl documents.

    Positives are documents whose URL a Wikipedia article cites; negatives as many random uncited
    documents (seeded). The model and a card with holdout precision, recall and AUC land in
    OUTPUT/wikiref-model/.
    """
    from llama_data.beam_jobs.wikiref import train_wikiref as run_train
    from llama_data.pipeline.wikiref import fasttext_params

    run = run_args.options()
    cfg = config_from_options(
        config.WikirefSection,
        values,
        wikipedia=list(wikipedia),
        cc=list(cc),
        refs_warc=list(refs_warc),
    )
    results = run_train(
        cfg.wikipedia,
        cfg.cc,
        cfg.refs_warc,
        output,
        run,
        fasttext_params(cfg),
        cfg.threshold,
        cfg.holdout,
        run_args.force,
        extractor=cfg.extractor,
    )
    if not run_args.quiet:
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
    run_args: RunArgs,
) -> None:
    """Score documents with the Wikipedia-reference classifier; reject `not_wikiref` below the threshold.

    Every document gets a `wikiref_score` column; the input's other columns are kept.
    """
    from llama_data.beam_jobs.wikiref import make_filter_stage

    run = run_args.options()
    run_cli_stage(
        make_filter_stage(list(inputs), model, threshold, name=name), output, run, run_args.force
    )


@main.command("train-lm")
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    required=True,
    help="Document files or globs (Parquet or JSON lines, e.g. the wikipedia stage output); "
    "repeatable.",
)
@click.option(
    "--output",
    "-o",
    required=True,
    help="Model folder: writes <lang>.sp.model, <lang>.arpa.bin, <lang>.card.json.",
)
@setting_options(TrainLmSettings)
@user_errors
def train_lm_command(inputs: tuple[str, ...], output: str, **values: Any) -> None:
    """Train the CCNet perplexity model: SentencePiece + KenLM 5-gram on normalized text."""
    from llama_data.pipeline.ccnet.train_lm import train_lm

    _setup_logging(quiet=False)
    settings = config_from_options(TrainLmSettings, values)
    card = train_lm(list(inputs), output, settings)
    t = card["training"]
    click.echo(
        f"[train-lm] {settings.lang}: {t['docs']:,} docs, {t['lines']:,} lines, "
        f"{t['tokens']:,} tokens, vocab {t['vocab_size']:,} in {card['seconds']}s -> {output}"
    )


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
@click.option(
    "--weights",
    default="table1",
    show_default=True,
    help="Sampling weights: table1 or a JSON/TOML file.",
)
@setting_options(config.TokenizerSection)
@user_errors
def train_tokenizer(inputs: tuple[str, ...], output: str, weights: str, **values: Any) -> None:
    """Train the SentencePiece BPE tokenizer (LLaMA settings) on a mixture-weighted sample."""
    from llama_data.beam_jobs.tokenize import train_tokenizer_cli

    tok = config_from_options(config.TokenizerSection, values)
    click.echo(
        train_tokenizer_cli(
            list(inputs),
            output,
            tok.vocab_size,
            weights,
            tok.sample_bytes,
            tok.seed,
            tok.num_threads,
        )
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
    run_args: RunArgs,
) -> None:
    """Encode documents into per-source token streams (BOS ... EOS per document), in parallel."""
    from llama_data.beam_jobs.tokenize import tokenize_cli

    run = run_args.options()
    message = tokenize_cli(list(inputs), tokenizer, output, run)
    if not run_args.quiet:
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
@setting_options(config.MixtureSection)
@click.option(
    "--rows-per-shard", type=click.IntRange(min=1), default=None, help="Overrides --shard-bytes."
)
@run_options
@user_errors
def mix(
    input_dir: str,
    output: str,
    weights: str,
    rows_per_shard: int | None,
    run_args: RunArgs,
    **values: Any,
) -> None:
    """Cut training rows from the token streams at exact proportions into Arrow shards."""
    from llama_data.beam_jobs.tokenize import mix_cli

    mixture = config_from_options(config.MixtureSection, values)
    text = mix_cli(
        input_dir,
        output,
        weights,
        run_args.options(),
        context_length=mixture.context_length,
        total_tokens=mixture.tokens,
        renormalize=mixture.renormalize,
        seed=mixture.seed,
        target_bytes=mixture.shard_bytes,
        rows_per_shard=rows_per_shard,
    )
    if not run_args.quiet:
        click.echo(text)


@main.command()
@click.argument("out")
@click.option("--no-paper", is_flag=True, help="Leave out the paper's columns.")
@user_errors
def report(out: str, no_paper: bool) -> None:
    """Print this build's Table 1 (from OUT/tokens/manifest.json or a shard folder) and write
    the build report OUT/report/index.html (plots, reasons, samples) with OUT/report/report.json."""
    import os

    from llama_data.pipeline.build_report import has_stages, write_report
    from llama_data.pipeline.report import report_cli

    if not has_stages(out):  # a shard folder alone: Table 1 only, as before
        click.echo(report_cli(out, paper=not no_paper))
        return
    try:
        click.echo(report_cli(out, paper=not no_paper))
    except UserError as exc:
        click.echo(f"No Table 1 yet: {exc}")
    click.echo(f"Report: {os.path.abspath(write_report(out))}")


_register_source_commands()


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

    from llama_data.pipeline.stackexchange.download import download_stackexchange

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
    from llama_data.pipeline.books.download import download_gutenberg as fetch

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
    from llama_data.pipeline.ccnet.download import download_cc

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


def train_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """An option per documented TrainConfig field, with no click default: values left out come
    from a --config file, then the dataclass (command-line options win)."""
    from llama_data.model.train_config import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    for f in reversed([f for f in dataclasses.fields(TrainConfig) if "help" in f.metadata]):
        meta, flag = f.metadata, "--" + f.name.replace("_", "-")
        shown = meta["default_text"] or ("off" if f.default is False else f.default)
        text = f"{meta['help']} [{shown}]" if shown not in (None, "") else meta["help"]
        base = _base_type(hints[f.name])
        if base is bool:
            fn = click.option(f"{flag}/--no-{flag[2:]}", f.name, default=None, help=text)(fn)
        elif meta["choices"]:
            fn = click.option(flag, f.name, type=click.Choice(meta["choices"]), help=text)(fn)
        else:
            fn = click.option(flag, f.name, type=base, help=text)(fn)
    return fn


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
@train_options
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
