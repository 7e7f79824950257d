"""`download cc`: a snapshot's `wet.paths.gz` and its first N WET files from Common Crawl.

Common Crawl publishes no per-file checksums for WET files, so what arrived is checked two ways:
each file must be a complete gzip stream (every member decompresses and ends cleanly; a cut
transfer fails here), and the manifest records its size and sha256 for later verification.
Segments are taken in the order of `wet.paths.gz`, so `--segments 10` is the same 10 files on
every machine and a rerun resumes (`.part` files) or skips what is complete.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from llama_data.pipeline.config import register_download, setting
from llama_data.pipeline.errors import UserError
from llama_data.pipeline.http_download import Downloaded, download, fetch_bytes, write_manifest

DEFAULT_BASE_URL = "https://data.commoncrawl.org"
SNAPSHOT_RE = re.compile(r"^CC-MAIN-\d{4}-\d{2}$")


def check_snapshot(snapshot: str) -> None:
    if not SNAPSHOT_RE.match(snapshot):
        raise UserError(
            f"--snapshot: expected CC-MAIN-YYYY-WW (e.g. CC-MAIN-2023-06), got {snapshot!r}"
        )


def wet_paths(base_url: str, snapshot: str) -> list[str]:
    """The snapshot's WET file paths (relative to the base URL), in published order."""
    raw = fetch_bytes(f"{base_url.rstrip('/')}/crawl-data/{snapshot}/wet.paths.gz")
    try:
        text = gzip.decompress(raw).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise UserError(f"{snapshot}/wet.paths.gz is not a gzip list of paths: {exc}") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


def gzip_complete(path: Path) -> bool:
    """Every gzip member of the file decompresses with a valid CRC and the file ends cleanly."""
    d = None
    members = 0
    try:
        with open(path, "rb") as f:
            pending = b""
            while True:
                if not pending:
                    pending = f.read(1 << 20)
                    if not pending:
                        break
                if d is None:
                    d = zlib.decompressobj(wbits=31)
                    members += 1
                d.decompress(pending, 1 << 22)
                if d.eof:
                    pending, d = d.unused_data, None
                else:
                    pending = d.unconsumed_tail
    except zlib.error:
        return False
    return d is None and members > 0


@register_download("cc")
@dataclass(frozen=True, kw_only=True)
class CcDownloadSettings:
    """`llama-data download cc`: every setting's default and help."""

    command_help: ClassVar[str] = (
        "Fetch a snapshot's wet.paths.gz and its first N WET files (resumable, verified)."
    )

    snapshot: str = setting(required=True, help="Crawl id, e.g. CC-MAIN-2023-06.")
    segments: int = setting(1, help="How many WET files (first N of wet.paths.gz).")
    output: str = setting(
        required=True, short="-o", help="Folder for the WET files and download-manifest.json."
    )
    base_url: str = setting(DEFAULT_BASE_URL, help="Common Crawl HTTP endpoint (or a mirror).")

    def run(self, echo: Callable[[str], None]) -> None:
        def report(d: Downloaded) -> None:
            what = "already complete" if d.skipped else f"{d.bytes:,} bytes"
            echo(f"  {d.path.name}: {what}")

        manifest = download_cc(self.snapshot, self.segments, self.output, self.base_url, report)
        echo(
            f"[download cc] {self.snapshot}: {self.segments} WET file(s) -> {self.output} "
            f"({manifest.name})"
        )


def download_cc(
    snapshot: str,
    segments: int,
    output: str | Path,
    base_url: str = DEFAULT_BASE_URL,
    on_file: Callable[[Downloaded], None] | None = None,
) -> Path:
    """Fetch the first `segments` WET files of `snapshot` into `output`; return the manifest."""
    check_snapshot(snapshot)
    if segments < 1:
        raise UserError(f"--segments: must be >= 1, got {segments}")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    paths = wet_paths(base_url, snapshot)
    if not paths:
        raise UserError(f"{snapshot}: wet.paths.gz lists no files")
    (out / "wet.paths").write_text("\n".join(paths) + "\n", encoding="utf-8")
    got: list[Downloaded] = []
    for rel in paths[:segments]:
        dest = out / Path(rel).name
        url = f"{base_url.rstrip('/')}/{rel}"
        d = download(url, dest)
        if not gzip_complete(dest):
            dest.unlink()
            d = download(url, dest)  # one fresh attempt: a resumed file may have been spliced wrong
            if not gzip_complete(dest):
                raise UserError(f"{url}: the downloaded file is not a complete gzip stream")
        got.append(d)
        if on_file:
            on_file(d)
    return write_manifest(
        out,
        got,
        {
            "snapshot": snapshot,
            "base_url": base_url,
            "segments": segments,
            "available_segments": len(paths),
            "check": "gzip stream complete + sha256 of each file (Common Crawl publishes no checksums)",
        },
    )
