"""`[sources.c4]`: C4, read or re-derived from CommonCrawl. Every setting's default and help live here and nowhere
else: the `c4` command's options, the config reference and the stage all read them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from llama_data.pipeline.config import SourceConfig, is_url, register_source, setting
from llama_data.pipeline.errors import ConfigError

COMMAND_HELP = """C4 documents: the public release (`c4-*.json.gz`) unchanged, or re-derived with --from-cc.

    With --from-cc every rule is a named reason: line counters (line_no_endmark,
    line_too_few_words, line_javascript, line_policy, line_too_long_word,
    line_dedup.global_duplicate, line_dedup.local_duplicate) and page rejections (page_too_long,
    duplicate_url, lorem_ipsum, curly_bracket, too_few_sentences, dedup_empty,
    dedup_too_few_sentences, lang, badwords).
    """


@register_source("c4")
@dataclass(frozen=True)
class C4SourceConfig(SourceConfig):
    """[sources.c4]: the public C4 release (`c4-*.json.gz`), or `from_cc = true` to re-derive C4
    from CommonCrawl WET/WARC files with C4's rules (defaults are the reference
    implementation's, TFDS `c4_utils`).

    `badwords` is a word-list file (default: the shipped LDNOOBW English list, CC BY 4.0);
    `lang_model` is `langdetect` (C4's) or `lid176`; `lang_threshold` the minimum English
    probability (default: 0.99 for langdetect, the calibrated `LID176_THRESHOLD` for lid176);
    `text_dedup` is `lines` (the reference's), `spans` (the paper's wording) or `none`.
    """

    # `llama-data c4`, the command made from these settings (cli.py)
    command_help: ClassVar[str] = COMMAND_HELP

    from_cc: bool = setting(
        False,
        help="Re-derive C4 from CommonCrawl WET/WARC with C4's rules instead of reading the "
        "release.",
    )
    badwords: str | None = setting(
        None,
        path=True,
        help="Bad-words list (one a line) for --from-cc. Default: the shipped LDNOOBW English "
        "list (CC BY 4.0).",
    )
    lang_model: str = setting(
        "langdetect",
        help="Language id for --from-cc: langdetect (C4's, seeded) or lid176 (fastText).",
    )
    lang_threshold: float | None = setting(
        None,
        help="Minimum English probability for --from-cc. Default: 0.99 with langdetect (C4's), "
        "0.8 with lid176 (calibrated on the Common Crawl sample, docs/c4.md).",
    )
    min_words_per_line: int = setting(5, help="Fewest words a kept line has (--from-cc).")
    min_sentences: int = setting(3, help="Fewest sentences a kept page has (--from-cc).")
    max_page_length: int = setting(
        190_000, help="Pages longer than this (characters) are rejected (--from-cc)."
    )
    dedup_urls: bool = setting(
        True, flag="--no-url-dedup", help="Keep every page of a URL (--from-cc)."
    )
    text_dedup: str = setting(
        "lines",
        help="Dedup across pages for --from-cc: lines (repeated lines, C4's code), spans "
        "(three-sentence spans, the paper's wording) or none.",
    )
    dedup: bool = False

    def validate(self, where: str) -> None:
        super().validate(where)
        if self.lang_threshold is not None and not 0.0 <= self.lang_threshold <= 1.0:
            raise ConfigError(
                f"{where}.lang_threshold: must be in [0, 1], got {self.lang_threshold}"
            )
        if self.lang_model not in ("langdetect", "lid176"):
            raise ConfigError(
                f"{where}.lang_model: must be 'langdetect' or 'lid176', got {self.lang_model!r}"
            )
        if self.text_dedup not in ("lines", "spans", "none"):
            raise ConfigError(
                f"{where}.text_dedup: must be 'lines', 'spans' or 'none', got {self.text_dedup!r}"
            )
        if self.max_page_length < 1:
            raise ConfigError(f"{where}.max_page_length: must be >= 1")
        if self.min_words_per_line < 1 or self.min_sentences < 1:
            raise ConfigError(f"{where}: min_words_per_line and min_sentences must be >= 1")
        if (
            self.badwords is not None
            and not is_url(self.badwords)
            and not Path(self.badwords).is_file()
        ):
            raise ConfigError(f"{where}.badwords: no such file {self.badwords!r}")
