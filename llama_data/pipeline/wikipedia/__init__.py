"""Wikipedia: MediaWiki XML dump reading (`dump`, `reader`) and wikitext cleaning (`wikitext`)."""

from llama_data.pipeline.wikipedia.dump import SiteInfo, WikiPage, iter_pages, read_siteinfo
from llama_data.pipeline.wikipedia.reader import WikipediaReader, page_to_document

__all__ = [
    "SiteInfo",
    "WikiPage",
    "WikipediaReader",
    "iter_pages",
    "page_to_document",
    "read_siteinfo",
]
