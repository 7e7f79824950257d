"""The build config (TOML): one section per source plus build-wide sections, validated up front.

Every section is a frozen dataclass; `parse_section` checks keys and types against it, so a typo
or a wrong type fails before any work starts with a message naming the key
(`sources.wikipedia.langauges: unknown key`). Sources and build-wide sections register themselves
in `SOURCE_CONFIGS` / `SECTION_CONFIGS`; relative paths are resolved against the config's folder.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from llama_data.pipeline.errors import ConfigError

# The mixture sources of the paper's Table 1.
SOURCE_NAMES = ("commoncrawl", "c4", "github", "wikipedia", "books", "arxiv", "stackexchange")
RUNNER_NAMES = ("DirectRunner", "DataflowRunner", "SparkRunner", "FlinkRunner", "PrismRunner")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")

T = TypeVar("T")


def path_field(default: Any = dataclasses.MISSING, **kw: Any) -> Any:
    """A field holding a path (or list of paths/globs), resolved against the config's folder."""
    if default is dataclasses.MISSING and "default_factory" not in kw:
        return field(metadata={"path": True}, **kw)
    return field(default=default, metadata={"path": True}, **kw)


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str,  # noqa: A002 - click's word
    flag: str | None = None,
    path: bool = False,
    sep: str | None = None,
    required: bool = False,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A documented setting: its default lives here and nowhere else; `help` is what the source's
    command shows, under `flag` (default `--<name-with-dashes>`; `--no-x` sets a True default to
    False). A list is given as one `sep`-separated value, or by repeating the flag. `required`
    makes the command ask for it although a config may leave it out."""
    meta = {"help": help, "flag": flag, "path": path, "sep": sep, "required": required}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def default_of(cls: type, name: str) -> Any:
    """The default of setting `name` of config dataclass `cls` (for code that takes the same
    setting as a keyword: it restates no value)."""
    return field_default(next(f for f in dataclasses.fields(cls) if f.name == name))


def documented_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of a config dataclass that carry help (the options of its command)."""
    return [f for f in dataclasses.fields(cls) if f.init and "help" in f.metadata]


@dataclass(frozen=True)
class BuildSection:
    """[build]: how to run. CLI flags (--runner, --workers, --output) override these."""

    runner: str = "DirectRunner"
    workers: int = 1
    output: str | None = path_field(None)
    pipeline_args: list[str] = field(default_factory=list)

    def validate(self, where: str) -> None:
        if self.runner not in RUNNER_NAMES:
            raise ConfigError(
                f"{where}.runner: {self.runner!r} is not one of {', '.join(RUNNER_NAMES)}"
            )
        if self.workers < 1:
            raise ConfigError(f"{where}.workers: must be >= 1, got {self.workers}")


@dataclass(frozen=True)
class SourceConfig:
    """[sources.<name>]: inputs (globs, local or gs:// s3:// http(s)://) and the input format.

    `format = "documents"` reads JSON lines / Parquet documents a user already has;
    `format = "native"` reads the publisher's files (dumps, WET, tars) with the source's reader.
    """

    inputs: list[str] = path_field()
    format: str = "native"
    dedup: bool = True

    def validate(self, where: str) -> None:
        if not self.inputs:
            raise ConfigError(f"{where}.inputs: must name at least one file or glob")
        if self.format not in ("native", "documents"):
            raise ConfigError(
                f"{where}.format: must be 'native' or 'documents', got {self.format!r}"
            )


@dataclass(frozen=True)
class DocumentsSourceConfig(SourceConfig):
    """A source given as documents (any source name, e.g. your own corpus for the mixture)."""

    format: str = "documents"


# name -> config class of that source's native format; each source module registers its own.
SOURCE_CONFIGS: dict[str, type[SourceConfig]] = {}
# top-level section name -> dataclass (tokenizer, mixture, models, ...).
SECTION_CONFIGS: dict[str, type] = {}


def register_source(name: str):
    def deco(cls: type[SourceConfig]) -> type[SourceConfig]:
        SOURCE_CONFIGS[name] = cls
        return cls

    return deco


