"""`[sources.books]`: Gutenberg and Books3. Every setting's default and help live here and nowhere
else: the `books` command's options, the config reference and the stage all read them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from llama_data.pipeline.config import SourceConfig, register_source, setting
from llama_data.pipeline.errors import ConfigError

COMMAND_HELP = """Gutenberg .txt and Books3 .jsonl[.zst] -> books without licence text, near-duplicates removed."""


@register_source("books")
@dataclass(frozen=True)
class BooksSourceConfig(SourceConfig):
    """[sources.books]: Gutenberg .txt / Books3 .jsonl.zst; `dedup` switches book near-dedup."""

    # `llama-data books`, the command made from these settings (cli.py)
    command_help: ClassVar[str] = COMMAND_HELP

    dedup: bool = setting(True, help="Strip licences and drop empty books only.", flag="--no-dedup")
    ngram: int = setting(5, help="Words per shingle.")
    num_perm: int = setting(128, help="MinHash permutations.")
    threshold: float = setting(
        0.9, help="Verified shingle overlap |A∩B|/min(|A|,|B|) above which a book is a duplicate."
    )
    lsh_threshold: float = setting(
        0.6,
        help="Containment the LSH Ensemble bands are tuned for (candidates only; every pair is "
        "verified).",
    )

    def validate(self, where: str) -> None:
        super().validate(where)
        if not 0 < self.threshold <= 1:
            raise ConfigError(f"{where}.threshold: must be in (0, 1], got {self.threshold}")
        if not 0 < self.lsh_threshold <= 1:
            raise ConfigError(f"{where}.lsh_threshold: must be in (0, 1], got {self.lsh_threshold}")
        if self.ngram < 1 or self.num_perm < 16:
            raise ConfigError(f"{where}: ngram must be >= 1 and num_perm >= 16")
