"""File access through Beam's FileSystems, plus a read-only http(s) filesystem Beam lacks.

Every input goes through `FileSystems`, so a pattern may be local, `gs://` (apache-beam[gcp]),
`s3://` (apache-beam[aws]) or `http(s)://`. HTTP has no listing, so an http pattern names one
file; reads use Range requests, which makes the stream seekable (Parquet reads its footer first).
"""

from __future__ import annotations

import contextlib
import io
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import (
    BeamIOError,
    CompressionTypes,
    FileMetadata,
    FileSystem,
)
from apache_beam.io.filesystems import FileSystems

from llama_data.pipeline.errors import UserError

_TIMEOUT_S = 60


class _HttpRangeReader(io.RawIOBase):
    """A seekable raw stream over an HTTP resource, reading with Range requests."""

    def __init__(self, url: str, size: int | None) -> None:
        self.url = url
        self.size = size
        self.pos = 0
        self._resp = None  # open response positioned at self.pos, for sequential reads

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self.size is not None

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            new = offset
        elif whence == io.SEEK_CUR:
            new = self.pos + offset
        else:
            if self.size is None:
                raise OSError(f"{self.url}: size unknown, cannot seek from end")
            new = self.size + offset
        if new != self.pos:
            self._close_resp()
            self.pos = max(0, new)
        return self.pos

    def _open_at(self, pos: int):
        req = urllib.request.Request(self.url, headers={"Range": f"bytes={pos}-"} if pos else {})
        resp = urllib.request.urlopen(req, timeout=_TIMEOUT_S)  # noqa: S310 - user-given URL
        if pos and resp.status != 206:
            resp.close()
            raise OSError(f"{self.url}: server ignores Range requests; cannot seek")
        return resp

    def readinto(self, buf) -> int:  # type: ignore[override]
        if self.size is not None and self.pos >= self.size:
            return 0
        if self._resp is None:
            self._resp = self._open_at(self.pos)
        n = self._resp.readinto(buf)
        self.pos += n
        return n

    def _close_resp(self) -> None:
        if self._resp is not None:
            self._resp.close()
            self._resp = None

    def close(self) -> None:
        self._close_resp()
        super().close()


def _head(url: str) -> tuple[int | None, float]:
    req = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(req, timeout=_TIMEOUT_S) as resp:  # noqa: S310
            length = resp.headers.get("Content-Length")
            modified = resp.headers.get("Last-Modified")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise FileNotFoundError(url) from exc
        raise
    ts = 0.0
    if modified:
        from email.utils import parsedate_to_datetime

        try:
            ts = parsedate_to_datetime(modified).timestamp()
        except (TypeError, ValueError):
            ts = 0.0
    return (int(length) if length is not None else None), ts


class HttpFileSystem(FileSystem):
    """Read-only `http://` filesystem: match (one file per pattern, no globs) and open."""

    @classmethod
    def scheme(cls) -> str:
        return "http"

    def join(self, basepath: str, *paths: str) -> str:
        return "/".join([basepath.rstrip("/"), *(p.strip("/") for p in paths)])

    def split(self, path: str) -> tuple[str, str]:
        head, _, tail = path.rstrip("/").rpartition("/")
        return head, tail

    def has_dirs(self) -> bool:
        return False

    def _list(self, dir_or_prefix):
        raise BeamIOError(f"cannot list {dir_or_prefix}: http has no directory listing")

    def match(self, patterns, limits=None):
        from apache_beam.io.filesystem import MatchResult

        results = []
        for pattern in patterns:
            if any(c in pattern.split("?", 1)[0] for c in "*["):
                raise BeamIOError(
                    "Match operation failed", {pattern: ValueError("no globs over http")}
                )
            try:
                results.append(MatchResult(pattern, [self.metadata(pattern)]))
            except FileNotFoundError:
                results.append(MatchResult(pattern, []))
        return results

    def exists(self, path: str) -> bool:
        try:
            _head(path)
        except FileNotFoundError:
            return False
        return True

    def size(self, path: str) -> int:
        size, _ = _head(path)
        return -1 if size is None else size

    def last_updated(self, path: str) -> float:
        return _head(path)[1]

    def metadata(self, path: str) -> FileMetadata:
        size, ts = _head(path)
        return FileMetadata(path, -1 if size is None else size, ts)

    def open(
        self, path, mime_type="application/octet-stream", compression_type=CompressionTypes.AUTO
    ):
        size, _ = _head(path)
        return io.BufferedReader(_HttpRangeReader(path, size), buffer_size=1 << 20)

    def _read_only(self, *_args, **_kwargs):
        raise BeamIOError("http(s) is read-only: write outputs to a local path, gs:// or s3://")

    create = copy = rename = delete = mkdirs = _read_only


