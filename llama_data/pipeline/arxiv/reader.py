"""arXiv containers -> one Document per paper holding its flattened LaTeX (cleaned by a Step).

Papers the reader cannot turn into LaTeX still become Documents (empty text, `meta["skip"]`
naming why: `pdf_only`, `no_latex`, `no_main_file`, `too_large`, `corrupt_archive`), so the
cleaning step rejects them with that reason and `in == kept + rejected + errors` holds. Only a
container that cannot be opened at all becomes a DeadLetter.
"""

from __future__ import annotations

import json
import os
import tarfile
import zlib

from llama_data.pipeline.arxiv.archive import (
    Limits,
    PaperFiles,
    read_container,
    read_directory,
)
from llama_data.pipeline.arxiv.project import Project, find_main, flatten
from llama_data.pipeline.document import DeadLetter, Document
from llama_data.pipeline.io import (
    DecompressionLimit,
    FileSplit,
    OpenRaw,
    Reader,
    ReadResult,
    limit_letter,
    stream_failure,
)

SOURCE = "arxiv"


def _readme_toplevel(files: dict[str, bytes]) -> str | None:
    """arXiv's own hint: `00README.json` (usage "toplevel") or `00README.XXX` (`toplevelfile`)."""
    if "00README.json" in files:
        try:
            meta = json.loads(files["00README.json"])
            for src in meta.get("sources", []):
                if src.get("usage") == "toplevel" and src.get("filename") in files:
                    return src["filename"]
        except (ValueError, AttributeError, TypeError):
            return None
    if "00README.XXX" in files:
        for line in files["00README.XXX"].decode("latin-1").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == "toplevelfile" and parts[0] in files:
                return parts[0]
    return None


def paper_document(paper: PaperFiles, source: str = SOURCE, max_depth: int = 16) -> Document:
    """Main file, \\input resolution and decoding for one paper's files."""
    doc_id = f"arxiv/{paper.arxiv_id}" if paper.arxiv_id else paper.origin
    meta: dict = {"file": paper.origin.split("!")[0], "origin": paper.origin}
    if paper.arxiv_id:
        meta["arxiv_id"] = paper.arxiv_id
    if paper.notes:
        meta["archive_notes"] = paper.notes[:50]
    if paper.skip:
        return Document(doc_id, source, "", {**meta, "skip": paper.skip})
    project = Project(paper.files)
    main = _readme_toplevel(paper.files) or find_main(project)
    if main is None:
        return Document(doc_id, source, "", {**meta, "skip": "no_main_file"})
    flat = flatten(project, main, max_depth=max_depth)
    meta["main_file"] = main
    meta["files_used"] = flat.files_used
    for key in ("missing", "cycles", "too_deep"):
        value = getattr(flat, key)
        if value:
            meta[f"input_{key}"] = value[:50]
    if flat.truncated:
        meta["input_truncated"] = True
    if project.encodings:
        meta["encodings"] = dict(sorted(project.encodings.items()))
    return Document(doc_id, source, flat.text, meta)


class ArxivReader(Reader):
    """Bulk tars, per-paper archives and extracted directories, all in memory."""

    name = "arxiv"

    def __init__(
        self, source: str = SOURCE, limits: Limits | None = None, max_depth: int = 16
    ) -> None:
        super().__init__(source)
        self.limits = limits or Limits()
        self.max_depth = max_depth

    def read(self, split: FileSplit, open_raw: OpenRaw) -> ReadResult:
        path = split.path
        count = 0
        try:
            if os.path.isdir(path):
                papers = iter([read_directory(path, self.limits)])
            else:
                papers = read_container(path, open_raw, self.limits)
            for paper in papers:
                count += 1
                try:
                    yield paper_document(paper, self.source, self.max_depth)
                except Exception as exc:  # noqa: BLE001 - one bad paper must not stop the tar
                    yield DeadLetter(
                        file=path,
                        record_id=paper.origin,
                        reason="paper_error",
                        error=f"{type(exc).__name__}: {exc}",
                    )
        except DecompressionLimit as exc:
            yield limit_letter(path, count, exc, f"{count} papers")
        except (OSError, EOFError, tarfile.TarError, zlib.error, ValueError) as exc:
            yield stream_failure(path, count, exc, f"{count} papers")
