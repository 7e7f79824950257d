"""The GitHub stage: files (export rows, BigQuery or git checkouts) -> licence join -> steps -> dedup.

Composition only; the logic is in `llama_data.pipeline.github`. Neither global step shuffles all
files. The licence join gives every worker a `LicenseTable` (~9 bytes a repository: 30 MB for all
3.3 million of BigQuery's licensed repositories) as a side input, built from the licence rows
alone, and files look their repository up as they are read (so the runner holds back file
splits, not files, until the table is ready). Exact dedup (`ExactDedup`, keyed by
a 16-byte content hash) shuffles the keys first and then only the files whose content occurs more
than once; the copy with the smallest (repo_name, path) is kept.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import apache_beam as beam
from apache_beam.metrics import Metrics

from llama_data.beam_jobs import fs
from llama_data.beam_jobs.dedup import ExactDedup
from llama_data.beam_jobs.harness import (
    ApplySteps,
    ReadDocuments,
    StageContext,
    StageOutputs,
    StageSpec,
)
from llama_data.beam_jobs.plan import BuildContext, BuildStep, one_step
from llama_data.pipeline.document import DeadLetter, Document
from llama_data.pipeline.errors import UserError
from llama_data.pipeline.github.bigquery import BigQuerySource, files_query, licenses_query
from llama_data.pipeline.github.config import GithubSourceConfig
from llama_data.pipeline.github.licenses import (
    ALLOWED_LICENSES,
    LicenseTable,
    LicenseTableBuilder,
    normalize_license_key,
    table_license,
)
from llama_data.pipeline.github.quality import (
    DEFAULT_MAX_FILE_BYTES,
    content_key,
    github_steps,
    keep_order_key,
)
from llama_data.pipeline.github.reader import (
    DEFAULT_MAX_ROW_BYTES,
    SOURCE,
    GitCheckoutReader,
    GithubRowReader,
    find_repositories,
    read_license_rows,
    row_document,
)
from llama_data.pipeline.github.schema import GITHUB_SCHEMA
from llama_data.pipeline.sketches import Category, RecordSpec


@dataclass(frozen=True)
class GithubOptions:
    """Everything the stage's result depends on (it is the stage's config fingerprint)."""

    inputs: tuple[str, ...] = ()
    licenses: tuple[str, ...] = ()
    repos: str | None = None
    bigquery: BigQuerySource | None = None
    allowed_licenses: tuple[str, ...] = tuple(sorted(ALLOWED_LICENSES))
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_line_length: int = 1000
    max_mean_line_length: float = 100.0
    min_alnum_fraction: float = 0.25
    min_alpha_per_token: float = 1.5
    dedup: bool = True

    def steps(self):
        return github_steps(
            allowed_licenses=frozenset(self.allowed_licenses),
            max_file_bytes=self.max_file_bytes,
            max_line_length=self.max_line_length,
            max_mean_line_length=self.max_mean_line_length,
            min_alnum_fraction=self.min_alnum_fraction,
            min_alpha_per_token=self.min_alpha_per_token,
        )


# ---------------------------------------------------------------------------------------------
# Licences


class _LicenseRowsFn(beam.DoFn):
    """(repo_name, key) pairs from one licences file; unreadable rows are dead letters.

    A dead letter here counts as a stage input too, so `in == kept + rejected + errors` holds.
    """

    def __init__(self, stage: str) -> None:
        self.stage = stage

    def setup(self) -> None:
        self._in = Metrics.counter(self.stage, "in")
        self._rows = Metrics.counter(self.stage, "licenses.rows")

    def process(self, path: str):
        for item in read_license_rows(path, fs.open_raw):
            if isinstance(item, DeadLetter):
                self._in.inc()
                item.stage = self.stage
                yield beam.pvalue.TaggedOutput("errors", item)
            else:
                self._rows.inc()
                yield item


class ReadLicenses(beam.PTransform):
    """Licence table files (JSON lines / Parquet) -> `.pairs` (repo_name, key) and `.errors`."""

    def __init__(self, patterns: Sequence[str], stage: str) -> None:
        super().__init__()
        self.patterns = list(patterns)
        self.stage = stage

    def expand(self, pbegin):
        files = [f.path for f in fs.match_inputs(self.patterns, what="--licenses")]
        out = (
            pbegin
            | "LicenseFiles" >> beam.Create(files)
            | "Spread" >> beam.Reshuffle()
            | "Rows" >> beam.ParDo(_LicenseRowsFn(self.stage)).with_outputs("errors", main="pairs")
        )
        return out


class _TableFn(beam.CombineFn):
    """(repo_name, licence) pairs -> one `LicenseTable` (numpy chunks while it accumulates)."""

    def create_accumulator(self) -> LicenseTableBuilder:
        return LicenseTableBuilder()

    def add_input(self, acc: LicenseTableBuilder, item: tuple[str, str]) -> LicenseTableBuilder:
        acc.add(*item)
        return acc

    def merge_accumulators(self, accs) -> LicenseTableBuilder:
        accs = iter(accs)
        out = next(accs)
        for acc in accs:
            out.merge(acc)
        return out

    def extract_output(self, acc: LicenseTableBuilder) -> LicenseTable:
        return acc.build()


def _repository_license(item: tuple[str, Iterable[str]]):
    repo, keys = item
    found = table_license(keys)
    if found is not None:
        yield repo, found


class BuildLicenseTable(beam.PTransform):
    """(repo_name, key) rows -> a singleton `LicenseTable` for a side input.

    Only the licence rows are shuffled (to combine the rows of one repository: dual licences, or
    the same repository in two tables); the files never are.
    """

    def expand(self, pairs):
        return (
            pairs
            | "ByRepo" >> beam.GroupByKey()
            | "Resolve" >> beam.FlatMap(_repository_license)
            | "Table" >> beam.CombineGlobally(_TableFn())
        )


def attach_license(doc: Document, table: LicenseTable) -> Document:
    """The file with its repository's licence: the table's, else the row's own column.

    Called on documents the reader has just made (`ReadDocuments(annotate=...)`), before anyone
    else holds them, so the meta is set in place rather than copied.
    """
    doc.meta["license"] = table.license_of(doc.meta["repo_name"], doc.meta.get("license"))
    return doc


# ---------------------------------------------------------------------------------------------
# BigQuery


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a missing parent package
        return False


def check_bigquery_ready(pipeline_args: Sequence[str]) -> None:
    """Fail before building anything when BigQuery cannot work: extra missing, no credentials,
    or no GCS temp location for the export the BigQuery source performs."""
    missing = [m for m in ("google.cloud.bigquery", "google.auth") if not _importable(m)]
    if missing:
        raise UserError(
            "--bigquery needs apache-beam[gcp] (missing "
            + ", ".join(missing)
            + "): pip install 'llama-data[gcp]'"
        )
    import google.auth  # type: ignore[import-not-found]
    from google.auth.exceptions import DefaultCredentialsError  # type: ignore[import-not-found]

    try:
        google.auth.default()
    except DefaultCredentialsError as exc:
        raise UserError(
            "--bigquery needs Google Cloud credentials: run `gcloud auth application-default "
            "login` or set GOOGLE_APPLICATION_CREDENTIALS "
            f"({str(exc).splitlines()[0][:200]})"
        ) from exc
    args = " ".join(pipeline_args)
    if "--project" not in args or "--temp_location" not in args:
        raise UserError(
            "--bigquery needs --project P and --temp_location gs://BUCKET/tmp after `--` "
            "(BigQuery exports the query result there for Beam to read)"
        )


class _BigQueryRowsFn(beam.DoFn):
    def __init__(self, stage: str, max_row_bytes: int) -> None:
        self.stage = stage
        self.max_row_bytes = max_row_bytes

    def setup(self) -> None:
        self._in = Metrics.counter(self.stage, "in")

    def process(self, row: dict):
        self._in.inc()
        result = row_document(dict(row), self.max_row_bytes)
        if isinstance(result, str):
            yield beam.pvalue.TaggedOutput(
                "errors",
                DeadLetter(file="bigquery", reason="missing_field", error=result, stage=self.stage),
            )
        else:
            yield result


def read_bigquery(p, source: BigQuerySource, stage: str, max_row_bytes: int):
    """(docs, errors, licence pairs) read with Beam's ReadFromBigQuery (standard SQL)."""
    from apache_beam.io.gcp.bigquery import ReadFromBigQuery

    rows = p | "QueryFiles" >> ReadFromBigQuery(query=files_query(source), use_standard_sql=True)
    out = rows | "Rows" >> beam.ParDo(_BigQueryRowsFn(stage, max_row_bytes)).with_outputs(
        "errors", main="docs"
    )
    pairs = (
        p
        | "QueryLicenses" >> ReadFromBigQuery(query=licenses_query(source), use_standard_sql=True)
        | "Pairs" >> beam.Map(lambda r: (r["repo_name"], r.get("license")))
    )
    return out.docs, out.errors, pairs