@register_source("arxiv")
@dataclass(frozen=True)
class ArxivSourceConfig(SourceConfig):
    """[sources.arxiv]: bulk tars / per-paper archives / folders; limits of the LaTeX cleaning."""

    max_input_depth: int = setting(16, help="Nesting limit of \\input/\\include/\\subfile.")
    max_macro_depth: int = setting(
        32, help="Nesting limit of user macro expansion (a recursive \\def stops here)."
    )
    max_paper_mb: int = setting(
        256, help="Decompressed size limit of one paper (gzip bombs are cut here)."
    )
    requester_pays: bool = setting(
        False,
        help="Send RequestPayer=requester on S3 reads (needed for s3://arxiv/src/; you pay the "
        "transfer).",
    )

    def validate(self, where: str) -> None:
        super().validate(where)
        for key in ("max_input_depth", "max_macro_depth", "max_paper_mb"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key}: must be >= 1")


@register_source("books")
@dataclass(frozen=True)
class BooksSourceConfig(SourceConfig):
    """[sources.books]: Gutenberg .txt / Books3 .jsonl.zst; `dedup` switches book near-dedup."""

    dedup: bool = setting(True, help="Strip licences and drop empty books only.", flag="--no-dedup")
    ngram: int = setting(5, help="Words per shingle.")
    num_perm: int = setting(128, help="MinHash permutations.")
    threshold: float = setting(
        0.9, help="Verified shingle overlap |A∩B|/min(|A|,|B|) above which a book is a duplicate."
    )
    lsh_threshold: float = setting(
        0.6,
        help="Containment the LSH Ensemble bands are tuned for (candidates only; every pair is "
        "verified).",
    )

    def validate(self, where: str) -> None:
        super().validate(where)
        if not 0 < self.threshold <= 1:
            raise ConfigError(f"{where}.threshold: must be in (0, 1], got {self.threshold}")
        if not 0 < self.lsh_threshold <= 1:
            raise ConfigError(f"{where}.lsh_threshold: must be in (0, 1], got {self.lsh_threshold}")
        if self.ngram < 1 or self.num_perm < 16:
            raise ConfigError(f"{where}: ngram must be >= 1 and num_perm >= 16")


def register_section(name: str):
    def deco(cls: type) -> type:
        SECTION_CONFIGS[name] = cls
        return cls

    return deco


@dataclass(frozen=True)
class BuildConfig:
    path: Path | None
    build: BuildSection
    sources: dict[str, SourceConfig]
    sections: dict[str, Any] = field(default_factory=dict)

    def section(self, name: str) -> Any:
        """A build-wide section, or its defaults when the file omits it."""
        if name in self.sections:
            return self.sections[name]
        return SECTION_CONFIGS[name]()


