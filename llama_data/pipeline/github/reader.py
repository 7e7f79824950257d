"""Readers for GitHub files: BigQuery `github_repos` exports (JSON lines, Parquet) and git checkouts.

A BigQuery export row is a file joined with its contents (repo_name, ref, path, mode, id, size,
binary, copies, content); the licence comes from the separate `licenses` table (repo_name,
license), joined later by repository. Every file becomes a Document, even a binary or oversized
one, with its text left empty and the reason in `meta["content_error"]`: the `content` step then
rejects it by name, so the file is accounted for with its id instead of vanishing. Rows too long
to parse safely are skipped while being read (never held in memory) and dead-lettered.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterator
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from llama_data.pipeline.document import DeadLetter, Document
from llama_data.pipeline.github.languages import language_of
from llama_data.pipeline.github.licenses import (
    classify_license_text,
    combine_license_keys,
    is_license_file,
    normalize_license_key,
)
from llama_data.pipeline.io import (
    FileSplit,
    OpenRaw,
    Reader,
    ReadResult,
    open_decompressed,
    stream_failure,
)

SOURCE = "github"
DEFAULT_MAX_ROW_BYTES = 8 * 1024 * 1024
"""A row (or file) larger than this is not parsed. BigQuery stores content only below 1 MiB,
so a bigger row is an export accident, a data file or an attack on the reader."""

_ID_PREFIX_BYTES = 64 * 1024
_PREFIX_FIELD = re.compile(rb'"(repo_name|path)"\s*:\s*"((?:[^"\\]|\\.)*)"')


def file_document(
    repo_name: str,
    path: str,
    content: str | None,
    *,
    ref: str | None = None,
    mode: int | None = None,
    blob_id: str | None = None,
    size: int | None = None,
    binary: bool = False,
    copies: int | None = None,
    license: str | None = None,
    content_error: str | None = None,
) -> Document:
    """The Document for one repository file; `content_error` says why the text is left empty."""
    meta: dict[str, Any] = {
        "repo_name": repo_name,
        "path": path,
        "language": language_of(path),
        "ref": ref,
        "mode": mode,
        "blob_id": blob_id,
        "size": size,
        "binary": bool(binary),
        "copies": copies,
    }
    if license is not None:
        meta["license"] = normalize_license_key(license)
    text = content if isinstance(content, str) else ""
    if content_error is None:
        if binary:
            content_error = "binary"
        elif content is None:
            content_error = "missing"
        else:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates: the bytes were not UTF-8
                content_error = "non_utf8"
    if content_error is not None:
        meta["content_error"] = content_error
        text = ""
    return Document(id=f"{repo_name}/{path}", source=SOURCE, text=text, meta=meta)


def _as_int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def row_document(row: dict[str, Any], max_bytes: int, oversize: bool = False) -> Document | str:
    """A Document from one export row, or the error message when the row is unusable.

    `oversize` says the reader already dropped a content longer than `max_bytes`.
    """
    repo, path = row.get("repo_name"), row.get("path")
    if not isinstance(repo, str) or not repo or not isinstance(path, str) or not path:
        return "row has no repo_name/path"
    content = row.get("content")
    error = "too_large" if oversize else None
    if isinstance(content, bytes | bytearray):  # a BYTES column: decode strictly
        try:
            content = bytes(content).decode("utf-8")
        except UnicodeDecodeError:
            content, error = None, "non_utf8"
    elif content is not None and not isinstance(content, str):
        return f"content is {type(content).__name__}, not a string"
    if isinstance(content, str) and len(content) > max_bytes:
        content, error = None, "too_large"
    return file_document(
        repo,
        path,
        content,
        ref=row.get("ref"),
        mode=_as_int(row.get("mode")),
        blob_id=row.get("id"),
        size=_as_int(row.get("size")),
        binary=bool(row.get("binary")),
        copies=_as_int(row.get("copies")),
        license=row.get("license") if "license" in row else None,
        content_error=error,
    )


class GithubRowReader(Reader):
    """BigQuery `files`+`contents` export rows, as JSON lines (optionally compressed) or Parquet.

    `max_row_bytes` bounds what is parsed: a longer JSON line is skipped in chunks and becomes a
    `too_large` document when its repo_name and path can be read from its start (BigQuery writes
    them before `content`), else a `row_too_large` dead letter.
    """

    name = "github-rows"

    def __init__(self, source: str = SOURCE, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES) -> None:
        super().__init__(source)
        self.max_row_bytes = max_row_bytes

    def read(self, split: FileSplit, open_raw: OpenRaw) -> ReadResult:
        if split.path.lower().endswith(".parquet"):
            yield from self._read_parquet(split.path, open_raw)
        else:
            yield from self._read_jsonl(split.path, open_raw)

    def _read_jsonl(self, path: str, open_raw: OpenRaw) -> ReadResult:
        lineno = 0
        try:
            with open_raw(path) as raw, open_decompressed(raw, path) as stream:
                while True:
                    line = stream.readline(self.max_row_bytes + 1)
                    if not line:
                        break
                    lineno += 1
                    if len(line) > self.max_row_bytes and not line.endswith(b"\n"):
                        yield self._oversize(path, lineno, line, stream)
                        continue
                    if line.strip():
                        yield self._parse_line(path, lineno, line)
        except (OSError, EOFError, ValueError) as exc:  # decompressor and I/O errors
            yield stream_failure(path, lineno, exc, f"line {lineno}")
        except Exception as exc:  # zstd/lzma errors have no common base
            yield DeadLetter(
                file=path,
                offset=lineno,
                error=f"{type(exc).__name__}: {exc}",
                reason="corrupt_stream",
            )

    def _oversize(
        self, path: str, lineno: int, start: bytes, stream: BinaryIO
    ) -> Document | DeadLetter:
        size, prefix = len(start), start[:_ID_PREFIX_BYTES]
        while True:  # skip the rest of the line without keeping it
            chunk = stream.readline(1 << 20)
            size += len(chunk)
            if not chunk or chunk.endswith(b"\n"):
                break
        fields: dict[str, str] = {}
        for m in _PREFIX_FIELD.finditer(prefix):
            try:
                fields.setdefault(m.group(1).decode(), json.loads(b'"' + m.group(2) + b'"'))
            except (ValueError, UnicodeDecodeError):
                continue
        message = f"row of >= {size} bytes exceeds max_row_bytes={self.max_row_bytes}"
        if "repo_name" in fields and "path" in fields:
            doc = file_document(
                fields["repo_name"], fields["path"], None, content_error="too_large"
            )
            doc.meta["size"] = size
            return doc
        return DeadLetter(file=path, offset=lineno, reason="row_too_large", error=message)

    def _parse_line(self, path: str, lineno: int, line: bytes) -> Document | DeadLetter:
        try:
            # surrogateescape keeps invalid UTF-8 bytes visible: the document is then rejected as
            # non_utf8 with its id, instead of the whole row becoming unreadable.
            row = json.loads(line.decode("utf-8", "surrogateescape"))
        except ValueError as exc:
            return DeadLetter(file=path, offset=lineno, reason="bad_json", error=str(exc))
        if not isinstance(row, dict):
            return DeadLetter(file=path, offset=lineno, reason="bad_json", error="not an object")
        result = row_document(row, self.max_row_bytes)
        if isinstance(result, str):
            return DeadLetter(file=path, offset=lineno, reason="missing_field", error=result)
        return result

    def _read_parquet(self, path: str, open_raw: OpenRaw) -> ReadResult:
        row_no = 0
        try:
            with open_raw(path) as raw:
                pf = pq.ParquetFile(raw)
                missing = {"repo_name", "path"} - set(pf.schema_arrow.names)
                if missing:
                    yield DeadLetter(
                        file=path, reason="missing_field", error=f"no columns {sorted(missing)}"
                    )
                    return
                for batch in pf.iter_batches(batch_size=256):
                    oversize = self._oversize_mask(batch)
                    if oversize is not None:
                        col = batch.schema.get_field_index("content")
                        nulled = pc.if_else(
                            oversize, pa.scalar(None, batch.column(col).type), batch.column(col)
                        )
                        batch = batch.set_column(col, "content", nulled)
                    flags = oversize.to_pylist() if oversize is not None else None
                    for k, row in enumerate(batch.to_pylist()):
                        row_no += 1
                        big = flags is not None and bool(flags[k])
                        result = row_document(row, self.max_row_bytes, oversize=big)
                        if isinstance(result, str):
                            yield DeadLetter(
                                file=path, offset=row_no, reason="missing_field", error=result
                            )
                        else:
                            yield result
        except (OSError, pa.ArrowException, ValueError) as exc:
            yield stream_failure(path, row_no, exc)

    def _oversize_mask(self, batch: pa.RecordBatch) -> pa.Array | None:
        if "content" not in batch.schema.names:
            return None
        col = batch.column(batch.schema.get_field_index("content"))
        if not (
            pa.types.is_string(col.type)
            or pa.types.is_large_string(col.type)
            or pa.types.is_binary(col.type)
            or pa.types.is_large_binary(col.type)
        ):
            return None
        mask = pc.fill_null(pc.greater(pc.binary_length(col), self.max_row_bytes), False)
        return mask if pc.any(mask).as_py() else None


def read_license_rows(path: str, open_raw: OpenRaw) -> Iterator[tuple[str, str] | DeadLetter]:
    """(repo_name, licence key) pairs from a `licenses` table export (JSON lines or Parquet)."""
    row_no = 0
    try:
        with open_raw(path) as raw:
            if path.lower().endswith(".parquet"):
                rows: Iterator[dict[str, Any] | None] = (
                    r
                    for b in pq.ParquetFile(raw).iter_batches(batch_size=4096)
                    for r in b.to_pylist()
                )
                for row in rows:
                    row_no += 1
                    yield _license_pair(row, path, row_no)
                return
            with open_decompressed(raw, path) as stream:
                for line in stream:
                    row_no += 1
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except ValueError as exc:
                        yield DeadLetter(
                            file=path, offset=row_no, reason="bad_json", error=str(exc)
                        )
                        continue
                    yield _license_pair(row, path, row_no)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a dead letter, never a crash
        yield stream_failure(path, row_no, exc)


def _license_pair(row: Any, path: str, row_no: int) -> tuple[str, str] | DeadLetter:
    if (
        not isinstance(row, dict)
        or not isinstance(row.get("repo_name"), str)
        or not row["repo_name"]
    ):
        return DeadLetter(
            file=path, offset=row_no, reason="missing_field", error="licence row has no repo_name"
        )
    return row["repo_name"], normalize_license_key(row.get("license"))


# --- local git checkouts -------------------------------------------------------------------


def find_repositories(root: str) -> list[tuple[str, str]]:
    """(repo_name, directory) of the git checkouts under `root`, sorted by name.

    `root/name` (a checkout) is named `name`; `root/owner/name` is named `owner/name`, as on
    GitHub. A directory counts as a checkout when it has a `.git` entry.
    """
    found: list[tuple[str, str]] = []
    for entry in sorted(os.listdir(root)):
        top = os.path.join(root, entry)
        if not os.path.isdir(top) or entry.startswith("."):
            continue
        if os.path.exists(os.path.join(top, ".git")):
            found.append((entry, top))
            continue
        for sub in sorted(os.listdir(top)):
            inner = os.path.join(top, sub)
            if os.path.isdir(inner) and os.path.exists(os.path.join(inner, ".git")):
                found.append((f"{entry}/{sub}", inner))
    return found


def _git(repo_dir: str, *args: str) -> bytes | None:
    try:
        done = subprocess.run(
            ["git", "-C", repo_dir, *args], capture_output=True, check=True, timeout=300
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout


def _tracked_files(repo_dir: str) -> list[str]:
    """The files git tracks (so build outputs and ignored files are left out); a walk otherwise."""
    out = _git(repo_dir, "ls-files", "-z", "--cached")
    if out is not None:
        return sorted(p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p)
    paths = []
    for dirpath, dirnames, filenames in os.walk(repo_dir):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in filenames:
            rel = os.path.relpath(os.path.join(dirpath, name), repo_dir)
            paths.append(rel.replace(os.sep, "/"))
    return sorted(paths)


def classify_repository_license(repo_dir: str, files: list[str] | None = None) -> str:
    """The licence key of a checkout, from its top-level LICENSE/COPYING files' text."""
    files = files if files is not None else _tracked_files(repo_dir)
    keys = []
    for rel in files:
        if is_license_file(rel):
            try:
                with open(os.path.join(repo_dir, rel), "rb") as fh:
                    text = fh.read(256 * 1024).decode("utf-8", "replace")
            except OSError:
                continue
            keys.append(classify_license_text(text))
    return combine_license_keys(keys)


