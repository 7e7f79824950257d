"""Model files (the CCNet LM, the Wikipedia-reference classifier, the tokenizer, lid.176) from
a local path or an object store (`gs://`, `s3://`, `http(s)://`), as local files.

KenLM, SentencePiece and fastText open their models by local path (KenLM memory-maps them), so a
model given as a URL is copied to local disk first: once per machine, not once per worker
process or per bundle. The copy lives under the cache folder (`LLAMA_DATA_MODEL_CACHE`, default
`<tmp>/llama-data-models`) at a name made of the URL and the object's version (size and
modification time or etag), so a replaced model is fetched again and an unchanged one never is;
it is written under a temporary name and renamed into place, under a per-file lock, so processes
sharing a machine wait for the first one's download instead of reading half a file. Each process
also remembers what it fetched.

How to read a URL is the caller's (`FileStore`): the Beam jobs pass their FileSystems-backed one
(`beam_jobs/fs.py`), so this module stays free of Beam. A local path is returned unchanged.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from llama_data.pipeline.config import is_url

CACHE_ENV = "LLAMA_DATA_MODEL_CACHE"
_CHUNK = 1 << 20


class ModelFileError(RuntimeError):
    """A model URL that cannot be read (no store for its scheme, missing object)."""


class FileStore(Protocol):
    """Reads objects by URL. `version` is a string that changes when the object does (size and
    modification time or etag); it raises FileNotFoundError for a missing object."""

    def version(self, url: str) -> str: ...

    def open(self, url: str) -> BinaryIO: ...

    def list(self, folder: str) -> list[str]: ...


def is_remote(path: str | os.PathLike[str]) -> bool:
    """A URL (`scheme://...`) other than `file://`: fetched, not opened in place."""
    s = os.fspath(path)
    return is_url(s) and not s.startswith("file://")


def join(folder: str | os.PathLike[str], name: str) -> str:
    """`folder/name` for a local folder or a URL prefix alike."""
    s = os.fspath(folder)
    if is_remote(s):
        return f"{s.rstrip('/')}/{name}"
    return os.path.join(s, name)


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "llama-data-models")


# (url, version) -> local copy, for this process's life: a second lookup costs one `version`
# call and no disk access.
_fetched: dict[tuple[str, str], Path] = {}


def local_file(path: str | os.PathLike[str], store: FileStore | None = None) -> Path:
    """A local path holding the file at `path`: `path` itself when local, else the cached copy."""
    s = os.fspath(path)
    if not is_remote(s):
        return Path(s.removeprefix("file://"))
    if store is None:
        raise ModelFileError(f"{s}: a model URL needs a file store (read through Beam's jobs)")
    try:
        version = store.version(s)
    except FileNotFoundError as exc:
        raise ModelFileError(f"{s}: no such object") from exc
    done = _fetched.get((s, version))
    if done is not None and done.is_file():
        return done
    digest = hashlib.sha256(f"{s}\0{version}".encode()).hexdigest()[:32]
    name = s.rstrip("/").rsplit("/", 1)[-1] or "model"
    folder = cache_root() / digest
    dest = folder / name
    if not dest.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with _locked(folder / ".lock"):
            if not dest.is_file():  # another process fetched it while we waited
                _download(s, store, dest)
    _fetched[(s, version)] = dest
    return dest


def _download(url: str, store: FileStore, dest: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, contextlib.closing(store.open(url)) as src:
            shutil.copyfileobj(src, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def version_of(path: str | os.PathLike[str], store: FileStore | None = None) -> str:
    """What identifies this version of a model file (for a stage's fingerprint): size and
    modification time locally, the store's version string for a URL."""
    s = os.fspath(path)
    if not is_remote(s):
        st = os.stat(s.removeprefix("file://"))
        return f"{st.st_size}:{st.st_mtime_ns}"
    if store is None:
        raise ModelFileError(f"{s}: a model URL needs a file store (read through Beam's jobs)")
    try:
        return store.version(s)
    except FileNotFoundError as exc:
        raise ModelFileError(f"{s}: no such object") from exc


def exists(path: str | os.PathLike[str], store: FileStore | None = None) -> bool:
    try:
        version_of(path, store)
    except (OSError, ModelFileError):
        return False
    return True


def list_names(folder: str | os.PathLike[str], store: FileStore | None = None) -> list[str]:
    """Names of the files directly in a local folder or under a URL prefix (`folder/`)."""
    s = os.fspath(folder)
    if not is_remote(s):
        d = Path(s.removeprefix("file://"))
        return sorted(p.name for p in d.iterdir() if p.is_file()) if d.is_dir() else []
    if store is None:
        raise ModelFileError(f"{s}: a model URL needs a file store (read through Beam's jobs)")
    prefix = s.rstrip("/") + "/"
    return sorted(
        u[len(prefix) :]
        for u in store.list(prefix)
        if u.startswith(prefix) and "/" not in u[len(prefix) :]
    )
