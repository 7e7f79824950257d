"""`[sources.github]`: GitHub files under permissive licences. Every setting's default and help live here and nowhere
else: the `github` command's options, the config reference and the stage all read them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from llama_data.pipeline.config import SourceConfig, path_field, register_source, setting
from llama_data.pipeline.errors import ConfigError

COMMAND_HELP = """GitHub: keep Apache/BSD/MIT projects, drop low-quality and generated files, strip licence
    headers, and remove exact duplicate files (the first (repo_name, path) copy is kept)."""


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

    # `llama-data github`, the command made from these settings (cli.py)
    command_help: ClassVar[str] = COMMAND_HELP
    inputs_required: ClassVar[bool] = False
    input_help: ClassVar[str] = (
        "BigQuery github_repos files+contents export rows: JSON lines (.jsonl[.gz|.zst]) or "
        "Parquet; file or glob."
    )

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
