"""Runner options: one `RunOptions` for every command, turned into Beam pipeline options.

The embedded default is Beam's local DirectRunner, named explicitly (Beam 2.77's default would
first try to download the Prism binary). Cluster runners get their options built here and fail
with a message that says what to pass when their service cannot be reached.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from dataclasses import dataclass, field

from apache_beam.options.pipeline_options import PipelineOptions

from llama_data.pipeline.config import LOCAL_RUNNERS, MAX_LOCAL_WORKERS, RUNNER_NAMES
from llama_data.pipeline.errors import UserError

RUNNERS = RUNNER_NAMES
# Runners that submit through Beam's Job API to a job service and run Python work in SDK
# harnesses of the environment `--environment_type` names.
PORTABLE_RUNNERS = ("PortableRunner", "SparkRunner", "FlinkRunner")

# What a user must pass for each cluster runner, and how to reach it.
_RUNNER_HELP = {
    "DataflowRunner": "pass --project, --region and --temp_location=gs://... after `--`, "
    "install `llama-data[gcp]`, and authenticate with `gcloud auth application-default login`",
    "SparkRunner": "pass --spark_master_url=spark://HOST:7077 (Beam starts a job server from its "
    "Maven jar, which must be reachable or pre-downloaded via --spark_job_server_jar) or "
    "--job_endpoint=HOST:8099 of a running Spark job server",
    "FlinkRunner": "pass --flink_master=HOST:8081 (Beam starts a job server from its Maven jar, "
    "which must be reachable or given via --flink_job_server_jar) or --job_endpoint=HOST:8099",
    "PortableRunner": "pass --job_endpoint=HOST:PORT of a running Beam job service (Flink, "
    "Spark, or `python -m apache_beam.runners.portability.local_job_service_main --port PORT`) "
    "and --environment_type=EXTERNAL --environment_config=HOST:PORT of a worker pool",
    "PrismRunner": "pass --prism_location=/path/to/prism (Beam downloads the Prism binary "
    "from GitHub otherwise)",
}


@dataclass(frozen=True)
class RunOptions:
    runner: str = "DirectRunner"
    workers: int = 1
    pipeline_args: tuple[str, ...] = field(default_factory=tuple)
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.runner not in RUNNERS:
            raise UserError(
                f"--runner: unknown runner {self.runner!r}; one of {', '.join(RUNNERS)}"
            )
        if self.workers < 1:
            raise UserError(f"--workers: must be >= 1, got {self.workers}")
        if self.runner in PORTABLE_RUNNERS:
            check_portable_environment(self.runner, self.pipeline_args)

    @classmethod
    def from_flags(
        cls,
        runner: str | None,
        workers: int | None,
        beam_args: tuple[str, ...],
        quiet: bool,
        defaults: object | None = None,
    ) -> RunOptions:
        """A command's run flags over a config's `[build]` section (`defaults`): the flags win,
        and Beam's own options (after `--`) follow the config's `pipeline_args`."""
        first = beam_args[0] if beam_args else "--"
        if first != "--" and not str(first).startswith("--"):
            raise UserError(f"unexpected argument {first!r} (Beam pipeline options go after `--`)")
        runner = runner or getattr(defaults, "runner", "DirectRunner")
        workers = workers or getattr(defaults, "workers", 1)
        if runner in LOCAL_RUNNERS and workers > MAX_LOCAL_WORKERS:
            raise UserError(f"--workers: at most {MAX_LOCAL_WORKERS} for {runner}, got {workers}")
        given = tuple(a for a in beam_args if a != "--")
        return cls(runner, workers, tuple(getattr(defaults, "pipeline_args", ())) + given, quiet)

    @property
    def graph_only(self) -> bool:
        """DataflowRunner with `--dry_run=True`: each stage's job is built, nothing submitted."""
        return self.runner == "DataflowRunner" and is_dry_run(self.pipeline_args)

    @property
    def is_local(self) -> bool:
        return self.runner in LOCAL_RUNNERS and not _arg_value(self.pipeline_args, "job_endpoint")


