"""Books' steps: what the readers leave that is not a book."""

from __future__ import annotations

from llama_data.pipeline.document import Document, Outcome
from llama_data.pipeline.steps import Step


class BookFilter(Step):
    """Reject books with nothing left: `empty` (no text at all) or `header_only` (licence only)."""

    name = "books_filter"

    def __init__(self, min_words: int = 1) -> None:
        self.min_words = min_words

    def process(self, doc: Document) -> Outcome:
        if len(doc.text.split(None, self.min_words)) >= self.min_words:
            return doc
        had_text = int(doc.meta.get("raw_chars", 0)) > 0 and bool(
            doc.meta.get("pg_header") or doc.meta.get("pg_footer")
        )
        return self.reject(doc, "header_only" if had_text else "empty")
