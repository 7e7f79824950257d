"""arXiv source containers, read in memory only: nothing is ever extracted to disk.

- bulk tars `arXiv_src_YYMM_NNN.tar` (requester-pays `s3://arxiv/src/`): members `YYMM/<id>.gz`
  (a gzipped tar of a multi-file project, or one gzipped .tex) and `YYMM/<id>.pdf` (PDF-only);
- per-paper `<id>.gz`, `<id>.tar.gz`/`.tgz`, `<id>.tar`, `<id>.pdf`;
- extracted directories (one per paper, or a folder of such directories).

Limits keep hostile input bounded: a gzip member decompresses to at most `max_paper_bytes`
(bombs are cut, not inflated), a paper holds at most `max_files`, and member names that are
absolute or contain `..` are refused (and reported) even though nothing is written anywhere.
"""

from __future__ import annotations

import glob
import io
import os
import posixpath
import re
import tarfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from llama_data.pipeline.errors import UserError
from llama_data.pipeline.io import InflationBudget

# New-style ids (0704.0001, 2101.00001v2) and old-style (hep-th/9901001 stored as hep-th9901001).
NEW_ID_RE = re.compile(r"^(\d{4}\.\d{4,5})(v\d+)?$")
OLD_ID_RE = re.compile(r"^([a-z][a-z\-]+(?:\.[A-Z]{2})?)(\d{7})(v\d+)?$")


@dataclass(frozen=True)
class Limits:
    max_member_bytes: int = 1 << 30  # compressed size of one paper in a bulk tar
    max_paper_bytes: int = 256 << 20  # decompressed size of one paper (all its files)
    max_files: int = 5000


@dataclass
class PaperFiles:
    """One paper's files in memory, or why it has none we can use (`skip`)."""

    origin: str  # path, or `path!member` for a member of a bulk tar
    arxiv_id: str | None
    files: dict[str, bytes] = field(default_factory=dict)
    skip: str | None = None  # pdf_only, no_latex, too_large, corrupt_archive, ...
    notes: list[str] = field(default_factory=list)


def arxiv_id_from_name(name: str) -> str | None:
    """`2101.00001.gz` -> 2101.00001; `hep-th9901001.gz` -> hep-th/9901001; else None."""
    stem = posixpath.basename(name.rstrip("/"))
    for ext in (".tar.gz", ".tgz", ".gz", ".tar", ".pdf"):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    if m := NEW_ID_RE.match(stem):
        return m.group(1) + (m.group(2) or "")
    if m := OLD_ID_RE.match(stem):
        return f"{m.group(1)}/{m.group(2)}" + (m.group(3) or "")
    return None


def safe_member_name(name: str) -> str | None:
    """The normalised relative name, or None for absolute paths and `..` escapes."""
    if not name or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", name):
        return None
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return "/".join(parts)


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """Decompress gzip (all members) to at most `limit` bytes; raise ValueError past it."""
    d = zlib.decompressobj(wbits=31)
    out = bytearray()
    buf = data
    while buf:
        out += d.decompress(buf, limit + 1 - len(out))
        if len(out) > limit:
            raise ValueError(f"decompresses to more than {limit} bytes (gzip bomb?)")
        if d.unconsumed_tail:
            buf = d.unconsumed_tail
            continue
        if d.eof and d.unused_data:  # another gzip member follows
            buf = d.unused_data
            d = zlib.decompressobj(wbits=31)
            continue
        break
    if not d.eof and not out:
        raise ValueError("truncated gzip stream")
    return bytes(out)


def _classify_single(origin: str, arxiv_id: str | None, raw: bytes, name: str) -> PaperFiles:
    head = raw[:1024].lstrip()
    if head.startswith(b"%PDF"):
        return PaperFiles(origin, arxiv_id, skip="pdf_only")
    if head.startswith(b"%!PS"):
        return PaperFiles(origin, arxiv_id, skip="no_latex", notes=["postscript"])
    if head[:200].lower().startswith((b"<html", b"<!doctype html")):
        return PaperFiles(origin, arxiv_id, skip="no_latex", notes=["html"])
    if b"\x00" in raw[:8192]:
        return PaperFiles(origin, arxiv_id, skip="no_latex", notes=["binary"])
    return PaperFiles(origin, arxiv_id, files={name: raw})


def paper_from_bytes(
    data: bytes, origin: str, arxiv_id: str | None, limits: Limits, gz: bool
) -> PaperFiles:
    """A per-paper payload (gzipped or not): a tar of files, one .tex, or a PDF."""
    if gz:
        try:
            data = gunzip_bounded(data, limits.max_paper_bytes)
        except ValueError as exc:
            reason = "too_large" if "more than" in str(exc) else "corrupt_archive"
            return PaperFiles(origin, arxiv_id, skip=reason, notes=[str(exc)])
        except zlib.error as exc:
            return PaperFiles(origin, arxiv_id, skip="corrupt_archive", notes=[f"gzip: {exc}"])
    if _looks_like_tar(data):
        return _paper_from_tar(data, origin, arxiv_id, limits)
    base = (arxiv_id or posixpath.basename(origin)).replace("/", "_")
    return _classify_single(origin, arxiv_id, data, f"{base}.tex")


