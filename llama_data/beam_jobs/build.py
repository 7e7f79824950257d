"""`llama-data build`: plan the stages a config asks for, then run them in dependency order.

Each configured source is planned by its entry in the sources table (`beam_jobs/sources.py`),
then the build-wide sections (Wikipedia-reference classifier, tokenizer, tokenize, mix). A
step's spec is made only when its dependencies have run, because its inputs are their outputs.
Complete steps (same fingerprint) are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from llama_data.beam_jobs import fs
from llama_data.beam_jobs.harness import (
    StageResult,
    TaskSpec,
    fingerprint,
    is_complete,
    run_stage,
    run_task,
)
from llama_data.beam_jobs.output_lock import claim_output
from llama_data.beam_jobs.plan import BuildContext, BuildStep
from llama_data.beam_jobs.runners import RunOptions, check_runner_ready
from llama_data.beam_jobs.sources import SECTIONS, SOURCES, source_of
from llama_data.pipeline.config import BuildConfig, BuildSection, SourceConfig, load_config
from llama_data.pipeline.errors import UserError


def plan_build(ctx: BuildContext) -> list[BuildStep]:
    steps: list[BuildStep] = []
    for name, src in ctx.config.sources.items():
        steps += source_of(name, src).plan(name, src, ctx)
    for section in SECTIONS:
        steps += section(ctx, tuple(steps))
    return _ordered(steps)


def _ordered(steps: list[BuildStep]) -> list[BuildStep]:
    """Dependency order, otherwise the declared order (stable, so plans read predictably)."""
    by_name = {s.name: s for s in steps}
    if len(by_name) != len(steps):
        raise UserError("build plan names a stage twice")
    done: list[BuildStep] = []
    seen: set[str] = set()
    visiting: set[str] = set()

    def visit(step: BuildStep) -> None:
        if step.name in seen:
            return
        if step.name in visiting:
            raise UserError(f"build plan has a dependency cycle at {step.name}")
        visiting.add(step.name)
        for dep in step.deps:
            if dep not in by_name:
                raise UserError(f"stage {step.name} needs {dep}, which the config does not build")
            visit(by_name[dep])
        visiting.discard(step.name)
        seen.add(step.name)
        done.append(step)

    for s in steps:
        visit(s)
    return done


def check_inputs(steps: list[BuildStep]) -> dict[str, list[fs.MatchedFile]]:
    """Match every static input before any work starts: a missing file fails the build at once."""
    return {
        s.name: fs.match_inputs(s.inputs, what=f"{s.name} input") if s.inputs else [] for s in steps
    }


def describe_plan(
    ctx: BuildContext, steps: list[BuildStep], matched: dict[str, list[fs.MatchedFile]]
) -> str:
    lines = [f"Build plan -> {ctx.output} (runner {ctx.run.runner}, workers {ctx.run.workers})"]
    complete: set[str] = set()
    for i, step in enumerate(steps, 1):
        files = matched.get(step.name, [])
        status = "pending"
        if all(d in complete for d in step.deps):
            try:
                spec = step.make(ctx)
                spec_files = fs.match_inputs(spec.inputs) if spec.inputs else []
                if is_complete(
                    ctx.stage_dir(step.name), fingerprint(spec.name, spec.config, spec_files)
                ):
                    status = "complete (will be skipped)"
                    complete.add(step.name)
            except UserError:
                status = "pending"
        if step.inputs:
            where = f"{len(files)} files, {sum(f.size for f in files):,} bytes"
        else:
            where = "from " + ", ".join(step.deps) if step.deps else "no inputs"
        lines.append(f"  {i}. {step.name:<16} {step.describe}  [{where}]  {status}")
        for f in files[:5]:
            lines.append(f"       {f.path}")
        if len(files) > 5:
            lines.append(f"       ... and {len(files) - 5} more")
    return "\n".join(lines)


def run_build(
    config: BuildConfig,
    output: str,
    run: RunOptions,
    force: bool = False,
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
) -> list[StageResult]:
    ctx = BuildContext(config=config, output=output, run=run, force=force)
    # Inputs are matched before any pipeline exists: the filesystems (s3:// endpoint, region,
    # keys) need the user's Beam options now.
    FileSystems.set_options(PipelineOptions(list(run.pipeline_args)))
    steps = plan_build(ctx)
    matched = check_inputs(steps)
    if dry_run:
        echo(describe_plan(ctx, steps, matched))
        return []
    check_runner_ready(run)
    if run.graph_only:
        return build_job_graphs(ctx, steps, echo)
    with claim_output(output):
        return _run_build(ctx, config, output, steps, echo)


def _run_build(
    ctx: BuildContext,
    config: BuildConfig,
    output: str,
    steps: list[BuildStep],
    echo: Callable[[str], None],
) -> list[StageResult]:
    results = run_steps(ctx, steps, echo)
    if "tokens" in ctx.results and not ctx.run.quiet:
        from llama_data.pipeline.report import report

        echo(report(ctx.stage_dir("tokens")))
    fs.write_text(
        fs.join(output, "build.json"),
        json.dumps(
            {
                "config": str(config.path) if config.path else None,
                "stages": {
                    r.name: {"dir": r.stage_dir, "skipped": r.skipped, "kept": r.stats.get("kept")}
                    for r in results
                },
            },
            indent=2,
        ),
    )
    write_build_report(output, echo)
    return results


def write_build_report(output: str, echo: Callable[[str], None] = print) -> str | None:
    """The build report (`OUT/report/index.html`), written from what the stages recorded; a
    report that cannot be drawn is a warning, never a failed build. Local outputs only (the
    page is for a browser on this machine); returns its path."""
    if "://" in output:
        echo(f"Report: not written for {output} (run `llama-data report` on a local copy)")
        return None
    from llama_data.pipeline.build_report import write_report

    try:
        return str(write_report(output))
    except Exception as exc:  # noqa: BLE001 - the build itself succeeded
        echo(f"Warning: report not written: {type(exc).__name__}: {exc}")
        return None


def run_steps(
    ctx: BuildContext, steps: list[BuildStep], echo: Callable[[str], None] = print
) -> list[StageResult]:
    """Run planned steps in order (each skipped when complete), echoing each summary."""
    results: list[StageResult] = []
    for step in steps:
        spec = step.make(ctx)
        if isinstance(spec, TaskSpec):
            result = run_task(spec, ctx.output, ctx.run, force=ctx.force)
        else:
            result = run_stage(spec, ctx.output, ctx.run, force=ctx.force)
        ctx.results[step.name] = result
        results.append(result)
        if not ctx.run.quiet:
            echo(result.summary())
    return results


def build_job_graphs(
    ctx: BuildContext, steps: list[BuildStep], echo: Callable[[str], None] = print
) -> list[StageResult]:
    """`--runner DataflowRunner -- --dry_run=True`: every Beam stage's job is built offline and
    its top-level transforms printed; nothing is submitted and nothing under the output is
    written. A stage whose inputs are an earlier stage's outputs (a model, the tokenizer) is
    built from those outputs when they are there (a build of the same config into the same
    --output, e.g. with the DirectRunner); tasks (model training) run in the submitting process,
    not as Beam jobs, and are not run."""
    results: list[StageResult] = []
    for step in steps:
        try:
            spec = step.make(ctx)
            if isinstance(spec, TaskSpec):
                echo(f"[{step.name}] a task run from the submitting process: not run in a dry run")
                continue
            result = run_stage(spec, ctx.output, ctx.run)
        except UserError as exc:
            if not step.deps:
                raise
            echo(
                f"[{step.name}] job graph not built: {exc} (its inputs are the outputs of "
                f"{', '.join(step.deps)}: build them into this --output first)"
            )
            continue
        results.append(result)
        echo(result.summary())
    return results


def run_source(
    source: str,
    name: str,
    cfg: SourceConfig,
    output: str,
    run: RunOptions,
    force: bool = False,
    echo: Callable[[str], None] = print,
) -> list[StageResult]:
    """One source's stages, as its command runs them: the same planner `build` uses, on a
    config of that source alone."""
    FileSystems.set_options(PipelineOptions(list(run.pipeline_args)))
    check_runner_ready(run)
    build_config = BuildConfig(path=None, build=BuildSection(), sources={name: cfg})
    ctx = BuildContext(config=build_config, output=output, run=run, force=force)
    steps = _ordered(SOURCES[source].plan(name, cfg, ctx))
    with claim_output(output):
        return run_steps(ctx, steps, echo)


def demo_config_path() -> Path:
    """The bundled demo config (small inputs in the real upstream formats, shipped in the wheel)."""
    return Path(str(resources.files("llama_data") / "demo" / "build.toml"))


def load_build_config(path: str | None) -> BuildConfig:
    return load_config(path or demo_config_path())
