"""Standard-SQL queries that read the public `github_repos` dataset the way `--input` rows look.

Two queries, joined later in the pipeline by repository (like exported files): files joined with
their contents, and the licences table. The files query can push work into BigQuery when asked:
`licenses_only` reads only repositories under the allowed licences (the public contents table is
~2.5 TB, and BigQuery bills by bytes scanned), and `skip_binary` leaves out binary blobs. With
both off every file is read, so every rejection is counted by our own filters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llama_data.pipeline.github.licenses import ALLOWED_LICENSES

PUBLIC_DATASET = "bigquery-public-data.github_repos"
_DATASET = re.compile(r"^[A-Za-z0-9_.-]+\.[A-Za-z0-9_]+$")
_KEY = re.compile(r"^[a-z0-9.+-]+$")


@dataclass(frozen=True)
class BigQuerySource:
    """Where and how much to read. `dataset` is `project.dataset`; `limit` is for trials."""

    dataset: str = PUBLIC_DATASET
    licenses_only: bool = False
    skip_binary: bool = False
    max_size: int | None = None
    limit: int | None = None
    allowed_licenses: tuple[str, ...] = tuple(sorted(ALLOWED_LICENSES))

    def __post_init__(self) -> None:
        if not _DATASET.match(self.dataset):
            raise ValueError(f"dataset must look like project.dataset, got {self.dataset!r}")
        bad = [k for k in self.allowed_licenses if not _KEY.match(k)]
        if bad:
            raise ValueError(f"invalid licence keys {bad}")
        for name in ("max_size", "limit"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _allowed_list(source: BigQuerySource) -> str:
    return ", ".join(f"'{k}'" for k in sorted(source.allowed_licenses))


def files_query(source: BigQuerySource) -> str:
    """Files joined with contents: one row per (repo_name, ref, path), BigQuery export columns."""
    ds = source.dataset
    where = []
    if source.licenses_only:
        where.append(
            f"f.repo_name IN (SELECT repo_name FROM `{ds}.licenses` "
            f"WHERE license IN ({_allowed_list(source)}))"
        )
    if source.skip_binary:
        where.append("NOT c.binary")
    if source.max_size is not None:
        where.append(f"c.size <= {source.max_size}")
    sql = (
        "SELECT f.repo_name, f.ref, f.path, f.mode, f.id, c.size, c.binary, c.copies, c.content\n"
        f"FROM `{ds}.files` AS f\n"
        f"JOIN `{ds}.contents` AS c ON f.id = c.id"
    )
    if where:
        sql += "\nWHERE " + "\n  AND ".join(where)
    if source.limit is not None:
        sql += f"\nLIMIT {source.limit}"
    return sql


def licenses_query(source: BigQuerySource) -> str:
    return f"SELECT repo_name, license\nFROM `{source.dataset}.licenses`"
