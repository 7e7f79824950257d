"""Dataflow's job construction, offline: `--runner DataflowRunner -- --dry_run=True`.

Beam's DataflowRunner builds and translates the whole job and, under `--dry_run=True`, submits
nothing (no network, no credentials). Needs apache-beam[gcp] (`pip install -e '.[gcp]'`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli
from llama_data.beam_jobs.runners import has_module

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (has_module("google.cloud.storage") and has_module("apitools")),
        reason="DataflowRunner needs apache-beam[gcp]: pip install -e '.[gcp]'",
    ),
]

# Beam validates these even in a dry run: a project id of 6-30 characters, a valid bucket name
# (an invalid one makes Beam try to create a default bucket, over the network).
DATAFLOW = (
    "--dry_run=True", "--project", "my-project", "--region", "us-central1",
    "--temp_location", "gs://my-bucket/tmp",
)  # fmt: skip
BEAM_STAGES = (
    "arxiv", "books", "github", "c4", "wikipedia", "stackexchange", "commoncrawl",
    "wikiref-examples", "commoncrawl-wikiref",
)  # fmt: skip
TASKS = ("commoncrawl-lm", "wikiref-model", "tokenizer", "tokenized", "tokens")


def _files(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*")}


def test_demo_dry_run_builds_every_beam_stage_offline_and_writes_nothing(tmp_path: Path):
    out = tmp_path / "out"
    # later stages read earlier ones' outputs (the LM, the classifier): a local build first
    local = run_cli("build", "--output", str(out), "--quiet", "--runner", "DirectRunner")
    assert local.returncode == 0, local.stderr[-3000:]
    before = _files(out)

    r = run_cli("build", "--output", str(out), "--runner", "DataflowRunner", "--", *DATAFLOW)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    lines = {line.split("]")[0][1:]: line for line in r.stdout.splitlines() if line[:1] == "["}
    for stage in BEAM_STAGES:
        assert "job graph built, not submitted (dry run)" in lines[stage], lines.get(stage)
        assert "WriteKept" in lines[stage] and "WriteErrors" in lines[stage]
    assert "Read, Clean" in lines["wikipedia"] and "Quantiles" in lines["commoncrawl"]
    for task in TASKS:
        assert "not run in a dry run" in lines[task], lines.get(task)
    assert _files(out) == before  # nothing read into, removed from or written under --output


def test_dry_run_without_earlier_outputs_says_which_stage_to_build_first(tmp_path: Path):
    r = run_cli(
        "build", "--output", str(tmp_path / "out"), "--runner", "DataflowRunner", "--", *DATAFLOW
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "[arxiv] job graph built" in r.stdout
    assert "[commoncrawl] job graph not built" in r.stdout and "commoncrawl-lm" in r.stdout
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("_SUCCESS"))


def test_options_beam_rejects_are_one_line(tmp_path: Path):
    args = [a if a != "my-project" else "p" for a in DATAFLOW]  # too short for a project id
    r = run_cli(
        "build", "--output", str(tmp_path / "out"), "--runner", "DataflowRunner", "--", *args
    )
    assert r.returncode == 2 and "rejected the Beam options" in r.stderr
    assert "Invalid Project ID (p)" in r.stderr.strip().splitlines()[-1]
