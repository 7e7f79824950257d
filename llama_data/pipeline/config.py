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


@register_source("commoncrawl")
@dataclass(frozen=True)
class CommonCrawlConfig(SourceConfig):
    """[sources.commoncrawl]: WET/WARC files through the CCNet method.

    The perplexity model comes from `lm` (a folder written by `llama-data train-lm`) or, when
    unset, is trained in the build from the output of the source named by `lm_from` (Wikipedia,
    as in CCNet), one model per language in `languages`.
    """

    languages: list[str] = field(default_factory=lambda: ["en"])
    lm: str | None = path_field(None)
    lm_from: str = "wikipedia"
    lm_vocab_size: int = 65536
    keep: list[str] = field(default_factory=lambda: ["head", "middle"])
    min_length: int = 300
    min_lang_score: float = 0.5
    cutoffs: str | None = path_field(None)
    dedup_group_files: int | None = None

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
