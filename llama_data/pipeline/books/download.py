"""`llama-data download gutenberg`: Project Gutenberg plain-text books from the site or a mirror.

Which books: explicit ebook numbers, or the site's catalog (`cache/epub/feeds/pg_catalog.csv`,
Type = Text, optionally one language). Where: `--base-url` serves either the site's layout
(`cache/epub/<n>/pg<n>.txt`) or the rsync mirrors' (`1/2/3/4/12345/12345-0.txt`); both are tried.
Each file goes through the shared resumable downloader; Gutenberg publishes no checksums, so the
manifest records the sha256 of what arrived. A book that is not there is reported, not fatal.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from llama_data.pipeline.config import register_download, setting
from llama_data.pipeline.errors import ConfigError, UserError
from llama_data.pipeline.http_download import Downloaded, download, fetch_bytes, write_manifest

CATALOG_PATH = "cache/epub/feeds/pg_catalog.csv"
GUTENBERG = "https://www.gutenberg.org"


def parse_ids(spec: str) -> list[int]:
    """`11,84,100-103` -> [11, 84, 100, 101, 102, 103]."""
    out: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if m is None:
            raise UserError(f"--ids: {part!r} is not a number or a range like 1-100")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo or hi - lo > 1_000_000:
            raise UserError(f"--ids: bad range {part!r}")
        out.update(range(lo, hi + 1))
    return sorted(out)


def catalog_ids(catalog_csv: str, language: str | None = None) -> list[int]:
    """Ebook numbers of texts (not audio) in pg_catalog.csv, optionally of one language."""
    ids = []
    for row in csv.DictReader(io.StringIO(catalog_csv)):
        if row.get("Type", "Text") != "Text":
            continue
        langs = [x.strip() for x in (row.get("Language") or "").split(";")]
        if language and language not in langs:
            continue
        try:
            ids.append(int(row["Text#"]))
        except (KeyError, ValueError):
            continue
    return sorted(set(ids))


def candidate_urls(base_url: str, ebook: int) -> list[str]:
    """The site's path first, then the mirror layout (UTF-8, then 8-bit, then ASCII files)."""
    base = base_url.rstrip("/")
    digits = str(ebook)
    mirror_dir = "/".join(digits[:-1]) if len(digits) > 1 else "0"
    mirror = f"{base}/{mirror_dir}/{ebook}"
    return [
        f"{base}/cache/epub/{ebook}/pg{ebook}.txt",
        f"{mirror}/{ebook}-0.txt",
        f"{mirror}/{ebook}-8.txt",
        f"{mirror}/{ebook}.txt",
    ]


@dataclass
class GutenbergDownload:
    output: Path
    fetched: list[Downloaded] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        new = sum(not d.skipped for d in self.fetched)
        return (
            f"gutenberg: {len(self.fetched)} books in {self.output} ({new} new, "
            f"{len(self.fetched) - new} already there), {len(self.missing)} not found"
        )


@register_download("gutenberg")
@dataclass(frozen=True, kw_only=True)
class GutenbergDownloadSettings:
    """`llama-data download gutenberg`: every setting's default and help."""

    command_help: ClassVar[str] = (
        "Project Gutenberg plain-text books (resumable; reruns skip what arrived)."
    )

    output: str = setting(
        required=True, short="-o", help="Folder for the .txt files (and a manifest)."
    )
    base_url: str = setting(
        GUTENBERG, help="Gutenberg site or mirror (any host serving the same paths)."
    )
    ids: str | None = setting(
        None,
        help="Ebook numbers: `11,84,2701` or ranges `1-100`. Default: every text in the catalog.",
    )
    language: str | None = setting(
        None, help="With the catalog: only books in this language code (e.g. en)."
    )
    limit: int | None = setting(None, help="At most this many books.")

    def validate(self, where: str) -> None:
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"{where}.limit: must be >= 1, got {self.limit}")

    def run(self, echo: Callable[[str], None]) -> None:
        echo(
            str(
                download_gutenberg(
                    self.output, self.base_url, self.ids, self.language, self.limit, echo
                )
            )
        )


def download_gutenberg(
    output: str,
    base_url: str = GUTENBERG,
    ids: str | None = None,
    language: str | None = None,
    limit: int | None = None,
    echo: Callable[[str], None] = print,
) -> GutenbergDownload:
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    if ids:
        wanted = parse_ids(ids)
    else:
        catalog = fetch_bytes(f"{base_url.rstrip('/')}/{CATALOG_PATH}").decode("utf-8", "replace")
        wanted = catalog_ids(catalog, language)
        if not wanted:
            raise UserError(
                f"{base_url}: the catalog lists no texts"
                + (f" in {language!r}" if language else "")
            )
    if limit:
        wanted = wanted[:limit]
    result = GutenbergDownload(out)
    for n in wanted:
        dest = out / f"pg{n}.txt"
        got = None
        for url in candidate_urls(base_url, n):
            try:
                got = download(url, dest)
                break
            except UserError:
                continue
        if got is None:
            result.missing.append(n)
            echo(f"pg{n}: not found at {base_url}")
        else:
            result.fetched.append(got)
    write_manifest(
        out,
        result.fetched,
        {"source": "gutenberg", "base_url": base_url, "missing": result.missing},
    )
    return result
