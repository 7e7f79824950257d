"""Command line: click commands that parse and validate, then call one function each.

Errors the user can fix (a bad flag, a config typo, an input that matches nothing) print one line
and exit with code 2; anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
import typing
from collections.abc import Callable
from typing import Any

import click

from llama_data import __version__
from llama_data.beam_jobs.output_lock import claim_output
from llama_data.model.train_config import (
    EvalOptions,
    ExportOptions,
    SampleOptions,
    TrainConfig,
    TrainError,
)
from llama_data.pipeline import config
from llama_data.pipeline.ccnet.train_lm import TrainLmSettings
from llama_data.pipeline.errors import UserError


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
        return RunOptions.from_flags(
            self.runner, self.workers, self.beam_args, self.quiet, defaults
        )


# applied in this order, innermost first
_RUN_OPTIONS = (
    click.option(
        "--runner",
        type=click.Choice(config.RUNNER_NAMES),
        help="Beam runner (default DirectRunner, Beam's local runner).",
    ),
    click.option(
        "--workers",
        type=click.IntRange(min=1, max=config.MAX_WORKERS),
        help="Local worker processes (DirectRunner multi-process mode when > 1); cluster "
        "parallelism otherwise.",
    ),
    click.option(
        "--force", is_flag=True, help="Rerun stages even when their outputs are complete."
    ),
    click.option("--quiet", "-q", is_flag=True, help="No progress display or summaries."),
    click.argument("beam_args", nargs=-1, type=click.UNPROCESSED),
)


def run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--runner/--workers/--force/--quiet and Beam pipeline options passed through after `--`,
    handed to the command as one `run_args: RunArgs`."""

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        names = ("runner", "workers", "force", "quiet", "beam_args")
        return fn(*args, run_args=RunArgs(*(kwargs.pop(n) for n in names)), **kwargs)

    return functools.reduce(lambda f, option: option(f), _RUN_OPTIONS, command)


def _inputs(help: str, required: bool = True) -> Callable[..., Any]:  # noqa: A002
    return click.option(
        "--input", "-i", "inputs", multiple=True, required=required, help=help + " Repeatable."
    )


def _output(help: str) -> Callable[..., Any]:  # noqa: A002
    return click.option("--output", "-o", required=True, help=help)


_CLEANED = "Cleaned documents (Parquet stage outputs or JSONL), glob."