class GitCheckoutReader(Reader):
    """Files of local git checkouts, for users without BigQuery. A split is one repository.

    Splits are directories on the local file system, so this reader opens files itself rather
    than through `open_raw`. The licence comes from the checkout's own licence files; the blob id
    is git's (sha1 of `blob <size>\\0<content>`), so rows match BigQuery's `id` for the same file.
    """

    name = "git-checkouts"

    def __init__(
        self, root: str, source: str = SOURCE, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES
    ) -> None:
        super().__init__(source)
        self.root = root
        self.max_row_bytes = max_row_bytes

    def splits(self, path: str, size: int, open_raw: OpenRaw) -> list[FileSplit]:
        """A checkout is one split; a folder of checkouts is one split per checkout."""
        if os.path.exists(os.path.join(path, ".git")):
            return [FileSplit(path)]
        return [FileSplit(d) for _, d in find_repositories(path)]

    def read(self, split: FileSplit, open_raw: OpenRaw) -> ReadResult:
        repo_dir = split.path
        name = self.repo_name_of(repo_dir)
        try:
            files = _tracked_files(repo_dir)
        except OSError as exc:
            yield DeadLetter(file=repo_dir, reason="unreadable_file", error=str(exc))
            return
        license_key = classify_repository_license(repo_dir, files)
        head = _git(repo_dir, "rev-parse", "HEAD")
        ref = head.decode().strip() if head else None
        for rel in files:
            full = os.path.join(repo_dir, rel)
            try:
                st = os.lstat(full)
                if not os.path.isfile(full) or os.path.islink(full):
                    continue  # symlinks and submodules are not file contents
                yield self._file(name, rel, full, st, ref, license_key)
            except OSError as exc:
                yield DeadLetter(
                    file=full, reason="unreadable_file", error=str(exc), record_id=f"{name}/{rel}"
                )

    def _file(
        self, name: str, rel: str, full: str, st: os.stat_result, ref: str | None, lic: str
    ) -> Document:
        common = {"ref": ref, "mode": st.st_mode, "size": st.st_size, "license": lic}
        if st.st_size > self.max_row_bytes:
            return file_document(name, rel, None, content_error="too_large", **common)
        with open(full, "rb") as fh:
            data = fh.read()
        blob_id = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
        if b"\0" in data[:8000]:  # git's own binary test
            return file_document(name, rel, None, blob_id=blob_id, binary=True, **common)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return file_document(
                name, rel, None, blob_id=blob_id, content_error="non_utf8", **common
            )
        return file_document(name, rel, text, blob_id=blob_id, **common)

    def repo_name_of(self, repo_dir: str) -> str:
        """The checkout's path below the root, `/`-separated: `name` or `owner/name`."""
        return os.path.relpath(repo_dir, self.root).replace(os.sep, "/")


__all__ = [
    "DEFAULT_MAX_ROW_BYTES",
    "SOURCE",
    "GitCheckoutReader",
    "GithubRowReader",
    "classify_repository_license",
    "file_document",
    "find_repositories",
    "read_license_rows",
    "row_document",
]
