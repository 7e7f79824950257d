"""The one record type every source produces, and the two ways a record can leave a stage early.

Every stage emits three streams: kept `Document`s, `Rejected` documents (with a named reason, so
a user can audit what a filter removed), and `DeadLetter`s for input that could not be parsed at
all. Keeping the three apart is what lets a build check `in == kept + rejected + errors`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Document:
    """A text document from any source.

    `id` is stable and unique within its `source`, derived from the input itself (URL + digest,
    wiki page id, repo/path, ...) so that reruns and different worker counts name documents alike.
    `meta` holds everything else; a stage's schema may promote some meta keys to typed columns.
    """

    id: str
    source: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)

    def with_text(self, text: str, **meta: Any) -> Document:
        """A copy with new text (and meta keys updated): steps never mutate their input."""
        return Document(self.id, self.source, text, {**self.meta, **meta})

    def __reduce__(self) -> tuple[Any, ...]:
        # Engines pickle every document that crosses a shuffle; the slots dataclass default
        # (`__getstate__` walking `fields()` in Python) costs twice this plain tuple.
        return (Document, (self.id, self.source, self.text, self.meta))


@dataclass(slots=True)
class Rejected:
    """A well-formed document a step decided to drop; `reason` is a short key like `too_short`."""

    doc: Document
    reason: str

    def __reduce__(self) -> tuple[Any, ...]:
        return (Rejected, (self.doc, self.reason))


@dataclass(slots=True)
class DeadLetter:
    """Input that could not become a document: where it was and why, for the `errors/` output."""

    file: str
    error: str
    reason: str = "parse_error"
    offset: int | None = None
    record_id: str | None = None
    stage: str = ""
    # where a reader resynchronised after damage (the next record, line, gzip member, page):
    # how many bytes of input it skipped to get there (summed as `read.bytes_skipped`)
    bytes_skipped: int | None = None

    def to_json(self) -> str:
        row = {
            "stage": self.stage,
            "file": self.file,
            "offset": self.offset,
            "record_id": self.record_id,
            "reason": self.reason,
            "error": self.error,
        }
        if self.bytes_skipped is not None:
            row["bytes_skipped"] = self.bytes_skipped
        return json.dumps(row, ensure_ascii=False, sort_keys=True)


Outcome = Document | Rejected | DeadLetter
