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


@main.group()
def download() -> None:
    """Fetch published dumps (resumable, verified by checksums where the publisher gives them)."""


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
