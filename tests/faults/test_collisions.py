"""Issue #17 defect 4: temporary names are unique to their run, so two runs writing the same
output never delete each other's files (the output lock is in test_user_errors.py)."""

from __future__ import annotations

from pathlib import Path

from llama_data.pipeline.shards import run_tmp_dir


def test_run_tmp_dirs_are_unique_and_only_dead_runs_are_cleared(tmp_path: Path) -> None:
    out = tmp_path / "tokens"
    first = run_tmp_dir(out)
    (first / "shard-00000.arrow").write_bytes(b"in progress")
    second = run_tmp_dir(out)  # another run (alive: this process) on the same output
    assert first != second and (first / "shard-00000.arrow").exists()
    legacy = tmp_path / "tokens.tmp"
    dead = tmp_path / "tokens.tmp-999999999-0123abcd"  # no process has this pid
    other = tmp_path / "tokens.tmpfile"  # not ours: left alone
    for folder in (legacy, dead, other):
        folder.mkdir()
    third = run_tmp_dir(out)
    assert not legacy.exists() and not dead.exists() and other.exists()
    assert first.exists() and second.exists() and third.exists()
    assert third.name.startswith("tokens.tmp-")
