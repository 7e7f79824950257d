"""The two last CCNet filters: exact document dedup (by the digest of the normalized text left
after line dedup) and the minimum length."""

from __future__ import annotations

from llama_data.pipeline.document import Document, Outcome, Rejected
from llama_data.pipeline.normalize import text_digest
from llama_data.pipeline.steps import Step

DEFAULT_MIN_LENGTH = 300


def doc_dedup_key(doc: Document) -> bytes:
    """16 bytes: two pages whose remaining lines normalize alike are the same document."""
    return text_digest(doc.text)


class MinLength(Step):
    """Rejects documents shorter than `min_length` characters as `too_short`."""

    name = "length"

    def __init__(self, min_length: int = DEFAULT_MIN_LENGTH) -> None:
        self.min_length = min_length

    def process(self, doc: Document) -> Outcome:
        if len(doc.text) < self.min_length:
            return Rejected(doc, "too_short")
        return doc


class ExactDedupLocal:
    """In-process exact dedup with the same tie-break as the Beam job (smallest id is kept)."""

    def __call__(self, docs: list[Document]) -> list[Document | Rejected]:
        first: dict[bytes, str] = {}
        for d in sorted(docs, key=lambda d: d.id):
            first.setdefault(doc_dedup_key(d), d.id)
        out: list[Document | Rejected] = []
        for d in docs:
            keeper = first[doc_dedup_key(d)]
            if keeper == d.id:
                out.append(d)
            else:
                out.append(Rejected(d.with_text(d.text, duplicate_of=keeper), "duplicate"))
        return out