def _looks_like_tar(data: bytes) -> bool:
    if len(data) < 512:
        return False
    if data[257:262] == b"ustar":
        return True
    try:  # old v7 tars have no magic: trust the header checksum
        tarfile.TarInfo.frombuf(data[:512], "utf-8", "surrogateescape")
        return True
    except (tarfile.HeaderError, ValueError):
        return False


def _paper_from_tar(data: bytes, origin: str, arxiv_id: str | None, limits: Limits) -> PaperFiles:
    paper = PaperFiles(origin, arxiv_id)
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
            for member in tf:
                if not member.isfile():
                    if member.issym() or member.islnk():
                        paper.notes.append(f"link_skipped:{member.name}")
                    continue
                name = safe_member_name(member.name)
                if name is None:
                    paper.notes.append(f"unsafe_member:{member.name}")
                    continue
                if len(paper.files) >= limits.max_files:
                    paper.notes.append("too_many_files")
                    break
                fobj = tf.extractfile(member)
                if fobj is None:
                    continue
                content = fobj.read(limits.max_paper_bytes + 1)
                total += len(content)
                if total > limits.max_paper_bytes:
                    return PaperFiles(
                        origin, arxiv_id, skip="too_large", notes=["files exceed the paper limit"]
                    )
                paper.files[name] = content
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        if not paper.files:
            return PaperFiles(origin, arxiv_id, skip="corrupt_archive", notes=[f"tar: {exc}"])
        paper.notes.append(f"truncated_tar:{exc}")
    return _finish_project(paper)


def _finish_project(paper: PaperFiles) -> PaperFiles:
    names = [n.lower() for n in paper.files]
    if not any(n.endswith((".tex", ".ltx", ".latex")) for n in names):
        paper.skip = "pdf_only" if any(n.endswith(".pdf") for n in names) else "no_latex"
        paper.files = {}
    return paper


OpenRaw = Callable[[str], BinaryIO]


def read_container(path: str, open_raw: OpenRaw, limits: Limits = Limits()) -> Iterator[PaperFiles]:
    """Every paper in one file. Raises OSError/tarfile errors only for the container itself."""
    low = path.lower()
    arxiv_id = arxiv_id_from_name(path)
    if low.endswith(".tar"):
        yield from _read_tar_stream(path, open_raw, limits)
        return
    if "arxiv_src_" in posixpath.basename(low) and low.endswith((".tar.gz", ".tgz")):
        yield from _read_tar_stream(path, open_raw, limits, "r|gz")  # a re-compressed bulk tar
        return
    with open_raw(path) as raw:
        data = raw.read(limits.max_member_bytes + 1)
    if len(data) > limits.max_member_bytes:
        yield PaperFiles(path, arxiv_id, skip="too_large")
        return
    if low.endswith(".pdf"):
        yield PaperFiles(path, arxiv_id, skip="pdf_only")
        return
    gz = data[:2] == b"\x1f\x8b"
    yield paper_from_bytes(data, path, arxiv_id, limits, gz)