def stage_options(
    fn: Callable[..., Any] | None = None,
    *,
    inputs_required: bool = True,
    input_help: str = "Input file or glob (local, gs://, s3://, http(s)://).",
) -> Any:
    """Options of every single-stage command: --input (repeatable glob) and --output, + run options."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = _output("Output root; the stage writes OUTPUT/<stage>/.")(run_options(fn))
        return _inputs(input_help, inputs_required)(fn)

    return deco(fn) if fn is not None else deco


# --- a source's settings as options: defaults and help come from its config dataclass ---------


def _setting_option(f: dataclasses.Field, tp: Any) -> Callable[..., Any]:
    meta, flag, default = f.metadata, config.flag_of(f), config.field_default(f)
    if default is dataclasses.MISSING:
        default = None
    names = (flag, meta["short"]) if meta.get("short") else (flag,)
    base = config.base_type(tp)
    if base is bool:
        if flag.startswith("--no-"):  # present: the opposite of the default
            return click.option(
                flag, f.name, flag_value=not default, default=default, help=meta["help"]
            )
        return click.option(flag, f.name, is_flag=True, default=default, help=meta["help"])
    if typing.get_origin(base) is list:
        if meta["sep"]:
            text = meta["sep"].join(default) if default else None
            return click.option(
                *names,
                f.name,
                default=text,
                required=meta["required"],
                show_default=bool(text),
                help=meta["help"],
            )
        return click.option(*names, f.name, multiple=True, help=meta["help"])
    return click.option(
        *names,
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


def _register_source_commands() -> None:
    """A command per source in the configs' registry, running the same planner `build` uses on
    a config of this source alone. Its name, help and input option come from the config class
    (`command`, `command_help`, `input_help`, `inputs_required`), so a new source adds nothing
    here."""
    for source, cls in sorted(config.source_configs().items()):
        command = getattr(cls, "command", source)
        stage_kw = {"inputs_required": getattr(cls, "inputs_required", True)}
        if getattr(cls, "input_help", None):
            stage_kw["input_help"] = cls.input_help

        def run_command(source: str = source, cls: type = cls, **values: Any) -> None:
            from llama_data.beam_jobs.build import run_source

            run_args, output, name = (values.pop(k) for k in ("run_args", "output", "name"))
            cfg = config.config_from_values(cls, values, inputs=list(values.pop("inputs")))
            run_source(source, name, cfg, output, run_args.options(), run_args.force, click.echo)

        name_option = click.option(
            "--name", default=command, show_default=True, help="Stage (output folder) name."
        )
        options = setting_options(cls)(
            name_option(stage_options(**stage_kw)(user_errors(run_command)))
        )
        main.command(command, help=getattr(cls, "command_help", None) or cls.__doc__)(options)


def run_cli_stage(spec: Any, output: str, run: Any, force: bool) -> Any:
    """Run one stage from a command and print its summary (or nothing with --quiet)."""
    from llama_data.beam_jobs.harness import run_stage

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
    "--config", "-c", "config_path", help="Build config (TOML). Default: the bundled demo."
)
@click.option(
    "--output",
    "-o",
    help="Output root (default: [build].output, else ./demo-out for the demo, ./llama-data-out).",
)
@click.option("--dry-run", is_flag=True, help="Print the plan (stages, inputs, what is complete).")
@run_options
@user_errors
def build(config_path: str | None, output: str | None, dry_run: bool, run_args: RunArgs) -> None:
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
def dedup_exact(inputs: tuple[str, ...], output: str, source: str, run_args: RunArgs) -> None:
    """Remove exact duplicate documents across the whole input (whitespace-normalized text).

    The document with the smallest id is kept; the others are rejected as `duplicate_of:<id>`.
    """
    from llama_data.beam_jobs.documents import make_dedup_exact_stage

    run = run_args.options()
    run_cli_stage(make_dedup_exact_stage(list(inputs), source=source), output, run, run_args.force)


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
@_output("Output root: writes wikiref-examples/ and wikiref-model/.")
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
    from llama_data.beam_jobs.wikiref import train_wikiref_command

    run = run_args.options()
    fixed = {"wikipedia": list(wikipedia), "cc": list(cc), "refs_warc": list(refs_warc)}
    cfg = config.config_from_values(config.WikirefSection, values, **fixed)
    with claim_output(output):
        text = train_wikiref_command(cfg, output, run, run_args.force)
    if not run_args.quiet:
        click.echo(text)


@main.command("wikiref-filter")
@click.option(
    "--model", required=True, help="train-wikiref's wikiref-model/ folder, or a fastText .bin."
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0),
    default=config.default_of(config.WikirefSection, "threshold"),
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
@_inputs("Document files or globs (Parquet or JSON lines, e.g. the wikipedia stage output).")
@_output("Model folder: writes <lang>.sp.model, <lang>.arpa.bin, <lang>.card.json.")
@setting_options(TrainLmSettings)
@user_errors
def train_lm_command(inputs: tuple[str, ...], output: str, **values: Any) -> None:
    """Train the CCNet perplexity model: SentencePiece + KenLM 5-gram on normalized text."""
    from llama_data.pipeline.ccnet.train_lm import train_lm

    _setup_logging(quiet=False)
    settings = config.config_from_values(TrainLmSettings, values)
    with claim_output(output):
        card = train_lm(list(inputs), output, settings)
    t = card["training"]
    click.echo(
        f"[train-lm] {settings.lang}: {t['docs']:,} docs, {t['lines']:,} lines, "
        f"{t['tokens']:,} tokens, vocab {t['vocab_size']:,} in {card['seconds']}s -> {output}"
    )


@main.command("train-tokenizer")
@_inputs(_CLEANED)
@_output("Folder for tokenizer.model and tokenizer.json (the card).")
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

    tok = config.config_from_values(config.TokenizerSection, values)
    with claim_output(output):
        text = train_tokenizer_cli(
            list(inputs),
            output,
            tok.vocab_size,
            weights,
            tok.sample_bytes,
            tok.seed,
            tok.num_threads,
        )
    click.echo(text)


@main.command()
@click.option(
    "--tokenizer", "-t", required=True, help="tokenizer.model, or the folder train-tokenizer wrote."
)
@_inputs(_CLEANED)
@_output("Folder for the per-source token streams.")
@run_options
@user_errors
def tokenize(tokenizer: str, inputs: tuple[str, ...], output: str, run_args: RunArgs) -> None:
    """Encode documents into per-source token streams (BOS ... EOS per document), in parallel."""
    from llama_data.beam_jobs.tokenize import tokenize_cli

    run = run_args.options()
    with claim_output(output, beside=True):
        message = tokenize_cli(list(inputs), tokenizer, output, run)
    if not run_args.quiet:
        click.echo(message)


@main.command()
@click.option(
    "--input", "-i", "input_dir", required=True, help="Token streams written by `tokenize`."
)
@_output("Shard folder: shard-NNNNN.arrow + manifest.json.")
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

    mixture = config.config_from_values(config.MixtureSection, values)
    with claim_output(output, beside=True):
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
    from llama_data.pipeline.build_report import report_command

    click.echo(report_command(out, paper=not no_paper))


_register_source_commands()


@main.group()
def download() -> None:
    """Fetch published dumps (resumable, verified by checksums where the publisher gives them)."""


def _register_download_commands() -> None:
    """A `download <name>` command per registered download settings class (its `run(echo)`)."""
    for name, cls in sorted(config.download_configs().items()):

        def run_download(cls: type = cls, **values: Any) -> None:
            config.config_from_values(cls, values).run(click.echo)

        command = setting_options(cls)(user_errors(run_download))
        download.command(name, help=cls.command_help)(command)


_register_download_commands()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llama-train")
def train_main() -> None:
    """Train the LLaMA architecture on llama-data token shards."""
    _setup_logging(quiet=False)


# ---------------------------------------------------------------------------------------------
# llama-train: the trainer (llama_data/model/)


def field_options(cls: type) -> Callable[..., Any]:
    """An option per documented field of a `llama-train` dataclass, with no click default:
    values left out come from a --config file, then the dataclass (command-line options win)."""
    hints = typing.get_type_hints(cls)

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        for f in reversed([f for f in dataclasses.fields(cls) if "help" in f.metadata]):
            meta, flag = f.metadata, "--" + f.name.replace("_", "-")
            shown = meta["default_text"] or ("off" if f.default is False else f.default)
            text = f"{meta['help']} [{shown}]" if shown not in (None, "") else meta["help"]
            kind: dict[str, Any] = {"help": text, "required": meta["required"]}
            base = config.base_type(hints[f.name])
            if base is bool:
                fn = click.option(f"{flag}/--no-{flag[2:]}", f.name, default=None, **kind)(fn)
            elif meta["choices"]:
                fn = click.option(flag, f.name, type=click.Choice(meta["choices"]), **kind)(fn)
            else:
                fn = click.option(flag, f.name, type=base, **kind)(fn)
        return fn

    return deco


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
@field_options(TrainConfig)
@click.option(
    "--dry-run", is_flag=True, help="Build the model on the meta device and print its size."
)
def fit_cmd(config_file: str | None, model_set: tuple[str, ...], dry_run: bool, **options) -> None:
    """Train a LLaMA model on token shards (resumes the run in --out if it has checkpoints)."""
    from llama_data.model import trainer

    try:
        text = trainer.fit_command(config_file, model_set, dry_run, options)
        if text:
            click.echo(text)
    except (TrainError, ValueError) as e:
        raise UsageFailure(str(e)) from e


def _register_model_commands() -> None:
    """eval, sample and export-hf: options from their dataclasses, run by the function each
    names (imported only when the command runs: torch loads then)."""
    import importlib

    for name, cls in (
        ("eval", EvalOptions),
        ("sample", SampleOptions),
        ("export-hf", ExportOptions),
    ):

        def run_model_command(cls: type = cls, **values: Any) -> None:
            module, function = cls.runs.split(":")
            opts = cls(**{k: v for k, v in values.items() if v is not None})
            try:
                opts.validate()
                click.echo(getattr(importlib.import_module(module), function)(opts))
            except (TrainError, ValueError) as e:
                raise UsageFailure(str(e)) from e

        train_main.command(name, help=cls.__doc__)(field_options(cls)(run_model_command))


_register_model_commands()


if __name__ == "__main__":
    sys.exit(main())
