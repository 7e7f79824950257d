"""Which files make a Wikipedia dump, and fetching them verified against Wikimedia's sha1sums.

Wikimedia publishes `https://dumps.wikimedia.org/<db>/<date>/` with the multistream articles dump,
its index (the offsets the reader splits at) and `<db>-<date>-sha1sums.txt` (md5sums too).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from llama_data.pipeline.config import register_download, setting
from llama_data.pipeline.errors import ConfigError, UserError
from llama_data.pipeline.http_download import (
    Downloaded,
    download,
    fetch_bytes,
    parse_checksums,
    write_manifest,
)
from llama_data.pipeline.wikipedia.config import PAPER_WIKIPEDIA_LANGUAGES

WIKIMEDIA_DUMPS = "https://dumps.wikimedia.org"
LANG_DBNAME = {"be-tarask": "be_x_old", "nan": "zh_min_nan", "yue": "zh_yue", "lzh": "zh_classical"}


def dbname_for(lang: str) -> str:
    return f"{LANG_DBNAME.get(lang, lang.replace('-', '_'))}wiki"


def dump_file_names(db: str, date: str, multistream: bool = True) -> list[str]:
    if multistream:
        return [
            f"{db}-{date}-pages-articles-multistream.xml.bz2",
            f"{db}-{date}-pages-articles-multistream-index.txt.bz2",
        ]
    return [f"{db}-{date}-pages-articles.xml.bz2"]


def _checksums(url_dir: str, db: str, date: str) -> tuple[dict[str, str], str]:
    errors = []
    for algo in ("sha1", "md5"):
        try:
            text = fetch_bytes(f"{url_dir}/{db}-{date}-{algo}sums.txt").decode("utf-8", "replace")
            sums = parse_checksums(text)
            if sums:
                return sums, algo
        except UserError as exc:
            errors.append(str(exc))
    raise UserError(f"no checksum file for {db} {date}: {'; '.join(errors)}")


@register_download("wikipedia")
@dataclass(frozen=True, kw_only=True)
class WikipediaDownloadSettings:
    """`llama-data download wikipedia`: every setting's default and help."""

    command_help: ClassVar[str] = (
        "Wikimedia articles dumps, verified with the published sha1sums (md5sums as fallback)."
    )

    languages: list[str] = setting(
        default_factory=lambda: list(PAPER_WIKIPEDIA_LANGUAGES),
        sep=",",
        help="Languages to fetch, comma-separated.",
    )
    date: str = setting(required=True, help="Dump date YYYYMMDD (or 'latest').")
    output: str = setting(required=True, short="-o", help="Folder; each wiki goes to OUTPUT/<db>/.")
    base_url: str = setting(
        WIKIMEDIA_DUMPS, help="Dump server (a mirror, or a local server for tests)."
    )
    multistream: bool = setting(
        True,
        flag="--no-multistream",
        help="Fetch pages-articles.xml.bz2 (one stream) instead of the multistream dump + index.",
    )

    def validate(self, where: str) -> None:
        if not re.fullmatch(r"\d{8}|latest", self.date):
            raise ConfigError(f"{where}.date: expected YYYYMMDD or 'latest', got {self.date!r}")
        if not self.languages:
            raise ConfigError(
                f"{where}.languages: name the languages to download ('all' is not a list)"
            )
        bad = [v for v in self.languages if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]+)*", v)]
        if bad:
            raise ConfigError(f"{where}.languages: {bad[0]!r} is not a language code like 'en'")

    def run(self, echo: Callable[[str], None]) -> None:
        download_wikipedia(
            self.languages, self.date, Path(self.output), self.base_url, self.multistream, echo
        )


def download_wikipedia(
    languages: Sequence[str],
    date: str,
    output: Path,
    base_url: str = WIKIMEDIA_DUMPS,
    multistream: bool = True,
    echo: Callable[[str], None] = print,
) -> list[Downloaded]:
    """Fetch each language's articles dump into `output/<db>/`, verified and resumable."""
    got: list[Downloaded] = []
    base = base_url.rstrip("/")
    for lang in languages:
        db = dbname_for(lang)
        url_dir = f"{base}/{db}/{date}"
        sums, algo = _checksums(url_dir, db, date)
        for name in dump_file_names(db, date, multistream):
            if name not in sums:
                raise UserError(f"{url_dir}: {name} is not in the {algo}sums (dump not finished?)")
            d = download(
                f"{url_dir}/{name}", Path(output) / db / name, checksum=sums[name], algo=algo
            )
            echo(f"{'have' if d.skipped else 'got '} {d.path} ({d.bytes:,} bytes, {algo} ok)")
            got.append(d)
    write_manifest(
        Path(output),
        got,
        {"source": "wikipedia", "date": date, "base_url": base, "languages": list(languages)},
    )
    return got
