"""Issue #17 defects 7 (and 5 below): a config or an output a user must fix is one line on
stderr and exit 2, before any work (nothing written)."""

from __future__ import annotations

import os
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


# ---------------------------------------------------------------------------------------------
# Defect 5: unwritable outputs; defect 4: one run per output folder


def _stage_args(tmp_path: Path, out: Path) -> tuple[str, ...]:
    write_jsonl(tmp_path / "d.jsonl", [{"text": "x"}])
    return ("dedup-exact", "-q", "-i", str(tmp_path / "d.jsonl"), "-o", str(out))


def _build_args(tmp_path: Path, out: Path) -> tuple[str, ...]:
    write_jsonl(tmp_path / "d.jsonl", [{"text": "x"}])
    cfg = tmp_path / "build.toml"
    cfg.write_text(GOOD_SOURCE)
    return ("build", "-q", "-c", str(cfg), "-o", str(out))


@pytest.mark.parametrize("command", [_stage_args, _build_args], ids=["stage", "build"])
def test_output_is_a_file_or_under_one(tmp_path: Path, command) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    one_line_exit_2(run_cli(*command(tmp_path, blocker)), "not a folder")
    one_line_exit_2(run_cli(*command(tmp_path, blocker / "out")), "cannot create the folder")
    assert blocker.read_text() == "not a folder"


def test_stage_folder_is_a_dangling_symlink(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "dedup-exact").symlink_to(tmp_path / "gone")
    one_line_exit_2(run_cli(*_stage_args(tmp_path, out)), "dedup-exact is a symlink to nowhere")
    (out / "dedup-exact").unlink()
    (tmp_path / "a-file").write_text("x")
    (out / "dedup-exact").symlink_to(tmp_path / "a-file")
    one_line_exit_2(run_cli(*_stage_args(tmp_path, out)), "dedup-exact is a symlink to a file")
    assert (tmp_path / "a-file").read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only modes")
def test_output_under_a_read_only_folder(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        for command in (_stage_args, _build_args):
            one_line_exit_2(run_cli(*command(tmp_path, ro / "out")), "cannot create the folder")
    finally:
        ro.chmod(0o755)


@pytest.mark.parametrize("command", [_stage_args, _build_args], ids=["stage", "build"])
def test_second_run_on_a_held_output_fails_naming_the_first(tmp_path: Path, command) -> None:
    from llama_data.beam_jobs.output_lock import claim_output

    out = tmp_path / "out"
    with claim_output(str(out)):
        r = run_cli(*command(tmp_path, out))
        one_line_exit_2(r, "is in use by another run", f"pid {os.getpid()}")
        assert sorted(p.name for p in out.iterdir()) == [".lock"]
    # released when the holder is done: the same command now runs
    assert run_cli(*command(tmp_path, out)).returncode == 0


def test_lock_of_a_killed_run_is_released(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from llama_data.beam_jobs.output_lock import claim_output

    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom llama_data.beam_jobs.output_lock import claim_output\n"
         f"with claim_output({str(out)!r}):\n    print('held', flush=True)\n    time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(Exception, match="in use by another run"), claim_output(str(out)):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with claim_output(str(out)):
        pass