# ---------------------------------------------------------------------------------------------
# The stage


def _repos_fingerprint(root: str) -> dict[str, str]:
    """Checkouts and their HEAD, so the stage reruns when a checkout moves."""
    heads: dict[str, str] = {}
    for name, path in find_repositories(root):
        head_file = os.path.join(path, ".git", "HEAD")
        try:
            with open(head_file) as fh:
                head = fh.read().strip()
            if head.startswith("ref: "):
                ref_file = os.path.join(path, ".git", head[5:])
                if os.path.exists(ref_file):
                    with open(ref_file) as fh:
                        head = fh.read().strip()
        except OSError:
            head = str(os.path.getmtime(path))
        heads[name] = head
    return heads


def make_github_stage(options: GithubOptions, name: str = "github") -> StageSpec:
    """The GitHub stage for `llama-data github` and `build`."""
    sources = sum(bool(x) for x in (options.inputs, options.repos, options.bigquery))
    if sources == 0:
        raise UserError("github: give --input (export rows), --repos DIR or --bigquery")
    if options.repos is not None and not os.path.isdir(options.repos):
        raise UserError(f"--repos {options.repos!r} is not a directory")
    repos = find_repositories(options.repos) if options.repos else []
    if options.repos is not None and not repos:
        raise UserError(f"--repos {options.repos!r} holds no git checkouts (folders with .git)")
    config = asdict(options)
    config["source"] = SOURCE
    if options.repos:
        config["repo_heads"] = _repos_fingerprint(options.repos)

    def build(p, ctx: StageContext) -> StageOutputs:
        if options.bigquery is not None:
            check_bigquery_ready(ctx.run.pipeline_args)
        docs_parts, errors, license_parts = [], [], []
        bigquery_docs = None
        if options.bigquery is not None:
            bigquery_docs, bq_errors, pairs = read_bigquery(
                p, options.bigquery, ctx.name, options.max_row_bytes
            )
            errors.append(bq_errors)
            license_parts.append(pairs)
        if options.licenses:
            lic = p | "ReadLicenses" >> ReadLicenses(options.licenses, ctx.name)
            license_parts.append(lic.pairs)
            errors.append(lic.errors)
        table = None
        if license_parts:
            pairs = (
                license_parts[0]
                if len(license_parts) == 1
                else tuple(license_parts) | "AllLicenses" >> beam.Flatten()
            )
            table = pairs | "LicenseTable" >> BuildLicenseTable()
        # files get their licence as they are read: the side input holds back file splits only
        annotate = dict(annotate=attach_license, side=table) if table is not None else {}
        if options.inputs:
            reader = GithubRowReader(max_row_bytes=options.max_row_bytes)
            read = p | "ReadRows" >> ReadDocuments(
                list(options.inputs), reader, ctx.name, ctx.progress_dir, **annotate
            )
            docs_parts.append(read.docs)
            errors.append(read.errors)
        if options.repos:
            reader = GitCheckoutReader(options.repos, max_row_bytes=options.max_row_bytes)
            checkouts = [fs.MatchedFile(path, 0, 0.0) for _, path in repos]
            read = p | "ReadCheckouts" >> ReadDocuments(
                checkouts, reader, ctx.name, ctx.progress_dir, **annotate
            )
            docs_parts.append(read.docs)
            errors.append(read.errors)
        if bigquery_docs is not None:
            docs_parts.append(
                bigquery_docs
                | "Licenses"
                >> beam.Map(
                    lambda d, t: attach_license(d.with_text(d.text), t),
                    beam.pvalue.AsSingleton(table),
                )
            )
        docs = (
            docs_parts[0]
            if len(docs_parts) == 1
            else tuple(docs_parts) | "AllFiles" >> beam.Flatten()
        )
        steps = docs | "Filter" >> ApplySteps(options.steps(), ctx.name)
        rejected = [steps.rejected]
        errors.append(steps.errors)
        kept = steps.kept
        if options.dedup:
            dedup = kept | "Dedup" >> ExactDedup(
                content_key,
                ctx.name,
                order_fn=keep_order_key,
                kept_files=ctx.kept_files(GITHUB_SCHEMA),
            )
            kept = dedup.kept
            rejected.append(dedup.rejected)
            errors.extend(dedup.errors)
        return StageOutputs(kept=kept, rejected=rejected, errors=errors)

    inputs = [*options.inputs, *options.licenses]
    return StageSpec(
        name=name,
        build=build,
        inputs=inputs,
        config=config,
        schema=GITHUB_SCHEMA,
        record=RecordSpec(
            categories=(
                Category("license", "license", label="licence"),
                Category("extension", "path", derive="extension", label="file extension"),
            )
        ),
    )


