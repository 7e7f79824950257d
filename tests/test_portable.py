"""The whole demo build through Beam's portable runner protocol, checked against the DirectRunner.

A fixture starts Beam's Python job service and an external worker pool on 127.0.0.1 (the Job
API and SDK-harness protocol Flink, Spark and Dataflow Runner v2 use with Python workers; the
workers run in the pool's process, not in the submitting one) and stops both at the end, also
on failure. The build is then run with `--runner PortableRunner` and once with `--runner
SparkRunner` pointed at the same job service, and every stage's kept, rejected and dead-letter
records, its counters and the final token shards must be what a DirectRunner build of the same
demo wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from conftest import REPO, run_cli
from llama_data.beam_jobs.output_lock import LOCK_NAME

pytestmark = pytest.mark.slow

# Entries of the JSON files that differ between any two runs, whatever the runner: wall time,
# the runner's own name and parallelism, the sharding of an earlier stage's output (how many
# part files the runner wrote: `inputs`, a count of `files`), and digests of file sizes and
# modification times (`fingerprint`, the LM's `lm` key).
_VOLATILE = {
    "elapsed_s",
    "seconds",
    "cpu_s",
    "wall_s",
    "finished_at",
    "runner",
    "workers",
    "inputs",
    "fingerprint",
    "lm",
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited early:\n{log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{proc.args} did not listen on {port}:\n{log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop a server and what it started (it leads its own process group)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def job_service(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """(job endpoint, worker pool address) of a Beam job service and worker pool on 127.0.0.1."""
    logs = tmp_path_factory.mktemp("portable-logs")
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    job_port, pool_port = _free_port(), _free_port()
    commands = {
        "job-service": [
            sys.executable,
            "-m",
            "apache_beam.runners.portability.local_job_service_main",
            "--port",
            str(job_port),
        ],
        "worker-pool": [
            sys.executable,
            "-m",
            "apache_beam.runners.worker.worker_pool_main",
            "--service_port",
            str(pool_port),
        ],
    }
    procs: list[subprocess.Popen] = []
    try:
        for (name, cmd), port in zip(commands.items(), (job_port, pool_port), strict=True):
            log = logs / f"{name}.log"
            with log.open("w") as out:
                proc = subprocess.Popen(
                    cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            procs.append(proc)
            _wait_for_port(port, proc, log)
        yield f"localhost:{job_port}", f"localhost:{pool_port}"
    finally:
        for proc in procs:
            _stop(proc)


def _build(out: Path, *args: str) -> None:
    # ~30 s each on 2 cores; a job stuck in the job service fails here rather than hang CI
    r = run_cli("build", "--output", str(out), "--quiet", *args, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


@pytest.fixture(scope="module")
def direct_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("direct") / "out"
    _build(out, "--runner", "DirectRunner")
    return out


def _strip(obj, root: str):
    if isinstance(obj, dict):
        return {
            k: _strip(v, root)
            for k, v in obj.items()
            if k not in _VOLATILE and not (k == "files" and isinstance(v, int))
        }
    if isinstance(obj, list):
        return [_strip(v, root) for v in obj]
    if isinstance(obj, str):
        return obj.replace(root, "OUT")
    return obj


def snapshot(root: Path) -> dict:
    """What a build wrote, as runner-independent values: the records of each folder's Parquet,
    Arrow and dead-letter files as sorted lists (how a runner shards a PCollection into files
    is its own choice), JSON without its volatile entries, every other file as bytes."""
    out: dict = {}
    for f in sorted(root.rglob("*")):
        if not f.is_file() or f.name == LOCK_NAME:  # the run lock names its holder's pid
            continue
        if f.name == "index.html" and f.parent.name == "report":
            continue  # report.json's figures drawn with each run's times: report.json is compared
        rel = f.relative_to(root).as_posix()
        folder = f.parent.relative_to(root).as_posix()
        if f.suffix == ".parquet":
            rows = pq.read_table(f).to_pylist()
        elif f.suffix == ".arrow" and folder.startswith("tokenized/"):
            rows = ipc.open_file(f).read_all().to_pylist()
        elif f.suffix == ".jsonl" and f.parent.name == "errors":
            rows = [json.loads(line) for line in f.read_text().splitlines()]
        elif f.suffix == ".json" or f.name == "_SUCCESS":
            out[rel] = _strip(json.loads(f.read_text()), str(root))
            continue
        else:
            out[rel] = f.read_bytes()
            continue
        key = f"{folder}/*{f.suffix}"
        out.setdefault(key, []).extend(
            json.dumps(_strip(r, str(root)), sort_keys=True, default=str) for r in rows
        )
    return {k: sorted(v) if isinstance(v, list) else v for k, v in out.items()}


def _first_difference(want, have, path: str = "") -> str:
    """Where two snapshot values first differ (a JSON path), with both values."""
    if isinstance(want, dict) and isinstance(have, dict):
        for k in sorted(set(want) | set(have), key=str):
            if want.get(k) != have.get(k):
                return _first_difference(want.get(k), have.get(k), f"{path}.{k}")
    if isinstance(want, list) and isinstance(have, list) and len(want) == len(have):
        for i, (a, b) in enumerate(zip(want, have, strict=True)):
            if a != b:
                return _first_difference(a, b, f"{path}[{i}]")
    return f"{path or '.'}: {str(want)[:200]} != {str(have)[:200]}"


def assert_same_build(expected: Path, got: Path) -> None:
    want, have = snapshot(expected), snapshot(got)
    assert sorted(have) == sorted(want)
    differ = [k for k in want if want[k] != have[k]]
    first = {k: _first_difference(want[k], have[k]) for k in differ}
    assert not differ, f"differ from the DirectRunner build: {first}"
    shards = sorted((expected / "tokens").glob("shard-*"))
    assert shards and all((got / "tokens" / s.name).read_bytes() == s.read_bytes() for s in shards)
    for stats in expected.glob("*/stats.json"):
        counters = json.loads(stats.read_text()).get("counters")
        if counters is not None:
            assert (
                json.loads((got / stats.parent.name / "stats.json").read_text())["counters"]
                == counters
            ), stats.parent.name


@pytest.mark.parametrize("runner", ["PortableRunner", "SparkRunner"])
def test_demo_build_through_the_job_service_equals_the_direct_runner(
    runner: str, job_service: tuple[str, str], direct_build: Path, tmp_path: Path
):
    endpoint, pool = job_service
    out = tmp_path / "out"
    _build(
        out, "--runner", runner, "--",
        "--job_endpoint", endpoint, "--environment_type", "EXTERNAL", "--environment_config", pool,
    )  # fmt: skip
    assert_same_build(direct_build, out)
