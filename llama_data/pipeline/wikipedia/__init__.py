"""Wikipedia: MediaWiki XML dump reading (`dump`, `reader`), wikitext cleaning (`wikitext`), the
stage's columns (`schema`) and the dump download (`download`)."""

from llama_data.pipeline.wikipedia.dump import SiteInfo, WikiPage, iter_pages, read_siteinfo
from llama_data.pipeline.wikipedia.reader import WikipediaReader, page_to_document
from llama_data.pipeline.wikipedia.wikitext import (
    PAPER_LANGUAGES,
    CleanWikitext,
    WikipediaPageFilter,
    WikitextCleaner,
    is_disambiguation,
)

__all__ = [
    "PAPER_LANGUAGES",
    "CleanWikitext",
    "WikipediaPageFilter",
    "WikitextCleaner",
    "is_disambiguation",
    "SiteInfo",
    "WikiPage",
    "WikipediaReader",
    "iter_pages",
    "page_to_document",
    "read_siteinfo",
]
