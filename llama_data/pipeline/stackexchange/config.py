"""`[sources.stackexchange]`: Stack Exchange site archives. Its defaults live here and nowhere else (the `stackexchange` command's
options are made from these fields)."""

from __future__ import annotations

from dataclasses import dataclass

from llama_data.pipeline.config import SourceConfig, register_source, setting
from llama_data.pipeline.errors import ConfigError


@register_source("stackexchange")
@dataclass(frozen=True)
class StackExchangeSourceConfig(SourceConfig):
    """[sources.stackexchange]: per-site `.7z` archives or extracted `<site>/Posts.xml`.

    `top_sites` keeps the N largest sites by post count (0 = all); meta sites are skipped unless
    `include_meta`; an extracted Posts.xml is read in `split_mb` byte ranges.
    """

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
