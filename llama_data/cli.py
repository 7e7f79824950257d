"""Command line: click commands that parse and validate, then call one function each."""

from __future__ import annotations

import json

import click

from llama_data import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llama-data")
def main() -> None:
    """Build LLaMA-style pre-training data: sources, filters, tokenizer and mixture shards."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llama-train")
def train_main() -> None:
    """Train the LLaMA architecture on llama-data token shards."""


# ---------------------------------------------------------------------------------------------
# llama-train: the trainer (llama_data/model/)


class TrainUsageError(click.ClickException):
    """A one-line (or short) error the user can fix; exit status 2."""

    exit_code = 2


def _model_overrides(pairs: tuple[str, ...]) -> dict:
    out: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise TrainUsageError(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            out[key.strip()] = int(value)
        except ValueError:
            try:
                out[key.strip()] = float(value)
            except ValueError as e:
                raise TrainUsageError(f"--set {key}: {value!r} is not a number") from e
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
        raise TrainUsageError(str(e)) from e


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
        raise TrainUsageError(str(e)) from e
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
        tok = generate.Tokenizer(generate.find_tokenizer(tokenizer, data))
        if tok.vocab_size != model.cfg.vocab_size:
            raise ValueError(
                f"tokenizer has {tok.vocab_size} pieces, the model {model.cfg.vocab_size}"
            )
        ids = generate.generate(
            model, tok.encode(prompt), max_new_tokens, temperature, top_p, seed, tok.eos_id
        )
    except (trainer.TrainError, ValueError) as e:
        raise TrainUsageError(str(e)) from e
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
        raise TrainUsageError(str(e)) from e
    click.echo(f"wrote {path}")
