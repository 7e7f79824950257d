"""Helpers of the fault suite: good records with damage mixed in, and what a stage left."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq


def parquet_rows(folder: Path) -> list[dict]:
    files = sorted(folder.glob("*.parquet"))
    return pq.read_table(files).to_pylist() if files else []


def dead_letters(stage_dir: Path) -> list[dict]:
    return [
        json.loads(line)
        for f in sorted((stage_dir / "errors").glob("*.jsonl"))
        for line in f.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def assert_accounted(stage_dir: Path, n_in: int) -> dict:
    """stats.json balances (in == kept + rejected + errors) with `n_in` records read, and the
    files on disk hold what it says."""
    stats = json.loads((stage_dir / "stats.json").read_text())
    assert stats["in"] == n_in, stats
    assert stats["accounting"]["ok"], stats["accounting"]
    assert len(parquet_rows(stage_dir)) == stats["kept"]
    assert len(parquet_rows(stage_dir / "rejected")) == sum(stats["rejected"].values())
    assert len(dead_letters(stage_dir)) == sum(stats["errors"].values())
    assert (stage_dir / "_SUCCESS").exists()
    return stats
