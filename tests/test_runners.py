import sys
import types
from pathlib import Path

import pytest

from conftest import run_cli, write_jsonl
from llama_data.beam_jobs import runners
from llama_data.beam_jobs.runners import (
    RunOptions,
    check_dataflow_ready,
    has_module,
    is_dry_run,
    pipeline_options,
)
from llama_data.pipeline.config import RUNNER_NAMES
from llama_data.pipeline.errors import UserError

_EXTERNAL = ("--environment_type=EXTERNAL", "--environment_config=localhost:50000")


def _opts(o) -> dict:
    return o.get_all_options()


def test_direct_runner_workers_map_to_multiprocess():
    one = _opts(pipeline_options(RunOptions(), "s"))
    assert one["runner"] == "DirectRunner" and one["direct_running_mode"] == "in_memory"
    many = _opts(pipeline_options(RunOptions(workers=3), "s"))
    assert many["direct_running_mode"] == "multi_processing" and many["direct_num_workers"] == 3


def test_passthrough_args_come_last_and_win():
    o = _opts(
        pipeline_options(RunOptions(workers=2, pipeline_args=("--direct_num_workers=5",)), "s")
    )
    assert o["direct_num_workers"] == 5


@pytest.mark.parametrize("runner", ["PortableRunner", "SparkRunner", "FlinkRunner"])
def test_portable_runner_options_are_built(runner: str):
    o = _opts(
        pipeline_options(
            RunOptions(
                runner=runner, workers=4, pipeline_args=("--job_endpoint=h:8099", *_EXTERNAL)
            ),
            "my stage",
        )
    )
    assert (
        o["runner"] == runner
        and o["parallelism"] == 4
        and o["job_name"].startswith("llama-data-my-stage-")
    )
    assert o["job_endpoint"] == "h:8099" and o["environment_type"] == "EXTERNAL"


def test_runner_names_are_one_list():
    assert runners.RUNNERS is RUNNER_NAMES and "PortableRunner" in RUNNER_NAMES


@pytest.mark.parametrize("runner", ["PortableRunner", "SparkRunner", "FlinkRunner"])
def test_job_endpoint_without_environment_fails_rather_than_fall_back_to_docker(runner: str):
    # Beam would pick its Docker SDK image (or, for Spark/Flink, run the workers in this process)
    with pytest.raises(
        UserError, match="--environment_type=EXTERNAL --environment_config=HOST:PORT"
    ):
        RunOptions(runner=runner, pipeline_args=("--job_endpoint", "h:8099"))
    with pytest.raises(UserError, match="needs --job_endpoint"):
        RunOptions(runner="PortableRunner", pipeline_args=_EXTERNAL)
    # an explicit choice is the user's, LOOPBACK and DOCKER included
    RunOptions(runner=runner, pipeline_args=("--job_endpoint=h:1", "--environment_type=DOCKER"))


def test_portable_runner_is_accepted_by_the_cli(tmp_path: Path):
    write_jsonl(tmp_path / "d.jsonl", [{"text": "x"}])
    args = ("dedup-exact", "-i", str(tmp_path / "d.jsonl"), "-o", str(tmp_path / "o"))
    r = run_cli(*args, "--runner", "PortableRunner", "--", "--job_endpoint=localhost:1")
    assert r.returncode == 2 and "invalid choice" not in r.stderr
    assert "--environment_type=EXTERNAL --environment_config=HOST:PORT" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_dry_run_values():
    assert is_dry_run(("--dry_run=True",)) and is_dry_run(("--dry_run", "true"))
    assert not is_dry_run(("--dry_run=False",)) and not is_dry_run(())


def test_unknown_runner_and_bad_workers():
    with pytest.raises(UserError, match="unknown runner"):
        RunOptions(runner="LocalRunner")
    with pytest.raises(UserError, match="--workers"):
        RunOptions(workers=0)


def test_dataflow_says_what_is_missing():
    if not has_module("google.cloud.storage"):
        with pytest.raises(UserError, match=r"apache-beam\[gcp\]"):
            check_dataflow_ready(())
    else:
        with pytest.raises(UserError, match="--project, --region, --temp_location"):
            check_dataflow_ready(())


_DATAFLOW = ("--project", "p", "--region", "us-central1", "--temp_location", "gs://b/tmp")


def test_dataflow_without_credentials_fails_at_once(monkeypatch):
    """google.auth.default() raising is turned into one line before any work (a fake google.auth
    stands in where the gcp extra is not installed)."""

    class DefaultCredentialsError(Exception):
        pass

    def default():
        raise DefaultCredentialsError("Your default credentials were not found.")

    auth = types.ModuleType("google.auth")
    auth.default = default
    exceptions = types.ModuleType("google.auth.exceptions")
    exceptions.DefaultCredentialsError = DefaultCredentialsError
    auth.exceptions = exceptions
    monkeypatch.setitem(sys.modules, "google.auth", auth)
    monkeypatch.setitem(sys.modules, "google.auth.exceptions", exceptions)
    import google

    monkeypatch.setattr(google, "auth", auth, raising=False)
    monkeypatch.setattr(runners, "has_module", lambda name: True)
    runners._check_gcp_credentials.cache_clear()
    with pytest.raises(UserError, match="no Google Cloud credentials.*application-default login"):
        check_dataflow_ready(_DATAFLOW)
    check_dataflow_ready((*_DATAFLOW, "--dry_run=True"))  # a dry run needs none


@pytest.mark.skipif(not has_module("google.auth"), reason="needs apache-beam[gcp] (google.auth)")
def test_dataflow_without_credentials_is_one_line_within_seconds(tmp_path: Path, monkeypatch):
    import time

    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))  # no ADC file there
    write_jsonl(tmp_path / "d.jsonl", [{"text": "x"}])
    started = time.monotonic()
    r = run_cli(
        "dedup-exact", "-i", str(tmp_path / "d.jsonl"), "-o", str(tmp_path / "o"),
        "--runner", "DataflowRunner", "--", *_DATAFLOW,
    )  # fmt: skip
    assert time.monotonic() - started < 30
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "no Google Cloud credentials" in r.stderr


def test_spark_runner_unreachable_is_a_clear_one_line_error(tmp_path: Path):
    write_jsonl(tmp_path / "d.jsonl", [{"text": "x"}])
    r = run_cli(
        "dedup-exact",
        "-i",
        str(tmp_path / "d.jsonl"),
        "-o",
        str(tmp_path / "o"),
        "--runner",
        "SparkRunner",
    )
    assert r.returncode == 2
    assert "SparkRunner could not start or reach its service" in r.stderr
    assert "--spark_master_url" in r.stderr and "Traceback" not in r.stderr.splitlines()[-1]
    assert not (tmp_path / "o" / "dedup-exact" / "_SUCCESS").exists()
