"""`[sources.wikipedia]`: MediaWiki XML dumps. Every setting's default and help live here and nowhere
else: the `wikipedia` command's options, the config reference and the stage all read them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from llama_data.pipeline.config import SourceConfig, register_source, setting
from llama_data.pipeline.errors import ConfigError

# The 20 languages of LLaMA's Wikipedia (Touvron et al. 2023, §2.1).
PAPER_WIKIPEDIA_LANGUAGES: tuple[str, ...] = (
    "bg", "ca", "cs", "da", "de", "en", "es", "fr", "hr", "hu",
    "it", "nl", "pl", "pt", "ro", "ru", "sl", "sr", "sv", "uk",
)  # fmt: skip


COMMAND_HELP = """MediaWiki XML dumps -> articles as clean text (OUTPUT/wikipedia/).

    Keeps namespace-0 articles of the chosen languages; redirects, disambiguation pages and other
    languages are rejected with their reason. Wikitext is cleaned with mwparserfromhell.
    """


@register_source("wikipedia")
@dataclass(frozen=True)
class WikipediaSourceConfig(SourceConfig):
    """[sources.wikipedia]: MediaWiki XML dumps (`*-pages-articles*.xml.bz2`, multistream, .xml).

    `languages` (from each dump's siteinfo) defaults to the paper's 20; `[]` keeps all.
    `split_mb` is the byte size of the ranges a multistream dump is cut into for parallel reading;
    `indexes` names multistream index files kept elsewhere than beside their dumps.
    """

    # `llama-data wikipedia`, the command made from these settings (cli.py)
    command_help: ClassVar[str] = COMMAND_HELP

    languages: list[str] = setting(
        default_factory=lambda: list(PAPER_WIKIPEDIA_LANGUAGES),
        sep=",",
        help="Wikipedia languages to keep (from each dump's siteinfo), comma-separated, or 'all'.",
    )
    split_mb: int = setting(
        64,
        help="Size of the byte ranges a multistream dump or plain .xml is cut into for parallel "
        "reading.",
    )
    use_index: bool = setting(
        True,
        flag="--no-index",
        help="Find multistream offsets by scanning the dump even when its -index.txt.bz2 is "
        "beside it.",
    )
    indexes: list[str] = setting(
        path=True,
        default_factory=list,
        flag="--index",
        help="A multistream -index.txt.bz2 kept elsewhere than beside its dump (repeatable); by "
        "default the index is looked for next to each dump.",
    )
    min_chars: int = setting(1, help="Articles shorter than this (characters) are rejected.")
    dedup: bool = False

    def validate(self, where: str) -> None:
        super().validate(where)
        for lang in self.languages:
            if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]+)*", lang):
                raise ConfigError(f"{where}.languages: {lang!r} is not a language code like 'en'")
        if self.split_mb < 1:
            raise ConfigError(f"{where}.split_mb: must be >= 1, got {self.split_mb}")
