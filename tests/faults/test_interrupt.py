"""Issue #17, interruption: a trainer SIGKILLed while it writes a checkpoint resumes, when the
same command runs again, from the last complete checkpoint, and ends exactly where a run that
was never interrupted ends."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _model_helpers import make_shards

FIT = """
import json, sys, torch
torch.set_num_threads(1)
from llama_data.model.trainer import TrainConfig, fit
fit(TrainConfig(**json.loads(sys.argv[1])))
"""


def _config(data: Path, out: Path) -> str:
    # a model of ~10 MB with its optimizer state, so a checkpoint (fsynced) takes a while
    return json.dumps(
        dict(
            data=str(data),
            out=str(out),
            preset="tiny",
            model={"dim": 256, "n_heads": 4, "multiple_of": 16},
            batch_tokens=128,
            micro_batch=4,
            steps=10,
            warmup_steps=2,
            log_every=1,
            checkpoint_every=1,
            lr=3e-3,
            progress=False,
            compile=False,
        )  # fmt: skip
    )


def _losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "log.jsonl").read_text().splitlines()]


def _kill_during_a_checkpoint_write(data: Path, out: Path) -> str:
    """Start the trainer and SIGKILL it while a checkpoint after the second is being written;
    the name of the checkpoint it was writing."""
    proc = subprocess.Popen([sys.executable, "-c", FIT, _config(data, out)])
    ckpts = out / "checkpoints"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            writing = [p.name for p in ckpts.glob(".tmp-step-*")] if ckpts.is_dir() else []
            if writing and writing[0] >= ".tmp-step-000000003":
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return writing[0]
            time.sleep(0.0005)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return ""


@pytest.mark.slow
def test_sigkill_during_a_checkpoint_write_then_rerun(tmp_path: Path) -> None:
    data = make_shards(tmp_path / "shards", rows=128)
    full = tmp_path / "full"
    subprocess.run([sys.executable, "-c", FIT, _config(data, full)], check=True, timeout=600)
    for attempt in range(5):  # the kill must land inside a write (a save takes ~10-100 ms)
        run = tmp_path / f"run{attempt}"
        writing = _kill_during_a_checkpoint_write(data, run)
        assert writing, "the trainer finished before a checkpoint write could be interrupted"
        if (run / "checkpoints" / writing).is_dir():
            break  # killed with the checkpoint half written
    else:
        pytest.fail("no kill landed inside a checkpoint write in 5 attempts")
    done = sorted(p.name for p in (run / "checkpoints").glob("step-*"))
    assert done and done[-1] < writing.removeprefix(".tmp-")  # the half-written one never counts
    subprocess.run([sys.executable, "-c", FIT, _config(data, run)], check=True, timeout=600)
    assert _losses(run) == _losses(full)  # resumed from the last good checkpoint, bit for bit
    assert not list((run / "checkpoints").glob(".tmp-*"))
    assert (run / "checkpoints" / "step-000000010" / "meta.json").exists()


def _in_progress(out: Path) -> bool:
    """A step's temporary folder exists: a stage's `_tmp-*`, or a task's `*.tmp-*`."""
    return any("tmp" in p.name for p in [*out.glob("*"), *out.glob("*/*")] if p.name != "_SUCCESS")


def _shards(out: Path) -> dict[str, str]:
    import hashlib

    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((out / "tokens").glob("shard-*.arrow"))
    }


@pytest.mark.slow
def test_build_sigkilled_at_several_points_then_rerun(tmp_path: Path) -> None:
    """The demo build SIGKILLed inside its first stage, in the middle, and inside its last
    step, the same command run again after each kill: the last run finishes and its shards are
    those of a build never interrupted."""
    from conftest import run_cli

    ref = run_cli("build", "-q", "--output", str(tmp_path / "ref"), timeout=900)
    assert ref.returncode == 0, ref.stderr[-3000:]
    n_steps = len(list((tmp_path / "ref").glob("*/_SUCCESS")))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "llama_data", "build", "-q", "--output", str(out)]
    for done_before_kill in (0, n_steps // 2, n_steps - 1):
        proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 600
            while True:
                assert proc.poll() is None, f"finished before the kill: {proc.stderr.read()}"
                assert time.monotonic() < deadline
                done = len(list(out.glob("*/_SUCCESS")))
                if done >= done_before_kill and _in_progress(out):
                    break
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert len(list(out.glob("*/_SUCCESS"))) < n_steps
    last = run_cli("build", "-q", "--output", str(out), timeout=900)
    assert last.returncode == 0, last.stderr[-3000:]
    assert _shards(out) and _shards(out) == _shards(tmp_path / "ref")
    assert not _in_progress(out)
