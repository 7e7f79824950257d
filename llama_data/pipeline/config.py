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

from llama_data.pipeline.errors import ConfigError, UserError

# The mixture sources of the paper's Table 1.
SOURCE_NAMES = ("commoncrawl", "c4", "github", "wikipedia", "books", "arxiv", "stackexchange")
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
# Workers beyond these are a typo, not a plan: local runners start one process each.
MAX_LOCAL_WORKERS = 1024
MAX_WORKERS = 100_000
LOCAL_RUNNERS = ("DirectRunner", "PrismRunner")
RUNNER_NAMES = (
    "DirectRunner",
    "DataflowRunner",
    "PortableRunner",
    "SparkRunner",
    "FlinkRunner",
    "PrismRunner",
)
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_url(value: str) -> bool:
    """`scheme://...` (gs://, s3://, http(s)://): not resolved against the config's folder."""
    return bool(_URL.match(value))


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
    short: str | None = None,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A documented setting: its default lives here and nowhere else; `help` is what the source's
    command shows, under `flag` (default `--<name-with-dashes>`, plus `short` such as `-o`;
    `--no-x` sets a True default to False). A list is given as one `sep`-separated value, or by
    repeating the flag. `required` makes the command ask for it although a config may leave it
    out."""
    meta = {
        "help": help,
        "flag": flag,
        "path": path,
        "sep": sep,
        "required": required,
        "short": short,
    }
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


def flag_of(f: dataclasses.Field) -> str:
    """The command-line flag of a setting."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def base_type(tp: Any) -> Any:
    """`X | None` -> X."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if typing.get_origin(tp) in (types.UnionType, typing.Union) else tp


def config_from_values(cls: type[T], values: dict[str, Any], **fixed: Any) -> T:
    """The typed config of a command's option values (validated; errors name the flag, so a
    command and a config file share one set of rules). A `sep` list comes as one string
    (`all` is the empty list); `values` loses the keys it used."""
    hints = typing.get_type_hints(cls)
    kwargs = dict(fixed)
    for f in documented_fields(cls):
        value = values.pop(f.name)
        if typing.get_origin(base_type(hints[f.name])) is list:
            sep = f.metadata["sep"]
            if sep:
                words = [] if value.strip().lower() == "all" else value.split(sep)
                value = [v.strip() for v in words if v.strip()]
            else:
                value = list(value) if value else field_default(f)
        kwargs[f.name] = value
    cfg = cls(**kwargs)
    if hasattr(cfg, "validate"):
        try:
            cfg.validate("<option>")
        except ConfigError as exc:
            flags = {f.name: flag_of(f) for f in documented_fields(cls)}
            message = re.sub(
                r"<option>\.(\w+)", lambda m: flags.get(m.group(1), "--" + m.group(1)), str(exc)
            )
            raise UserError(message.replace("<option>", "options")) from None
    return cfg


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
        top = MAX_LOCAL_WORKERS if self.runner in LOCAL_RUNNERS else MAX_WORKERS
        if not 1 <= self.workers <= top:
            raise ConfigError(
                f"{where}.workers: must be in [1, {top}] for {self.runner}, got {self.workers}"
            )


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


# name -> config class of that source's native format; each source package registers its own in
# its `config.py` (found by `source_configs()`).
SOURCE_CONFIGS: dict[str, type[SourceConfig]] = {}
# top-level section name -> dataclass (tokenizer, mixture, models, ...).
SECTION_CONFIGS: dict[str, type] = {}
# `llama-data download <name>` -> its settings dataclass (with `run(echo)`), registered by the
# source's `download.py`.
DOWNLOAD_CONFIGS: dict[str, type] = {}


def _import_each(module: str) -> None:
    """Import `pipeline/<package>/<module>.py` of every package that has one (they register
    themselves), so a new source needs no line in this module."""
    import importlib
    import importlib.util
    import pkgutil

    import llama_data.pipeline as pipeline

    for info in pkgutil.iter_modules(pipeline.__path__):
        name = f"{pipeline.__name__}.{info.name}.{module}"
        if info.ispkg and importlib.util.find_spec(name) is not None:
            importlib.import_module(name)


def source_configs() -> dict[str, type[SourceConfig]]:
    """Every native source's config class: each `pipeline/<source>/config.py` registers its own."""
    _import_each("config")
    return SOURCE_CONFIGS


def register_source(name: str):
    def deco(cls: type[SourceConfig]) -> type[SourceConfig]:
        SOURCE_CONFIGS[name] = cls
        return cls

    return deco


def download_configs() -> dict[str, type]:
    """Every publisher download's settings: each `pipeline/<source>/download.py` registers its
    own."""
    _import_each("download")
    return DOWNLOAD_CONFIGS


def register_download(name: str):
    def deco(cls: type) -> type:
        DOWNLOAD_CONFIGS[name] = cls
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
        if not INT64_MIN <= value <= INT64_MAX:  # TOML's integers are 64-bit; tomllib's are not
            raise ConfigError(f"{where}: {value} does not fit in a 64-bit integer")
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
        elif name in source_configs():
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
    except UnicodeDecodeError as exc:  # binary, or another encoding than UTF-8
        raise ConfigError(
            f"{path}: not a UTF-8 text file (byte {exc.start}: {exc.reason}); a config is TOML"
        ) from exc
    except OSError as exc:  # a folder, no permission, an I/O error
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return parse_config(data, path)


# ---------------------------------------------------------------------------------------------
# The Wikipedia-reference classifier


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
    native = sorted(source_configs().items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
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
