from pathlib import Path

import pytest

from conftest import run_cli, write_jsonl
from llama_data.beam_jobs.runners import (
    RunOptions,
    check_dataflow_ready,
    has_module,
    pipeline_options,
)
from llama_data.pipeline.errors import UserError


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


@pytest.mark.parametrize("runner", ["SparkRunner", "FlinkRunner"])
def test_portable_runner_options_are_built(runner: str):
    o = _opts(
        pipeline_options(
            RunOptions(runner=runner, workers=4, pipeline_args=("--job_endpoint=h:8099",)),
            "my stage",
        )
    )
    assert (
        o["runner"] == runner
        and o["parallelism"] == 4
        and o["job_name"].startswith("llama-data-my-stage-")
    )
    assert o["job_endpoint"] == "h:8099"


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