class BudgetedGzip(io.RawIOBase):
    """A gzip stream (all its members) inflated as it is read, within the budget compressed
    JSON lines have (`InflationBudget`: 1000:1 once past 1 GiB): past it, `DecompressionLimit`.
    For a re-compressed bulk tar, whose members tarfile would otherwise inflate (or skip by
    inflating) without a bound; at most 1 MiB is inflated at a time."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._in = InflationBudget(raw)
        self._d = zlib.decompressobj(wbits=31)
        self._pending = b""  # compressed bytes not yet inflated
        self._inside = False  # inside a gzip member (its end not seen yet)
        self._out = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        while not self._out:
            if not self._pending:
                self._pending = self._in.read(1 << 16)
                if not self._pending:
                    if self._inside:
                        raise EOFError("the gzip stream ends inside a member (file cut short)")
                    return 0
            if self._d.eof:
                self._d = zlib.decompressobj(wbits=31)
            self._inside = True
            self._out = self._d.decompress(self._pending, 1 << 20)
            if self._d.eof:
                self._inside = False
                self._pending = self._d.unused_data
            else:
                self._pending = self._d.unconsumed_tail
            self._in.add(len(self._out))
        n = min(len(b), len(self._out))
        b[:n] = self._out[:n]
        self._out = self._out[n:]
        return n


def _read_tar_stream(
    path: str, open_raw: OpenRaw, limits: Limits, mode: str = "r|"
) -> Iterator[PaperFiles]:
    """A bulk tar (papers as `YYMM/<id>.gz|.pdf` members), streamed: S3 objects are not seekable.

    A plain tar that is not a bulk tar (its members are the files of one paper) becomes one paper.
    """
    loose = PaperFiles(path, arxiv_id_from_name(path))
    with (
        open_raw(path) as raw,
        tarfile.open(  # type: ignore[call-overload]
            fileobj=BudgetedGzip(raw) if mode == "r|gz" else raw, mode="r|"
        ) as tf,
    ):
        for member in tf:
            if not member.isfile():
                continue
            name = safe_member_name(member.name)
            origin = f"{path}!{member.name}"
            if name is None:
                yield PaperFiles(origin, None, skip="unsafe_member", notes=[member.name])
                continue
            low = name.lower()
            is_paper = low.endswith((".gz", ".pdf")) and arxiv_id_from_name(name) is not None
            if member.size > limits.max_member_bytes:
                if is_paper:
                    yield PaperFiles(origin, arxiv_id_from_name(name), skip="too_large")
                else:
                    loose.notes.append(f"too_large:{name}")
                continue
            fobj = tf.extractfile(member)
            data = fobj.read() if fobj is not None else b""
            if is_paper:
                aid = arxiv_id_from_name(name)
                if low.endswith(".pdf"):
                    yield PaperFiles(origin, aid, skip="pdf_only")
                else:
                    yield paper_from_bytes(data, origin, aid, limits, data[:2] == b"\x1f\x8b")
            elif len(loose.files) < limits.max_files:
                loose.files[name] = data
    if loose.files:
        yield _finish_project(loose)


def paper_directories(root: str) -> list[str]:
    """Paper folders under `root`: itself if it holds .tex files, else its sub-folders that do."""

    def has_tex(d: str) -> bool:
        for _dirpath, _dirs, files in os.walk(d):
            if any(f.lower().endswith((".tex", ".ltx", ".latex")) for f in files):
                return True
        return False

    if any(
        f.lower().endswith((".tex", ".ltx", ".latex"))
        for f in os.listdir(root)
        if os.path.isfile(os.path.join(root, f))
    ):
        return [root]
    return sorted(
        os.path.join(root, d)
        for d in os.listdir(root)
        if os.path.isdir(os.path.join(root, d))
        and not os.path.islink(os.path.join(root, d))
        and has_tex(os.path.join(root, d))
    )


def expand_inputs(patterns: Sequence[str]) -> list[str]:
    """Files and globs stay as they are; local folders become their paper folders."""
    out: list[str] = []
    for pattern in patterns:
        if "://" in pattern:
            out.append(pattern)
            continue
        if os.path.isdir(pattern):
            papers = paper_directories(pattern)
            if not papers:
                raise UserError(f"input {pattern!r}: a folder without .tex files")
            out += papers
            continue
        hits = sorted(glob.glob(pattern))
        dirs = [h for h in hits if os.path.isdir(h)]
        if dirs:
            for d in dirs:
                out += paper_directories(d)
            out += [h for h in hits if os.path.isfile(h)]
        else:
            out.append(pattern)
    return out


def folders_fingerprint(paths: Sequence[str]) -> str | None:
    """A digest of the files (name, size, mtime) inside the local folders among `paths`.

    A folder's own metadata does not change when a file in it is edited, so the stage's
    skip-if-complete fingerprint would miss it without this.
    """
    import hashlib

    h = hashlib.sha256()
    found = False
    for path in sorted(p for p in paths if "://" not in p and os.path.isdir(p)):
        found = True
        for dirpath, dirs, files in os.walk(path):
            dirs.sort()
            for f in sorted(files):
                st = os.stat(os.path.join(dirpath, f))
                h.update(f"{os.path.join(dirpath, f)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest() if found else None


def read_directory(path: str, limits: Limits = Limits()) -> PaperFiles:
    """An extracted paper folder (symlinks are not followed: they could point anywhere)."""
    paper = PaperFiles(path.rstrip("/"), arxiv_id_from_name(path))
    total = 0
    for dirpath, dirs, files in os.walk(path, followlinks=False):
        dirs.sort()
        for f in sorted(files):
            full = os.path.join(dirpath, f)
            if os.path.islink(full) or not os.path.isfile(full):
                continue
            rel = os.path.relpath(full, path).replace(os.sep, "/")
            if len(paper.files) >= limits.max_files:
                paper.notes.append("too_many_files")
                return _finish_project(paper)
            size = os.path.getsize(full)
            total += size
            if total > limits.max_paper_bytes:
                return PaperFiles(paper.origin, paper.arxiv_id, skip="too_large")
            with open(full, "rb") as fh:
                paper.files[rel] = fh.read()
    return _finish_project(paper)