def _arg_value(args: tuple[str, ...], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == f"--{name}" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


def _job_name(stage: str) -> str:
    import time

    safe = re.sub(r"[^a-z0-9-]", "-", stage.lower()).strip("-") or "stage"
    return f"llama-data-{safe}-{time.strftime('%Y%m%d-%H%M%S')}"


def pipeline_options(opts: RunOptions, stage: str) -> PipelineOptions:
    """Beam options for one stage; user pass-through args come last and so win."""
    args: list[str] = [f"--runner={opts.runner}"]
    if opts.runner == "DirectRunner":
        if opts.workers > 1:
            args += [
                "--direct_running_mode=multi_processing",
                f"--direct_num_workers={opts.workers}",
            ]
        else:
            args += ["--direct_running_mode=in_memory"]
    elif opts.runner == "DataflowRunner":
        check_dataflow_ready(opts.pipeline_args)
        args += [f"--job_name={_job_name(stage)}", f"--max_num_workers={max(opts.workers, 1)}"]
    elif opts.runner in PORTABLE_RUNNERS:
        args += [f"--job_name={_job_name(stage)}", f"--parallelism={opts.workers}"]
    if not any(a.startswith("--default_sdk_harness_log_level") for a in opts.pipeline_args):
        args.append("--default_sdk_harness_log_level=WARNING")
    return PipelineOptions([*args, *opts.pipeline_args])


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def check_portable_environment(runner: str, pipeline_args: tuple[str, ...]) -> None:
    """A job service needs to be told where the Python workers run.

    Left unset, Beam picks for us: its Docker SDK image (`apache/beam_python3.11_sdk`) for
    PortableRunner or a non-local Spark/Flink master, which a cluster without Docker or that
    image cannot start; or LOOPBACK (workers inside this submitting process) for Spark's and
    Flink's default local masters, which does not scale past this machine. Neither is said, so
    the choice is made explicit here.
    """
    if runner == "PortableRunner" and not _arg_value(pipeline_args, "job_endpoint"):
        raise UserError(
            f"--runner PortableRunner needs --job_endpoint=HOST:PORT after `--`; {_RUNNER_HELP[runner]}"
        )
    if _arg_value(pipeline_args, "job_endpoint") and not _arg_value(
        pipeline_args, "environment_type"
    ):
        raise UserError(
            f"--runner {runner} with --job_endpoint needs to be told where the Python workers "
            "run: pass --environment_type=EXTERNAL --environment_config=HOST:PORT (a worker pool: "
            "python -m apache_beam.runners.worker.worker_pool_main --service_port PORT), or "
            "--environment_type=DOCKER --environment_config=IMAGE (docs/cluster.md), after `--`; "
            "Beam's default is its Docker SDK image"
        )


def is_dry_run(pipeline_args: tuple[str, ...]) -> bool:
    """Beam's `--dry_run` (DataflowRunner builds the job and submits nothing). Beam reads its
    value as a string, so `--dry_run=False` would be true there: only true-like values count."""
    value = _arg_value(pipeline_args, "dry_run")
    return value is not None and value.strip().lower() in ("true", "1", "yes")


def check_runner_ready(opts: RunOptions) -> None:
    """What can be checked before any work starts: Dataflow's extra, options and credentials."""
    if opts.runner == "DataflowRunner":
        check_dataflow_ready(opts.pipeline_args)


def check_dataflow_ready(pipeline_args: tuple[str, ...]) -> None:
    """Dataflow needs the gcp extra, three options and (unless `--dry_run`) credentials; say
    which are missing before any work, in one line."""
    if not has_module("google.cloud.storage"):
        raise UserError("DataflowRunner needs apache-beam[gcp]: pip install 'llama-data[gcp]'")
    missing = [
        n for n in ("project", "region", "temp_location") if not _arg_value(pipeline_args, n)
    ]
    if missing:
        raise UserError(
            "DataflowRunner needs " + ", ".join(f"--{m}" for m in missing) + " after `--` "
            "(e.g. llama-data build --runner DataflowRunner -- --project P --region R "
            "--temp_location gs://BUCKET/tmp)"
        )
    if not is_dry_run(pipeline_args):
        _check_gcp_credentials()


@functools.cache
def _check_gcp_credentials() -> None:
    """Google's default credentials, looked up once: without them Beam's Dataflow client retries
    for minutes before it fails, so their absence is said at once."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        google.auth.default()
    except DefaultCredentialsError as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UserError(
            f"DataflowRunner found no Google Cloud credentials ({first}); run `gcloud auth "
            "application-default login` or set GOOGLE_APPLICATION_CREDENTIALS to a service "
            "account key, or pass --dry_run=True after `--` to build the job graphs only"
        ) from None


def explain_runner_failure(opts: RunOptions, exc: BaseException) -> UserError | None:
    """Turn a cluster runner's start-up failure into one actionable line; None for real bugs."""
    if opts.runner == "DirectRunner":
        return None
    text = f"{type(exc).__name__}: {exc}"
    markers = (
        "urlopen", "Connection", "connect", "download", "Unable to fetch", "UNAVAILABLE",
        "timed out", "Name or service not known", "resolve", "credentials", "HTTP Error",
        "No such file", "job server", "Failed to", "Deadline", "validations errors",
    )  # fmt: skip
    if any(m.lower() in text.lower() for m in markers):
        # Beam's option validation lists its findings on the lines after the first
        lines = text.split("\n", 8)[:8] if "validations errors" in text else text.splitlines()
        first = " ".join(" ".join(lines).split())[:300]
        if "validations errors" in text:
            return UserError(f"{opts.runner} rejected the Beam options: {first}")
        return UserError(
            f"{opts.runner} could not start or reach its service ({first}); {_RUNNER_HELP[opts.runner]}"
        )
    return None
