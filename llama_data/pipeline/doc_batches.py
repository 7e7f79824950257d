"""Columnar access to cleaned documents (stage outputs) for tokenizer training and tokenization.

Token work only needs `id`, `source` and `text`, so it reads those columns of the stage Parquet
files directly (a row group at a time) instead of rebuilding `Document` objects. Work is cut into
units of (file, row group), listed in sorted order, so that any number of workers produces the
same per-unit outputs. JSONL document files (one object per line with id/source/text) are accepted
too, as one unit per file.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from llama_data.pipeline.io import open_decompressed

COLUMNS = ("id", "source", "text")


class InputError(ValueError):
    """Inputs the user named that do not exist or do not hold documents."""


def expand_inputs(patterns: str | Sequence[str]) -> list[str]:
    """Sorted, de-duplicated files matching the glob(s).

    A directory means its own *.parquet files (a stage's kept documents, not `rejected/`).
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    found: set[str] = set()
    for pattern in patterns:
        if os.path.isdir(pattern):
            pattern = os.path.join(pattern, "*.parquet")
        found.update(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
    return sorted(found)


@dataclass(frozen=True, order=True)
class DocUnit:
    """One independently readable piece of input: a Parquet row group or a whole JSONL file."""

    path: str
    row_group: int = -1  # -1: the whole file (JSONL)

    @property
    def name(self) -> str:
        return f"{self.path}#{self.row_group}" if self.row_group >= 0 else self.path


def is_parquet(path: str) -> bool:
    return path.endswith(".parquet")


def doc_units(paths: Iterable[str]) -> list[DocUnit]:
    units: list[DocUnit] = []
    for path in sorted(paths):
        if is_parquet(path):
            try:
                n = pq.ParquetFile(path).metadata.num_row_groups
            except (OSError, pa.ArrowInvalid) as exc:
                raise InputError(f"{path}: not a readable Parquet file ({exc})") from exc
            units.extend(DocUnit(path, g) for g in range(n))
        else:
            units.append(DocUnit(path))
    return units


def read_unit(unit: DocUnit, columns: Sequence[str] = COLUMNS) -> pa.Table:
    """The unit's documents as a table with the requested columns (strings)."""
    if unit.row_group >= 0:
        pf = pq.ParquetFile(unit.path)
        missing = [c for c in columns if c not in pf.schema_arrow.names]
        if missing:
            raise InputError(f"{unit.path}: no column(s) {missing}; is this a stage output?")
        return pf.read_row_group(unit.row_group, columns=list(columns))
    rows: dict[str, list[str]] = {c: [] for c in columns}
    with open(unit.path, "rb") as raw, open_decompressed(raw, unit.path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                for c in columns:
                    rows[c].append(str(obj[c]) if c != "id" else str(obj.get("id", lineno)))
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"{unit.path}:{lineno}: not a document line ({exc})") from exc
    return pa.table({c: pa.array(v, pa.string()) for c, v in rows.items()})


def iter_documents(units: Iterable[DocUnit]) -> Iterator[tuple[str, str, str]]:
    """(source, id, text) of every document, unit by unit."""
    for unit in units:
        table = read_unit(unit)
        yield from zip(
            table.column("source").to_pylist(),
            table.column("id").to_pylist(),
            table.column("text").to_pylist(),
            strict=True,
        )
