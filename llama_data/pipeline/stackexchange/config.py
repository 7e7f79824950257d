"""`[sources.stackexchange]`: Stack Exchange site archives. Every setting's default and help live here and nowhere
else: the `stackexchange` command's options, the config reference and the stage all read them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from llama_data.pipeline.config import SourceConfig, register_source, setting
from llama_data.pipeline.errors import ConfigError

COMMAND_HELP = """Stack Exchange site archives (.7z) or Posts.xml -> one document per question.

    The text is the title, the question, then its answers by score (highest first, numeric).
    """


@register_source("stackexchange")
@dataclass(frozen=True)
class StackExchangeSourceConfig(SourceConfig):
    """[sources.stackexchange]: per-site `.7z` archives or extracted `<site>/Posts.xml`.

    `top_sites` keeps the N largest sites by post count (0 = all); meta sites are skipped unless
    `include_meta`; an extracted Posts.xml is read in `split_mb` byte ranges.
    """

    # `llama-data stackexchange`, the command made from these settings (cli.py)
    command_help: ClassVar[str] = COMMAND_HELP

    top_sites: int = setting(
        28,
        help="Keep the N largest sites by post count, counted from the inputs (0 = all sites).",
    )
    include_meta: bool = setting(False, help="Also read meta sites (skipped by default).")
    split_mb: int = setting(
        64, help="Size of the byte ranges an extracted Posts.xml is cut into for parallel reading."
    )
    dedup: bool = False

    def validate(self, where: str) -> None:
        super().validate(where)
        if self.top_sites < 0:
            raise ConfigError(f"{where}.top_sites: must be >= 0, got {self.top_sites}")
        if self.split_mb < 1:
            raise ConfigError(f"{where}.split_mb: must be >= 1, got {self.split_mb}")
