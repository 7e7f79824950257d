"""`download stackexchange`: a site's .7z from archive.org, verified against the item's checksums."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from lxml import etree

from llama_data.pipeline.config import register_download, setting
from llama_data.pipeline.errors import ConfigError, UserError
from llama_data.pipeline.http_download import Downloaded, download, fetch_bytes, write_manifest
from llama_data.pipeline.xmlsafe import safe_parser

STACKEXCHANGE_DUMP = "https://archive.org/download/stackexchange"


def site_archive_names(site: str) -> list[str]:
    """The dump's archives holding a site's posts (Stack Overflow ships Posts separately)."""
    site = site if "." in site else f"{site}.stackexchange.com"
    if site == "stackoverflow.com":
        return ["stackoverflow.com-Posts.7z"]
    return [f"{site}.7z"]


def parse_archive_checksums(xml: bytes) -> dict[str, tuple[str, str]]:
    """archive.org's `<item>_files.xml`: file name -> (algo, hex) with sha1 preferred over md5."""
    root = etree.fromstring(xml, safe_parser())
    out: dict[str, tuple[str, str]] = {}
    for f in root.iter("file"):
        name = f.get("name")
        if not name:
            continue
        for algo in ("sha1", "md5"):
            el = f.find(algo)
            if el is not None and el.text and el.text.strip():
                out[name] = (algo, el.text.strip().lower())
                break
    return out


@register_download("stackexchange")
@dataclass(frozen=True, kw_only=True)
class StackExchangeDownloadSettings:
    """`llama-data download stackexchange`: every setting's default and help."""

    command_help: ClassVar[str] = (
        "The Stack Exchange dump's per-site archives, verified with the item's checksums."
    )

    sites: list[str] = setting(
        required=True,
        sep=",",
        help="Sites, comma-separated (beer.stackexchange.com, or beer; stackoverflow.com).",
    )
    output: str = setting(required=True, short="-o", help="Folder for the site archives (.7z).")
    base_url: str = setting(
        STACKEXCHANGE_DUMP,
        help="Where the dump's per-site .7z files are (a mirror, or a local server for tests).",
    )

    def validate(self, where: str) -> None:
        if not self.sites:
            raise ConfigError(f"{where}.sites: name at least one site")

    def run(self, echo: Callable[[str], None]) -> None:
        download_stackexchange(self.sites, Path(self.output), self.base_url, echo=echo)


def download_stackexchange(
    sites: Sequence[str],
    output: Path,
    base_url: str = STACKEXCHANGE_DUMP,
    echo: Callable[[str], None] = print,
) -> list[Downloaded]:
    """Fetch each site's .7z into `output/`, verified against the item's files.xml checksums."""
    base = base_url.rstrip("/")
    item = base.rsplit("/", 1)[-1]
    try:
        sums = parse_archive_checksums(fetch_bytes(f"{base}/{item}_files.xml"))
    except (UserError, etree.XMLSyntaxError) as exc:
        raise UserError(
            f"cannot read the dump's checksums ({base}/{item}_files.xml): {exc}"
        ) from exc
    got = []
    for site in sites:
        for name in site_archive_names(site):
            if name not in sums:
                raise UserError(f"{name}: not in the dump ({base}); check the site name")
            algo, digest = sums[name]
            d = download(f"{base}/{name}", Path(output) / name, checksum=digest, algo=algo)
            echo(f"{'have' if d.skipped else 'got '} {d.path} ({d.bytes:,} bytes, {algo} ok)")
            got.append(d)
    write_manifest(
        Path(output), got, {"source": "stackexchange", "base_url": base, "sites": list(sites)}
    )
    return got