__all__ = [
    "GITHUB_SCHEMA",
    "GithubOptions",
    "BuildLicenseTable",
    "attach_license",
    "ReadLicenses",
    "check_bigquery_ready",
    "make_github_stage",
    "options_from_config",
]


def options_from_config(src: GithubSourceConfig) -> GithubOptions:
    """Stage options from a `[sources.github]` section (or the `github` command's options)."""
    allowed = tuple(sorted({normalize_license_key(k) for k in src.allowed_licenses}))
    bigquery = None
    if src.bigquery:
        try:
            bigquery = BigQuerySource(
                dataset=src.bigquery_dataset,
                licenses_only=src.bigquery_licensed_only,
                skip_binary=src.bigquery_skip_binary,
                allowed_licenses=allowed,
                limit=src.bigquery_limit,
            )
        except ValueError as exc:
            raise UserError(f"bigquery: {exc}") from exc
    return GithubOptions(
        inputs=tuple(src.inputs),
        licenses=tuple(src.licenses),
        repos=src.repos,
        bigquery=bigquery,
        allowed_licenses=allowed,
        max_row_bytes=src.max_row_bytes,
        max_file_bytes=src.max_file_bytes,
        max_line_length=src.max_line_length,
        max_mean_line_length=src.max_mean_line_length,
        min_alnum_fraction=src.min_alnum_fraction,
        min_alpha_per_token=src.min_alpha_per_token,
        dedup=src.dedup,
    )


def plan(name: str, src: GithubSourceConfig, ctx: BuildContext) -> list[BuildStep]:
    """[sources.github] (or `llama-data github`): rows/checkouts -> licence join -> quality
    filters -> exact dedup, one stage."""
    return one_step(
        name,
        lambda _ctx: make_github_stage(options_from_config(src), name=name),
        "github files -> licence join -> filters -> exact dedup",
        [*src.inputs, *src.licenses],
    )
