"""Issue #17 defect 4: temporary names are unique to their run, so two runs writing the same
output never delete each other's files; every command that writes a folder holds it for its
run (the lock of `build` and the stage commands is tested in test_user_errors.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli
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


# ---------------------------------------------------------------------------------------------
# One run per output: every command that writes a folder takes the output lock


def _args(tmp_path: Path, command: str, out: Path) -> tuple[tuple[str, ...], bool]:
    """A command's arguments writing to `out` (its inputs need not exist: the lock is taken
    before any work), and whether its lock is beside the folder (`<out>.lock`: the command
    renames its output into place)."""
    docs, tok = str(tmp_path / "docs" / "*.parquet"), str(tmp_path / "tok")
    return {
        "tokenize": (("tokenize", "-t", tok, "-i", docs, "-o", str(out)), True),
        "mix": (("mix", "-i", str(tmp_path / "tokens"), "-o", str(out)), True),
        "train-tokenizer": (("train-tokenizer", "-i", docs, "-o", str(out)), False),
        "train-lm": (("train-lm", "-i", docs, "-o", str(out)), False),
        "train-wikiref": (("train-wikiref", "--wikipedia", docs, "--cc", docs, "-o", str(out)),
                          False),
    }[command]  # fmt: skip


@pytest.mark.parametrize(
    "command", ["tokenize", "mix", "train-tokenizer", "train-lm", "train-wikiref"]
)
def test_every_command_refuses_an_output_another_run_holds(tmp_path: Path, command: str) -> None:
    from test_user_errors import one_line_exit_2

    from llama_data.beam_jobs.output_lock import claim_output

    out = tmp_path / "out"
    args, beside = _args(tmp_path, command, out)
    with claim_output(str(out), beside=beside):
        one_line_exit_2(run_cli(*args), "is in use by another run", f"pid {os.getpid()}")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == (["out", "out.lock"] if beside else ["out"])
    assert sorted(p.name for p in out.iterdir()) == ([] if beside else [".lock"])


@pytest.mark.slow
def test_two_tokenize_runs_on_one_output(tmp_path: Path) -> None:
    """Two real runs: the first is stopped (SIGSTOP) once it holds the output, the second fails
    in one line naming it, and the first, resumed, finishes its token streams."""
    from _token_fixtures import write_all
    from test_user_errors import one_line_exit_2

    from llama_data.pipeline.tokenizer import train_tokenizer_from_files

    write_all(tmp_path / "docs")
    docs = str(tmp_path / "docs" / "*" / "*.parquet")
    train_tokenizer_from_files(docs, tmp_path / "tok", vocab_size=600)
    out = tmp_path / "tokens"
    args = ("tokenize", "-q", "-t", str(tmp_path / "tok"), "-i", docs, "-o", str(out))
    first = subprocess.Popen(
        [sys.executable, "-m", "llama_data", *args], stderr=subprocess.PIPE, text=True
    )
    try:
        lock = tmp_path / "tokens.lock"
        deadline = time.monotonic() + 60
        while f"pid {first.pid}," not in (lock.read_text() if lock.exists() else ""):
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.02)
        first.send_signal(signal.SIGSTOP)
        try:
            one_line_exit_2(run_cli(*args), "is in use by another run", f"pid {first.pid}")
        finally:
            first.send_signal(signal.SIGCONT)
        assert first.wait(timeout=300) == 0, first.stderr.read()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert (out / "sources.json").exists()