class HttpsFileSystem(HttpFileSystem):
    @classmethod
    def scheme(cls) -> str:
        return "https"


def open_raw(path: str) -> BinaryIO:
    """The raw (undecompressed) byte stream of `path` on any registered filesystem."""
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


@dataclass(frozen=True)
class MatchedFile:
    path: str
    size: int
    mtime: float


def match_inputs(patterns: list[str], what: str = "input") -> list[MatchedFile]:
    """Expand patterns to files, sorted by path; a pattern matching nothing is a user error."""
    files: dict[str, MatchedFile] = {}
    for pattern in patterns:
        try:
            result = FileSystems.match([pattern])[0]
        except (BeamIOError, ValueError) as exc:
            raise UserError(f"{what} {pattern!r}: {_beam_error_text(exc)}") from exc
        matched = [m for m in result.metadata_list if not m.path.endswith("/")]
        if not matched:
            raise UserError(f"{what} {pattern!r} matches no file")
        for m in matched:
            files[m.path] = MatchedFile(
                m.path, int(m.size_in_bytes), float(m.last_updated_in_seconds or 0)
            )
    return [files[p] for p in sorted(files)]


def _beam_error_text(exc: Exception) -> str:
    inner = getattr(exc, "exception_details", None)
    if isinstance(inner, dict) and inner:
        return "; ".join(f"{v}" for v in inner.values())
    return str(exc)


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def read_text(path: str) -> str:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read().decode("utf-8")


def write_text(path: str, text: str) -> None:
    """Write a small file atomically where the filesystem allows: temp name, then rename."""
    tmp = f"{path}.tmp"
    with FileSystems.create(tmp, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(text.encode("utf-8"))
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])


def write_parquet(path: str, table: pa.Table) -> None:
    """One Arrow table as a zstd Parquet file (the stage outputs' codec), on any filesystem."""
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        pq.write_table(table, f, compression="zstd")


def read_parquet(path: str) -> pa.Table:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return pq.read_table(f)


def move(src: str, dst: str) -> None:
    """Rename `src` to `dst`; done already (a retried bundle) when only `dst` exists."""
    if not FileSystems.exists(src) and FileSystems.exists(dst):
        return
    parent = FileSystems.split(dst)[0]
    if not FileSystems.exists(parent):
        with contextlib.suppress(BeamIOError):  # another worker made it first
            FileSystems.mkdirs(parent)
    FileSystems.rename([src], [dst])


def basename(path: str) -> str:
    return FileSystems.split(path)[1]


def join(base: str, *parts: str) -> str:
    return FileSystems.join(base, *parts)


def list_files(directory: str, pattern: str = "*") -> list[str]:
    try:
        result = FileSystems.match([FileSystems.join(directory, pattern)])[0]
    except BeamIOError:
        return []
    return sorted(m.path for m in result.metadata_list)


def delete_tree(directory: str) -> None:
    if FileSystems.exists(directory):
        FileSystems.delete([directory])


class BeamFileStore:
    """`model_files.FileStore` over Beam's FileSystems: how the steps that load a model from a
    URL (`gs://`, `s3://`, `http(s)://`) read it on a worker. Stateless, so it pickles with them."""

    def version(self, url: str) -> str:
        try:
            matched = FileSystems.match([url])[0].metadata_list
        except BeamIOError as exc:
            raise FileNotFoundError(url) from exc
        exact = [m for m in matched if m.path == url]
        if not exact:
            raise FileNotFoundError(url)
        m = exact[0]
        return f"{int(m.size_in_bytes)}:{float(m.last_updated_in_seconds or 0):.6f}"

    def open(self, url: str) -> BinaryIO:
        return open_raw(url)

    def list(self, folder: str) -> list[str]:
        return list_files(folder.rstrip("/"))


FILE_STORE = BeamFileStore()


def model_file(path: str) -> str:
    """A local copy of the model file at `path` (itself when local), fetched once per machine."""
    from llama_data.pipeline import model_files

    return str(model_files.local_file(path, FILE_STORE))
