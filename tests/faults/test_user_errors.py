"""Issue #17 defects 7 (and 5 below): a config or an output a user must fix is one line on
stderr and exit 2, before any work (nothing written)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli, write_jsonl

GOOD_SOURCE = '[sources.mine]\nformat = "documents"\ninputs = ["d.jsonl"]\n'


def one_line_exit_2(r, *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    for needle in needles:
        assert needle in r.stderr, r.stderr


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a UTF-8 text file"),
        ("[build]\nrunner = 'DirectRunner'  # caf\xe9\n".encode("latin-1"), "not a UTF-8"),
        (b"[build]\nworkers = 99999999999999999999\n" + GOOD_SOURCE.encode(), "64-bit"),
        (b"[build]\nworkers = 5000\n" + GOOD_SOURCE.encode(), "build.workers: must be in"),
        (b"[mixture]\ntokens = -99999999999999999999\n" + GOOD_SOURCE.encode(), "64-bit"),
    ],
    ids=["binary", "latin-1", "int-too-large", "workers-too-many", "int-too-small"],
)
def test_bad_config_file(tmp_path: Path, content: bytes, needle: str) -> None:
    write_jsonl(tmp_path / "d.jsonl", [{"text": "x"}])
    cfg = tmp_path / "build.toml"
    cfg.write_bytes(content)
    r = run_cli("build", "-c", str(cfg), "-o", str(tmp_path / "out"))
    one_line_exit_2(r, needle)
    assert not (tmp_path / "out").exists()


def test_config_that_is_a_folder(tmp_path: Path) -> None:
    r = run_cli("build", "-c", str(tmp_path), "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_workers_flag_too_large(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "d.jsonl", [{"text": "x"}])
    args = ("dedup-exact", "-i", str(tmp_path / "d.jsonl"), "-o", str(tmp_path / "out"))
    r = run_cli(*args, "--workers", "99999999999999999999")  # click's usage error
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--workers" in r.stderr
    one_line_exit_2(run_cli(*args, "--workers", "5000"), "--workers: at most 1024")
    assert not (tmp_path / "out").exists()