# ---------------------------------------------------------------------------------------------
# Parsing


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _check_type(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if tp is Any:
        return value
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        return [_check_type(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        kt, vt = typing.get_args(tp) or (Any, Any)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {type(value).__name__} {value!r}")
        return {
            _check_type(k, kt, where): _check_type(v, vt, f"{where}.{k}") for k, v in value.items()
        }
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
        return value
    return value


def _resolve(value: Any, base: Path | None) -> Any:
    if base is None or value is None:
        return value
    if isinstance(value, list):
        return [_resolve(v, base) for v in value]
    if (
        isinstance(value, str)
        and not _URL.match(value)
        and not Path(value).expanduser().is_absolute()
    ):
        return str((base / Path(value).expanduser()).resolve())
    if isinstance(value, str):
        return str(Path(value).expanduser()) if not _URL.match(value) else value
    return value


def parse_section(cls: type[T], mapping: Any, where: str, base: Path | None = None) -> T:
    """Build dataclass `cls` from a TOML table, naming the offending key on any error."""
    if not isinstance(mapping, dict):
        raise ConfigError(f"{where}: expected a table, got {type(mapping).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}.{unknown[0]}: unknown key (known keys: {', '.join(sorted(fields))})"
        )
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        key = f"{where}.{name}"
        if name not in mapping:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{key}: missing required key")
            continue
        value = _check_type(mapping[name], hints[name], key)
        if f.metadata.get("path"):
            value = _resolve(value, base)
        kwargs[name] = value
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate(where)
    return obj


def parse_config(data: dict[str, Any], path: Path | None = None) -> BuildConfig:
    base = path.parent.resolve() if path is not None else None
    known = {"build", "sources", *SECTION_CONFIGS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section (known: {', '.join(sorted(known))})")
    build = parse_section(BuildSection, data.get("build", {}), "build", base)
    raw_sources = data.get("sources", {})
    if not isinstance(raw_sources, dict):
        raise ConfigError("sources: expected a table of [sources.<name>] sections")
    sources: dict[str, SourceConfig] = {}
    for name, table in raw_sources.items():
        where = f"sources.{name}"
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
            raise ConfigError(f"{where}: source names are lowercase letters, digits, '-' and '_'")
        fmt = table.get("format", "native") if isinstance(table, dict) else "native"
        if fmt == "documents":
            cls: type[SourceConfig] = DocumentsSourceConfig
        elif name in SOURCE_CONFIGS:
            cls = SOURCE_CONFIGS[name]
        elif name in SOURCE_NAMES:
            raise ConfigError(
                f'{where}.format: the native {name} reader is not available; use format = "documents"'
            )
        else:
            raise ConfigError(
                f"{where}: unknown source (native sources: {', '.join(SOURCE_NAMES)}); "
                'a source of your own needs format = "documents"'
            )
        sources[name] = parse_section(cls, table, where, base)
    if not sources:
        raise ConfigError(
            "sources: the config names no source ([sources.<name>] with inputs = [...])"
        )
    sections = {
        name: parse_section(cls, data[name], name, base)
        for name, cls in SECTION_CONFIGS.items()
        if name in data
    }
    return BuildConfig(path=path, build=build, sources=sources, sections=sections)


def load_config(path: str | Path) -> BuildConfig:
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {str(path)!r} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(data, path)


def _github_allowed() -> list[str]:
    from llama_data.pipeline.github.licenses import ALLOWED_LICENSES

    return sorted(ALLOWED_LICENSES)


@register_source("github")
@dataclass(frozen=True)
class GithubSourceConfig(SourceConfig):
    """[sources.github]: BigQuery `github_repos` export rows (`inputs`, JSON lines or Parquet)
    joined with licence table rows (`licenses`), and/or local git checkouts (`repos`), and/or
    the BigQuery tables themselves (`bigquery = true`, needs llama-data[gcp] and credentials).
    Thresholds are the LLaMA/RedPajama ones; see docs/github.md."""

    inputs: list[str] = path_field(default_factory=list)
    licenses: list[str] = setting(
        path=True,
        default_factory=list,
        help="Export of the github_repos.licenses table (repo_name, license); repeatable. "
        "Without it a `license` column on the rows is used.",
    )
    repos: str | None = setting(
        None,
        path=True,
        help="Folder of local git checkouts (DIR/name or DIR/owner/name); licences are "
        "classified from each checkout's LICENSE/COPYING files.",
    )
    bigquery: bool = setting(
        False,
        help="Read the BigQuery tables directly (needs llama-data[gcp], credentials, and "
        "--project/--temp_location after `--`).",
    )
    bigquery_dataset: str = setting(
        "bigquery-public-data.github_repos",
        flag="--bq-dataset",
        help="project.dataset holding files/contents/licenses.",
    )
    bigquery_licensed_only: bool = setting(
        False,
        flag="--bq-licensed-only",
        help="Push the licence filter into the query (scans less, but other licences go "
        "uncounted).",
    )
    bigquery_skip_binary: bool = setting(
        False, flag="--bq-skip-binary", help="Leave binary blobs out of the query."
    )
    bigquery_limit: int | None = setting(None, flag="--bq-limit", help="LIMIT, for trials.")
    allowed_licenses: list[str] = setting(
        default_factory=_github_allowed,
        flag="--allow-license",
        help="Licence keys to keep (default: apache-2.0, bsd-2-clause, bsd-3-clause, mit).",
    )
    max_row_bytes: int = setting(
        8 * 1024 * 1024,
        help="Rows/files larger than this are not parsed (rejected too_large or dead-lettered).",
    )
    max_file_bytes: int = setting(
        1024 * 1024, help="Files larger than this (UTF-8 bytes) are rejected too_large."
    )
    max_line_length: int = setting(1000, help="Longest line a kept file may have.")
    max_mean_line_length: float = setting(
        100.0, help="Largest mean line length (newlines counted, as RedPajama-v1)."
    )
    min_alnum_fraction: float = setting(0.25, help="Smallest alphanumeric fraction.")
    min_alpha_per_token: float = setting(1.5, help="Fewest alphabetic characters per token.")
    dedup: bool = setting(True, help="Skip the exact content dedup.", flag="--no-dedup")

    def validate(self, where: str) -> None:
        if not (self.inputs or self.repos or self.bigquery):
            raise ConfigError(f"{where}: give inputs (export rows), repos (a folder) or bigquery")
        if self.format != "native":
            raise ConfigError(f"{where}.format: must be 'native' here, got {self.format!r}")
        for key in ("max_row_bytes", "max_file_bytes", "max_line_length"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{where}.{key}: must be > 0, got {getattr(self, key)}")
        for key in ("min_alnum_fraction",):
            if not 0 <= getattr(self, key) <= 1:
                raise ConfigError(f"{where}.{key}: must be in [0, 1], got {getattr(self, key)}")
        if self.bigquery_limit is not None and self.bigquery_limit < 1:
            raise ConfigError(f"{where}.bigquery_limit: must be >= 1")


# ---------------------------------------------------------------------------------------------
# Wikipedia and Stack Exchange (issue 3)

# The 20 languages of LLaMA's Wikipedia (Touvron et al. 2023, §2.1).
PAPER_WIKIPEDIA_LANGUAGES: tuple[str, ...] = (
    "bg", "ca", "cs", "da", "de", "en", "es", "fr", "hr", "hu",
    "it", "nl", "pl", "pt", "ro", "ru", "sl", "sr", "sv", "uk",
)  # fmt: skip


@register_source("wikipedia")
@dataclass(frozen=True)
class WikipediaSourceConfig(SourceConfig):
    """[sources.wikipedia]: MediaWiki XML dumps (`*-pages-articles*.xml.bz2`, multistream, .xml).

    `languages` (from each dump's siteinfo) defaults to the paper's 20; `[]` keeps all.
    `split_mb` is the byte size of the ranges a multistream dump is cut into for parallel reading;
    `indexes` names multistream index files kept elsewhere than beside their dumps.
    """

    languages: list[str] = setting(
        default_factory=lambda: list(PAPER_WIKIPEDIA_LANGUAGES),
        sep=",",
        help="Wikipedia languages to keep (from each dump's siteinfo), comma-separated, or 'all'.",
    )
    split_mb: int = setting(
        64,
        help="Size of the byte ranges a multistream dump or plain .xml is cut into for parallel "
        "reading.",
    )
    use_index: bool = setting(
        True,
        flag="--no-index",
        help="Find multistream offsets by scanning the dump even when its -index.txt.bz2 is "
        "beside it.",
    )
    indexes: list[str] = setting(
        path=True,
        default_factory=list,
        flag="--index",
        help="A multistream -index.txt.bz2 kept elsewhere than beside its dump (repeatable); by "
        "default the index is looked for next to each dump.",
    )
    min_chars: int = setting(1, help="Articles shorter than this (characters) are rejected.")
    dedup: bool = False

    def validate(self, where: str) -> None:
        super().validate(where)
        for lang in self.languages:
            if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]+)*", lang):
                raise ConfigError(f"{where}.languages: {lang!r} is not a language code like 'en'")
        if self.split_mb < 1:
            raise ConfigError(f"{where}.split_mb: must be >= 1, got {self.split_mb}")


@register_source("stackexchange")
@dataclass(frozen=True)
class StackExchangeSourceConfig(SourceConfig):
    """[sources.stackexchange]: per-site `.7z` archives or extracted `<site>/Posts.xml`.

    `top_sites` keeps the N largest sites by post count (0 = all); meta sites are skipped unless
    `include_meta`; an extracted Posts.xml is read in `split_mb` byte ranges.
    """

    top_sites: int = setting(
        28,
        help="Keep the N largest sites by post count, counted from the inputs (0 = all sites).",
    )
    include_meta: bool = setting(False, help="Also read meta sites (skipped by default).")
    split_mb: int = setting(
        64, help="Size of the byte ranges an extracted Posts.xml is cut into for parallel reading."
    )
    dedup: bool = False

    def validate(self, where: str) -> None:
        super().validate(where)
        if self.top_sites < 0:
            raise ConfigError(f"{where}.top_sites: must be >= 0, got {self.top_sites}")
        if self.split_mb < 1:
            raise ConfigError(f"{where}.split_mb: must be >= 1, got {self.split_mb}")


# ---------------------------------------------------------------------------------------------
# C4 and the Wikipedia-reference classifier (issue 5)


@register_source("c4")
@dataclass(frozen=True)
class C4SourceConfig(SourceConfig):
    """[sources.c4]: the public C4 release (`c4-*.json.gz`), or `from_cc = true` to re-derive C4
    from CommonCrawl WET/WARC files with C4's rules (defaults are the reference
    implementation's, TFDS `c4_utils`).

    `badwords` is a word-list file (default: the shipped LDNOOBW English list, CC BY 4.0);
    `lang_model` is `langdetect` (C4's) or `lid176`; `lang_threshold` the minimum English
    probability (default: 0.99 for langdetect, the calibrated `LID176_THRESHOLD` for lid176);
    `text_dedup` is `lines` (the reference's), `spans` (the paper's wording) or `none`.
    """

    from_cc: bool = setting(
        False,
        help="Re-derive C4 from CommonCrawl WET/WARC with C4's rules instead of reading the "
        "release.",
    )
    badwords: str | None = setting(
        None,
        path=True,
        help="Bad-words list (one a line) for --from-cc. Default: the shipped LDNOOBW English "
        "list (CC BY 4.0).",
    )
    lang_model: str = setting(
        "langdetect",
        help="Language id for --from-cc: langdetect (C4's, seeded) or lid176 (fastText).",
    )
    lang_threshold: float | None = setting(
        None,
        help="Minimum English probability for --from-cc. Default: 0.99 with langdetect (C4's), "
        "0.8 with lid176 (calibrated on the Common Crawl sample, docs/c4.md).",
    )
    min_words_per_line: int = setting(5, help="Fewest words a kept line has (--from-cc).")
    min_sentences: int = setting(3, help="Fewest sentences a kept page has (--from-cc).")
    max_page_length: int = setting(
        190_000, help="Pages longer than this (characters) are rejected (--from-cc)."
    )
    dedup_urls: bool = setting(
        True, flag="--no-url-dedup", help="Keep every page of a URL (--from-cc)."
    )
    text_dedup: str = setting(
        "lines",
        help="Dedup across pages for --from-cc: lines (repeated lines, C4's code), spans "
        "(three-sentence spans, the paper's wording) or none.",
    )
    dedup: bool = False

    def validate(self, where: str) -> None:
        super().validate(where)
        if self.lang_threshold is not None and not 0.0 <= self.lang_threshold <= 1.0:
            raise ConfigError(
                f"{where}.lang_threshold: must be in [0, 1], got {self.lang_threshold}"
            )
        if self.lang_model not in ("langdetect", "lid176"):
            raise ConfigError(
                f"{where}.lang_model: must be 'langdetect' or 'lid176', got {self.lang_model!r}"
            )
        if self.text_dedup not in ("lines", "spans", "none"):
            raise ConfigError(
                f"{where}.text_dedup: must be 'lines', 'spans' or 'none', got {self.text_dedup!r}"
            )
        if self.max_page_length < 1:
            raise ConfigError(f"{where}.max_page_length: must be >= 1")
        if self.min_words_per_line < 1 or self.min_sentences < 1:
            raise ConfigError(f"{where}: min_words_per_line and min_sentences must be >= 1")
        if (
            self.badwords is not None
            and not _URL.match(self.badwords)
            and not Path(self.badwords).is_file()
        ):
            raise ConfigError(f"{where}.badwords: no such file {self.badwords!r}")


@register_section("wikiref")
@dataclass(frozen=True)
class WikirefSection:
    """[wikiref]: the Wikipedia-reference classifier, trained and applied after `source`.

    With `model` set, that model (a train-wikiref `wikiref-model/` folder or a fastText .bin) is
    used. Otherwise one is trained: cited URLs from `wikipedia` (default: the build's
    `[sources.wikipedia]` dumps) against documents from `cc` (default: the `source` stage's
    output), plus fetched reference pages from `refs_warc`. Documents of `source` scoring under
    `threshold` are rejected as `not_wikiref` by the `<source>-wikiref` stage.
    """

    source: str = "commoncrawl"
    model: str | None = path_field(None)
    wikipedia: list[str] = path_field(default_factory=list)
    cc: list[str] = path_field(default_factory=list)
    refs_warc: list[str] = path_field(default_factory=list)
    threshold: float = setting(0.25, help="Threshold the card reports (and the filter applies).")
    seed: int = setting(0, help="Seed of the negative sample, holdout split and training.")
    holdout: float = setting(0.1, help="Held-out fraction.")
    extractor: str = setting(
        "scan",
        help="Citation extractor: scan (a fast regex scan) or parse (a full mwparserfromhell "
        "parse, ~15x slower).",
    )
    lr: float = setting(0.5, help="fastText learning rate.")
    epoch: int = setting(10, help="fastText epochs.")
    dim: int = setting(32, help="fastText vector size.")
    word_ngrams: int = setting(2, help="fastText wordNgrams.")
    min_count: int = setting(1, help="fastText minCount.")
    bucket: int = setting(
        1_000_000, help="fastText hash buckets (model size = bucket * dim * 4 bytes)."
    )
    threads: int = setting(
        1, help="fastText threads (1 is bit-reproducible; more is faster but not)."
    )

    def validate(self, where: str) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"{where}.threshold: must be in [0, 1], got {self.threshold}")
        if self.extractor not in ("scan", "parse"):
            raise ConfigError(f"{where}.extractor: 'scan' or 'parse', got {self.extractor!r}")
        if not 0.0 < self.holdout < 1.0:
            raise ConfigError(f"{where}.holdout: must be in (0, 1), got {self.holdout}")
        for key in ("epoch", "dim", "word_ngrams", "min_count", "bucket", "threads"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key}: must be >= 1, got {getattr(self, key)}")


@register_source("commoncrawl")
@dataclass(frozen=True)
class CommonCrawlConfig(SourceConfig):
    """[sources.commoncrawl]: WET/WARC files through the CCNet method.

    The perplexity model comes from `lm` (a folder written by `llama-data train-lm`) or, when
    unset, is trained in the build from the output of the source named by `lm_from` (Wikipedia,
    as in CCNet), one model per language in `languages`.
    """

    languages: list[str] = setting(
        default_factory=lambda: ["en"],
        sep=",",
        help="Languages to keep, comma-separated (each needs a perplexity model).",
    )
    lm: str | None = setting(
        None,
        path=True,
        required=True,
        help="Folder of perplexity models (<lang>.sp.model + <lang>.arpa.bin: train-lm's, or "
        "cc_net's published lm_sp/).",
    )
    lm_from: str = "wikipedia"
    lm_vocab_size: int = 65536
    keep: list[str] = setting(
        default_factory=lambda: ["head", "middle"], sep=",", help="Perplexity buckets to keep."
    )
    min_length: int = setting(300, help="Minimum characters after dedup.")
    min_lang_score: float = setting(0.5, help="Minimum fastText language score.")
    cutoffs: str | None = setting(
        None,
        path=True,
        help="Perplexity cutoff file (JSON {lang: [p30, p60]} or cc_net cutoff.csv); default: "
        "computed from the input.",
    )
    dedup_group_files: int | None = setting(
        None, help="Line dedup within groups of N input files (default: the whole input)."
    )

    def validate(self, where: str) -> None:
        super().validate(where)
        if not self.languages:
            raise ConfigError(f'{where}.languages: name at least one language, e.g. ["en"]')
        bad = [b for b in self.keep if b not in ("head", "middle", "tail")]
        if bad or not self.keep:
            raise ConfigError(f"{where}.keep: buckets are head, middle, tail; got {self.keep}")
        if not 0.0 <= self.min_lang_score <= 1.0:
            raise ConfigError(f"{where}.min_lang_score: must be within [0, 1]")
        if self.min_length < 0:
            raise ConfigError(f"{where}.min_length: must be >= 0")
        if self.dedup_group_files is not None and self.dedup_group_files < 1:
            raise ConfigError(f"{where}.dedup_group_files: must be >= 1 (or left out)")
        if self.lm_vocab_size < 100:
            raise ConfigError(f"{where}.lm_vocab_size: must be >= 100")


# ---------------------------------------------------------------------------------------------
# Build-wide sections of the token stages (tokenizer, tokenize, mix)


@register_section("tokenizer")
@dataclass(frozen=True)
class TokenizerSection:
    """[tokenizer]: SentencePiece BPE (LLaMA settings) trained on a mixture-weighted sample."""

    vocab_size: int = setting(32000, help="SentencePiece BPE vocabulary size.")
    sample_bytes: int = setting(
        100_000_000, help="Size of the training sample, split over sources by weight."
    )
    seed: int = setting(0, help="Seed of the training sample.")
    num_threads: int = setting(
        4,
        flag="--threads",
        help="Trainer threads (recorded in the model, so fixed for reproducibility).",
    )

    def validate(self, where: str) -> None:
        if self.vocab_size < 260:
            raise ConfigError(f"{where}.vocab_size: must be >= 260 (256 bytes + specials)")
        if self.sample_bytes < 1:
            raise ConfigError(f"{where}.sample_bytes: must be >= 1")
        if self.num_threads < 1:
            raise ConfigError(f"{where}.num_threads: must be >= 1")


@register_section("mixture")
@dataclass(frozen=True)
class MixtureSection:
    """[mixture]: weights (empty = Table 1), max epochs per source, size and shard layout.

    `weights_file` (JSON/TOML) replaces the inline `weights` table; `tokens` fixes the total
    (default: the most tokens for which no source exceeds its max epochs).
    """

    weights: dict[str, float] = field(default_factory=dict)
    weights_file: str | None = path_field(None)
    max_epochs: dict[str, float] = field(default_factory=dict)
    tokens: int | None = setting(
        None,
        help="Total training tokens (default: the most for which no source exceeds its max "
        "epochs).",
    )
    context_length: int = setting(2048, help="Tokens per training sample (rows hold one more).")
    renormalize: bool = setting(
        False,
        help="Allow missing/empty sources: spread their weight over the others (the manifest "
        "records it).",
    )
    seed: int = setting(0, help="Seed of the per-epoch document order.")
    shard_bytes: int = setting(256 * 1024 * 1024, help="Target size of one shard file.")

    def validate(self, where: str) -> None:
        if self.weights and self.weights_file:
            raise ConfigError(f"{where}.weights_file: give weights or weights_file, not both")
        for key, table in (("weights", self.weights), ("max_epochs", self.max_epochs)):
            bad = [k for k, v in table.items() if v < 0]
            if bad:
                raise ConfigError(f"{where}.{key}.{bad[0]}: must be >= 0")
        if self.context_length < 1:
            raise ConfigError(f"{where}.context_length: must be >= 1")
        if self.tokens is not None and self.tokens < self.context_length:
            raise ConfigError(f"{where}.tokens: less than one row of context_length tokens")
        if self.shard_bytes < 1:
            raise ConfigError(f"{where}.shard_bytes: must be >= 1")


# ---------------------------------------------------------------------------------------------
# Reference


def _toml_value(value: Any) -> str:
    if value is None:
        return '""  # unset'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def reference_toml() -> str:
    """Every section and key with its default, as TOML: the README's config reference."""
    sections: list[tuple[str, type]] = [("build", BuildSection)]
    order = {n: i for i, n in enumerate(SOURCE_NAMES)}
    native = sorted(SOURCE_CONFIGS.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
    sections += [(f"sources.{n}", cls) for n, cls in native]
    sections += list(SECTION_CONFIGS.items())
    out: list[str] = []
    for name, cls in sections:
        out.append(f"[{name}]")
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            value = field_default(f)
            text = "[]  # required" if value is dataclasses.MISSING else _toml_value(value)
            out.append(f"{f.name} = {text}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
