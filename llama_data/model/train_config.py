"""`llama-train`'s options: every default and help text lives in these dataclasses (torch-free,
so the command line builds its options without importing the trainer): `TrainConfig` for `fit`,
and one small class per other command, naming the function that runs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar


class TrainError(RuntimeError):
    """A problem the user can fix (bad options, mismatched checkpoint or data, out of memory)."""


def _opt(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    default_text: str = "",  # noqa: A002
    required: bool = False,
) -> Any:
    """A command's option: its default lives here, its help is what `llama-train` shows."""
    meta = {"help": help, "choices": choices, "default_text": default_text, "required": required}
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Everything `fit` needs; the keys of a --config TOML/JSON file are these field names."""

    data: str = _opt("", "Shard directory (with manifest.json).")
    out: str = _opt("", "Run directory (checkpoints, logs); re-run resumes.")
    preset: str = _opt("tiny", "Model preset: tiny, 125m, 1b, 7b, 13b, 33b, 65b.")
    model: dict = field(default_factory=dict)  # overrides of LlamaConfig fields (--set)
    lr: float | None = _opt(None, "Peak learning rate.", default_text="the preset's")
    batch_tokens: int | None = _opt(None, "Global batch in tokens.", default_text="the preset's")
    micro_batch: int = _opt(8, "Rows per process per micro-step.")
    steps: int | None = _opt(None, "Optimizer steps.", default_text="one pass over the shards")
    warmup_steps: int = _opt(2000, "Linear warmup steps.")
    final_lr_ratio: float = _opt(0.1, "Cosine ends at this fraction of the peak.")
    weight_decay: float = _opt(0.1, "AdamW weight decay.")
    grad_clip: float = _opt(1.0, "Clip gradient norm; 0 disables.")
    seed: int = _opt(0, "Initialization seed.")
    dtype: str = _opt(
        "auto",
        "Compute dtype.",
        choices=("auto", "bf16", "fp32"),
        default_text="auto: bf16 autocast on CUDA, fp32 on CPU",
    )
    compile: bool | None = _opt(
        None, "torch.compile the model.", default_text="where torch.compile works"
    )
    activation_checkpointing: bool = _opt(
        False, "Recompute activations in backward to save memory."
    )
    parallel: str = _opt(
        "ddp", "Under torchrun: DDP or FSDP2 fully_shard.", choices=("ddp", "fsdp")
    )
    checkpoint_every: int = _opt(1000, "Steps between checkpoints.")
    keep_checkpoints: int = _opt(3, "Keep the last K checkpoints.")
    async_checkpoint: bool = _opt(
        False, "Write checkpoints in the background while training goes on (DCP async_save)."
    )
    log_every: int = _opt(10, "Steps between log records.")
    init_from: str | None = _opt(
        None, "Initial weights from a Hugging Face LlamaForCausalLM folder."
    )
    peak_tflops: float | None = _opt(None, "Peak bf16 TFLOP/s per GPU for MFU.")
    verify: str = _opt(
        "size", "Check shard files against the manifest.", choices=("sha256", "size", "none")
    )
    device: str = _opt("auto", "auto, cpu or cuda.")
    progress: bool | None = _opt(None, "Progress line.", default_text="on a terminal")

    def validate(self) -> None:
        if not self.data:
            raise TrainError("--data is required (a shard directory with manifest.json)")
        if not self.out:
            raise TrainError("--out is required (the run directory)")
        if self.dtype not in ("auto", "bf16", "fp32"):
            raise TrainError(f"dtype must be auto, bf16 or fp32, got {self.dtype!r}")
        if self.parallel not in ("ddp", "fsdp"):
            raise TrainError(f"parallel must be ddp or fsdp, got {self.parallel!r}")
        if self.verify not in ("sha256", "size", "none"):
            raise TrainError(f"verify must be sha256, size or none, got {self.verify!r}")
        if self.batch_tokens is not None and self.batch_tokens <= 0:
            raise TrainError("batch_tokens must be positive")
        for name in ("micro_batch", "checkpoint_every", "log_every"):
            if getattr(self, name) <= 0:
                raise TrainError(f"{name} must be positive")
        if self.steps is not None and self.steps <= 0:
            raise TrainError("steps must be positive")
        if self.init_from and not Path(self.init_from).is_dir():
            raise TrainError(f"--init-from {self.init_from}: no such folder")


_CHECKPOINT_HELP = "Run directory, checkpoint folder or Hugging Face folder."
_TOKENIZER_HELP = "SentencePiece model [default: the one in the training shards' manifest]."


@dataclass
class EvalOptions:
    """Perplexity per source on a shard directory (JSON on stdout)."""

    runs: ClassVar[str] = "llama_data.model.trainer:eval_command"

    checkpoint: str = _opt("", _CHECKPOINT_HELP, required=True)
    data: str = _opt("", "Shard directory (with manifest.json).", required=True)
    micro_batch: int = _opt(8, "Rows per forward pass.")
    max_rows: int | None = _opt(None, "Evaluate only the first N rows.", default_text="all")
    dtype: str = _opt("auto", "Compute dtype.", choices=("auto", "bf16", "fp32"))
    device: str = _opt("auto", "auto, cpu or cuda.")

    def validate(self) -> None:
        _exists(self.checkpoint, "--checkpoint")
        if not Path(self.data).is_dir():
            raise TrainError(f"--data {self.data}: no such folder")


@dataclass
class SampleOptions:
    """Generate text with a KV cache."""

    runs: ClassVar[str] = "llama_data.model.generate:sample_command"

    checkpoint: str = _opt("", _CHECKPOINT_HELP, required=True)
    prompt: str = _opt("", "Text to continue (a BOS token is prepended).")
    tokenizer: str | None = _opt(None, _TOKENIZER_HELP)
    max_new_tokens: int = _opt(128, "Tokens to generate.")
    temperature: float = _opt(0.8, "Sampling temperature; 0 = greedy.")
    top_p: float = _opt(0.95, "Nucleus sampling mass.")
    seed: int = _opt(0, "Sampling seed.")
    device: str = _opt("auto", "auto, cpu or cuda.")

    def validate(self) -> None:
        _exists(self.checkpoint, "--checkpoint")


@dataclass
class ExportOptions:
    """Write a Hugging Face LlamaForCausalLM folder (config.json, safetensors, tokenizer)."""

    runs: ClassVar[str] = "llama_data.model.export:export_command"

    checkpoint: str = _opt("", "Run directory or checkpoint folder.", required=True)
    out: str = _opt("", "Folder to write.", required=True)
    dtype: str = _opt("float32", "Weights dtype.", choices=("float32", "bfloat16", "float16"))
    tokenizer: str | None = _opt(None, _TOKENIZER_HELP)

    def validate(self) -> None:
        _exists(self.checkpoint, "--checkpoint")


def _exists(path: str, flag: str) -> None:
    if not Path(path).exists():
        raise TrainError(f"{flag} {path}: no such file or folder")


def model_overrides(pairs: tuple[str, ...]) -> dict[str, int | float]:
    """`--set KEY=VALUE` pairs: overrides of numeric model config fields."""
    out: dict[str, int | float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise TrainError(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            out[key.strip()] = int(value)
        except ValueError:
            try:
                out[key.strip()] = float(value)
            except ValueError as e:
                raise TrainError(f"--set {key}: {value!r} is not a number") from e
    return out
