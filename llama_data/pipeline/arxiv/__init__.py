"""arXiv LaTeX: containers read in memory, main file and \\input resolution, LLaMA's cleaning.

Modules: `archive` (tars, gzip, directories, limits), `project` (decoding, main file, inputs),
`latex` (comments, braces, arguments), `macros` (user macro expansion), `clean` (the recipe and
its Step), `reader` (the Reader producing one Document per paper), `schema` (the stage's columns).
"""

from llama_data.pipeline.arxiv.archive import Limits, PaperFiles, arxiv_id_from_name
from llama_data.pipeline.arxiv.clean import ArxivClean, CleanResult, clean_latex
from llama_data.pipeline.arxiv.macros import MacroExpander
from llama_data.pipeline.arxiv.reader import ArxivReader, paper_document

__all__ = [
    "ArxivClean",
    "ArxivReader",
    "CleanResult",
    "Limits",
    "MacroExpander",
    "PaperFiles",
    "arxiv_id_from_name",
    "clean_latex",
    "paper_document",
]
