"""The one table of sources: `build` and the command line both read it.

Each native source is its typed config (the `[sources.<name>]` section: the dataclass in its
`pipeline/<source>/config.py`, which holds every default) and the planner in its own
`beam_jobs/<source>.py` that turns that config into stages. Build-wide sections (the Wikipedia-reference classifier, the token stages) plan after
the sources, in this order, seeing the steps planned before them. Adding a source is one line
here (see the README's "Adding a source").
"""

from __future__ import annotations

from dataclasses import dataclass

from llama_data.beam_jobs import (
    arxiv,
    books,
    c4,
    ccnet,
    documents,
    github,
    stackexchange,
    tokenize,
    wikipedia,
    wikiref,
)
from llama_data.beam_jobs.plan import SectionPlanner, SourcePlanner
from llama_data.pipeline import config


@dataclass(frozen=True)
class Source:
    config: type[config.SourceConfig]
    plan: SourcePlanner


# The paper's Table 1 sources, in its order.
SOURCES: dict[str, Source] = {
    "commoncrawl": Source(ccnet.CommonCrawlConfig, ccnet.plan),
    "c4": Source(c4.C4SourceConfig, c4.plan),
    "github": Source(github.GithubSourceConfig, github.plan),
    "wikipedia": Source(wikipedia.WikipediaSourceConfig, wikipedia.plan),
    "books": Source(books.BooksSourceConfig, books.plan),
    "arxiv": Source(arxiv.ArxivSourceConfig, arxiv.plan),
    "stackexchange": Source(stackexchange.StackExchangeSourceConfig, stackexchange.plan),
}
# Any source given as documents (`format = "documents"`), whatever its name.
DOCUMENTS = Source(config.DocumentsSourceConfig, documents.plan)
# Build-wide sections, planned after the sources in this order.
SECTIONS: tuple[SectionPlanner, ...] = (wikiref.plan, tokenize.plan)


# The table and the configs' own registry (`config.source_configs`, which parses [sources.*])
# name the same class for each source.
assert {n: s.config for n, s in SOURCES.items()} == config.source_configs(), "sources table"


def source_of(name: str, cfg: config.SourceConfig) -> Source:
    return DOCUMENTS if cfg.format == "documents" else SOURCES[name]
