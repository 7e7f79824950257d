"""Issue #17 defect 5: a local worker process that cannot start fails the run in one line,
within seconds, instead of leaving the driver waiting for it (`build` printed `0 docs` for
minutes)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest


def interpreter_that_goes_away(root: Path) -> Path:
    """`root/bin/python`: this interpreter (its environment too) under a path of its own, which
    the test deletes once the driver runs, as when a virtual environment is removed or
    replaced under a running job. Beam starts each local worker as `sys.executable`."""
    (root / "bin").mkdir(parents=True)
    if sys.prefix != sys.base_prefix:  # a virtual environment: its config and libraries
        shutil.copy(Path(sys.prefix) / "pyvenv.cfg", root / "pyvenv.cfg")
        for lib in ("lib", "lib64"):
            if (Path(sys.prefix) / lib).exists():
                (root / lib).symlink_to(Path(sys.prefix) / lib)
    python = root / "bin" / "python"
    python.symlink_to(Path(sys.executable).resolve())
    return python


@pytest.mark.slow
def test_build_whose_workers_cannot_start_fails_in_one_line(tmp_path: Path) -> None:
    with (tmp_path / "d.jsonl").open("w") as f:
        for i in range(200):
            f.write(json.dumps({"id": f"d{i}", "text": f"document number {i}"}) + "\n")
    (tmp_path / "build.toml").write_text(
        '[sources.mine]\nformat = "documents"\ninputs = ["d.jsonl"]\n'
    )
    python = interpreter_that_goes_away(tmp_path / "env")
    args = ["-m", "llama_data", "build", "-c", "build.toml", "-o", "out", "--workers", "2"]
    started = time.monotonic()
    driver = subprocess.Popen(
        [str(python), *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    python.unlink()  # Popen returns once the driver runs: its workers find no interpreter
    try:
        out, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 2, (out, err)
    assert time.monotonic() - started < 60
    [line] = err.strip().splitlines()
    assert "a local worker process could not start or died" in line
    assert "return code 127" in line and "not found" in line
    assert not (tmp_path / "out" / "mine" / "_SUCCESS").exists()
