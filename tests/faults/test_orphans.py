"""Issue #17 defect 6: after a SIGKILL of the driver, its local Beam workers exit too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

DRIVER = """
import os, re, sys, time
from pathlib import Path
from llama_data.beam_jobs.harness import ApplySteps, ReadDocuments, StageOutputs, StageSpec, run_stage
from llama_data.beam_jobs.runners import RunOptions
from llama_data.pipeline.io import DocumentReader
from llama_data.pipeline.steps import Step

src, out, marks = sys.argv[1:4]

class Slow(Step):
    name = "slow"

    def process(self, doc):
        Path(marks, f"worker-{os.getpid()}").touch()
        re.fullmatch(r"(a+)+b", "a" * 40)  # minutes in C holding the GIL (a regex filter's)
        return doc

def build(p, ctx):
    read = p | ReadDocuments([src], DocumentReader("t"), ctx.name)
    steps = read.docs | ApplySteps([Slow()], ctx.name)
    return StageOutputs(kept=steps.kept, rejected=[steps.rejected], errors=[read.errors])

run_stage(StageSpec("slow", build, inputs=[src]), out, RunOptions(workers=2, quiet=True))
"""


def _descendants(driver: int) -> set[int]:
    """The processes `driver` started, and theirs (its workers and their shells)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {driver}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if Path(f"/proc/{pid}").exists()}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_workers_exit_when_the_driver_is_killed(tmp_path: Path) -> None:
    src = tmp_path / "d.jsonl"
    src.write_text("".join(f'{{"id": "{i}", "text": "doc {i}"}}\n' for i in range(200)))
    marks = tmp_path / "marks"
    marks.mkdir()
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    driver = subprocess.Popen(
        [sys.executable, str(script), str(src), str(tmp_path / "out"), str(marks)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: set[int] = set()
    try:
        deadline = time.time() + 120
        while not any(marks.iterdir()) and time.time() < deadline and driver.poll() is None:
            time.sleep(0.2)
        assert any(marks.iterdir()), "no worker started the slow step"
        workers = _descendants(driver.pid)
        assert workers, "no worker process found"
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        deadline = time.time() + 15
        while _alive(workers) and time.time() < deadline:
            time.sleep(0.2)
        assert _alive(workers) == set(), "workers outlived their driver"
    finally:
        if driver.poll() is None:
            driver.kill()
        for pid in _alive(workers):  # only what this test's driver started
            os.kill(pid, signal.SIGKILL)
