"""Resumable, verified downloads of published dumps (Wikimedia, Stack Exchange, Common Crawl, ...).

A file is fetched into `<dest>.part`, resumed with an HTTP Range request after an interruption,
verified against the publisher's checksum when one is known, and only then renamed to `<dest>`:
a file at its final name is always complete. A rerun skips files that are already there and
still verify. Base URLs are parameters of the callers, so tests point them at 127.0.0.1.

The HTTP side every source's `download.py` shares (`pipeline/<source>/download.py` names the
files and checksums of its publisher; this module fetches them).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llama_data.pipeline.digest import file_sha256
from llama_data.pipeline.errors import UserError

CHUNK = 1 << 20
USER_AGENT = "llama-data (https://pypi.org/project/llama-data/)"


class ChecksumMismatch(UserError):
    pass


@dataclass(frozen=True)
class Downloaded:
    path: Path
    bytes: int
    sha256: str
    skipped: bool  # already complete before this call
    resumed_from: int = 0


def parse_checksums(text: str) -> dict[str, str]:
    """`md5sum`/`sha1sum` style lines (`<hex>  <name>`) -> {file name: hex digest}."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split()
        if len(parts) >= 2 and all(c in "0123456789abcdefABCDEF" for c in parts[0]):
            out[parts[-1].lstrip("*")] = parts[0].lower()
    return out


def _request(url: str, headers: dict[str, str] | None = None, timeout: float = 60):
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 - URLs are the user's choice


def fetch_bytes(url: str, retries: int = 3, timeout: float = 60) -> bytes:
    """A small file (an index, a checksum list) in memory, with retries on transient errors."""
    last: Exception | None = None
    for attempt in range(retries):
        try:
            with _request(url, timeout=timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                raise UserError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
            last = exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            last = exc
        time.sleep(min(2**attempt, 10))
    raise UserError(f"{url}: {last}")


def download(
    url: str,
    dest: Path,
    *,
    checksum: str | None = None,
    algo: str = "sha256",
    retries: int = 5,
    timeout: float = 60,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> Downloaded:
    """Fetch `url` to `dest`, resuming a previous partial download; verify `checksum` (hex, `algo`)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        if checksum is None or file_sha256(dest, algo) == checksum.lower():
            return Downloaded(dest, dest.stat().st_size, file_sha256(dest), skipped=True)
        dest.unlink()  # a stale or corrupt file at the final name: fetch it again
    part = dest.with_name(dest.name + ".part")
    resumed_from = part.stat().st_size if part.exists() else 0
    last: Exception | None = None
    for attempt in range(retries):
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with _request(url, headers, timeout) as resp:
                if have and resp.status != 206:
                    have = 0  # the server ignored Range: start over
                total = resp.headers.get("Content-Length")
                total_size = (int(total) + have) if total is not None else None
                with part.open("ab" if have else "wb") as out:
                    done = have
                    for chunk in iter(lambda: resp.read(CHUNK), b""):
                        out.write(chunk)
                        done += len(chunk)
                        if on_progress:
                            on_progress(done, total_size)
                if total_size is not None and done < total_size:
                    raise ConnectionError(f"connection closed at {done} of {total_size} bytes")
            break
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # range beyond the end: the part file is already complete
                break
            if exc.code < 500:
                raise UserError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
            last = exc
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            last = exc
        time.sleep(min(2**attempt, 10) * 0.1)
    else:
        raise UserError(f"{url}: download failed after {retries} attempts: {last}")
    if checksum is not None:
        got = file_sha256(part, algo)
        if got != checksum.lower():
            part.unlink()
            raise ChecksumMismatch(f"{url}: {algo} {got} does not match the published {checksum}")
    os.replace(part, dest)
    return Downloaded(
        dest, dest.stat().st_size, file_sha256(dest), skipped=False, resumed_from=resumed_from
    )


def write_manifest(directory: Path, files: list[Downloaded], extra: dict | None = None) -> Path:
    """Record what arrived (name, bytes, sha256) next to the files, for later verification."""
    manifest = {
        **(extra or {}),
        "files": {
            d.path.name: {"bytes": d.bytes, "sha256": d.sha256}
            for d in sorted(files, key=lambda d: d.path.name)
        },
    }
    path = Path(directory) / "download-manifest.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    os.replace(tmp, path)
    return path
