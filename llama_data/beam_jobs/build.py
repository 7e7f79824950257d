"""`llama-data build`: plan the stages a config asks for, then run them in dependency order.

A plan is a list of `BuildStep`s. Each configured source contributes its steps through a planner
registered in `SOURCE_PLANNERS` (native formats) or the generic documents planner; build-wide
steps that follow the sources (language models, tokenizer, tokenize, mix, report) come from
`POST_PLANNERS`. A step's spec is made only when its dependencies have run, because its inputs
are their outputs. Complete steps (same fingerprint) are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from llama_data.beam_jobs import fs
from llama_data.beam_jobs.documents import make_dedup_exact_stage
from llama_data.beam_jobs.harness import (
    ReadDocuments,
    StageOutputs,
    StageResult,
    StageSpec,
    TaskSpec,
    fingerprint,
    is_complete,
    run_stage,
    run_task,
)
from llama_data.beam_jobs.runners import RunOptions
from llama_data.pipeline.config import BuildConfig, SourceConfig, load_config
from llama_data.pipeline.errors import UserError
from llama_data.pipeline.io import DocumentReader


@dataclass
class BuildContext:
    config: BuildConfig
    output: str
    run: RunOptions
    force: bool = False
    results: dict[str, StageResult] = field(default_factory=dict)

    def stage_dir(self, name: str) -> str:
        return fs.join(self.output, name)

    def documents_of(self, name: str) -> list[str]:
        """The glob of a document stage's kept output, as the input of a later stage."""
        return [fs.join(self.stage_dir(name), "*.parquet")]


@dataclass
class BuildStep:
    name: str
    make: Callable[[BuildContext], StageSpec | TaskSpec]
    deps: tuple[str, ...] = ()
    describe: str = ""
    inputs: list[str] = field(default_factory=list)  # static inputs, for the dry-run plan


SourcePlanner = Callable[[str, SourceConfig, BuildContext], list[BuildStep]]
SOURCE_PLANNERS: dict[str, SourcePlanner] = {}
POST_PLANNERS: list[Callable[[BuildContext], list[BuildStep]]] = []


def register_source_planner(name: str):
    def deco(fn: SourcePlanner) -> SourcePlanner:
        SOURCE_PLANNERS[name] = fn
        return fn

    return deco


@register_source_planner("arxiv")
def plan_arxiv(name: str, src: SourceConfig, ctx: BuildContext) -> list[BuildStep]:
    from llama_data.beam_jobs.arxiv import make_arxiv_stage
    from llama_data.pipeline.arxiv.archive import expand_inputs

    inputs = expand_inputs(src.inputs)
    return [
        BuildStep(
            name,
            lambda _ctx: make_arxiv_stage(
                inputs,
                name=name,
                max_input_depth=src.max_input_depth,  # type: ignore[attr-defined]
                max_macro_depth=src.max_macro_depth,  # type: ignore[attr-defined]
                max_paper_mb=src.max_paper_mb,  # type: ignore[attr-defined]
                requester_pays=src.requester_pays,  # type: ignore[attr-defined]
            ),
            describe="arXiv sources -> cleaned LaTeX",
            inputs=inputs,
        )
    ]


@register_source_planner("books")
def plan_books(name: str, src: SourceConfig, ctx: BuildContext) -> list[BuildStep]:
    from llama_data.beam_jobs.books import make_books_stage
    from llama_data.pipeline.books.dedup import MinHashParams

    params = MinHashParams(
        num_perm=src.num_perm,  # type: ignore[attr-defined]
        ngram=src.ngram,  # type: ignore[attr-defined]
        threshold=src.threshold,  # type: ignore[attr-defined]
        lsh_threshold=src.lsh_threshold,  # type: ignore[attr-defined]
    )
    inputs = list(src.inputs)
    return [
        BuildStep(
            name,
            lambda _ctx: make_books_stage(inputs, params, name=name, dedup=src.dedup),
            describe="books -> licence stripped -> near-dedup"
            if src.dedup
            else "books -> licence stripped",
            inputs=inputs,
        )
    ]


def _read_only_stage(inputs: list[str], source: str, name: str) -> StageSpec:
    def build(p, ctx) -> StageOutputs:
        read = p | "Read" >> ReadDocuments(
            inputs, DocumentReader(source), ctx.name, ctx.progress_dir
        )
        return StageOutputs(kept=read.docs, errors=[read.errors])

    return StageSpec(name=name, build=build, inputs=list(inputs), config={"source": source})


def plan_documents_source(name: str, src: SourceConfig, ctx: BuildContext) -> list[BuildStep]:
    """A source given as documents: read them, and drop exact duplicates unless `dedup = false`."""
    inputs = list(src.inputs)
    if src.dedup:
        return [
            BuildStep(
                name,
                lambda _ctx: make_dedup_exact_stage(inputs, source=name, name=name),
                describe="documents -> exact dedup",
                inputs=inputs,
            )
        ]
    return [
        BuildStep(
            name,
            lambda _ctx: _read_only_stage(inputs, name, name),
            describe="documents",
            inputs=inputs,
        )
    ]


@register_source_planner("github")
def plan_github(name: str, src: SourceConfig, ctx: BuildContext) -> list[BuildStep]:
    """GitHub rows/checkouts -> licence join -> quality filters -> exact dedup (one stage)."""
    from llama_data.beam_jobs.github import make_github_stage, options_from_config

    inputs = [*src.inputs, *getattr(src, "licenses", [])]
    return [
        BuildStep(
            name,
            lambda _ctx: make_github_stage(options_from_config(src), name=name),
            describe="github files -> licence join -> filters -> exact dedup",
            inputs=inputs,
        )
    ]


def final_document_stage(ctx: BuildContext, source: str) -> str:
    """The stage whose kept documents are `source`'s contribution to the mixture.

    A source's own stage, unless a build-wide filter refines it afterwards: the Wikipedia-reference
    classifier writes `<source>-wikiref` for its `[wikiref] source`.
    """
    wikiref = ctx.config.sections.get("wikiref")
    if wikiref is not None and getattr(wikiref, "source", None) == source:
        return f"{source}-wikiref"
    return source


def plan_tokens(ctx: BuildContext) -> list[BuildStep]:
    """tokenizer -> tokenized -> tokens, after every configured source (whatever they are).

    Each source's final stage (`final_document_stage`) writes OUT/<stage>/*.parquet documents
    whose `source` column is its mixture name; the token stages take all of them. They are
    planned when at least one configured source has a mixture weight.
    """
    from llama_data.beam_jobs.tokenize import (
        make_mix_task,
        make_tokenize_task,
        make_tokenizer_task,
    )
    from llama_data.pipeline.mixture import MixtureSpec, load_mixture_spec

    tok = ctx.config.section("tokenizer")
    mixture = ctx.config.section("mixture")
    if mixture.weights_file:
        base = load_mixture_spec(mixture.weights_file)
    elif mixture.weights:
        base = MixtureSpec(dict(mixture.weights), {}, "config")
    else:
        base = load_mixture_spec("table1")
    spec = MixtureSpec(dict(base.weights), {**base.max_epochs, **mixture.max_epochs}, base.name)
    if not any(spec.weights.get(name, 0) > 0 for name in ctx.config.sources):
        # Nothing configured is in the mixture (e.g. only a corpus of your own to clean): no
        # tokens to make. Name your source in [mixture] weights to get shards from it.
        return []
    sources = tuple(final_document_stage(ctx, name) for name in ctx.config.sources)

    def documents(c: BuildContext) -> list[str]:
        return [g for name in sources for g in c.documents_of(name)]

    return [
        BuildStep(
            "tokenizer",
            lambda c: make_tokenizer_task(
                documents(c),
                vocab_size=tok.vocab_size,
                weights=dict(spec.weights),
                sample_bytes=tok.sample_bytes,
                seed=tok.seed,
                num_threads=tok.num_threads,
            ),
            deps=sources,
            describe="train-tokenizer (SentencePiece BPE, mixture sample)",
        ),
        BuildStep(
            "tokenized",
            lambda c: make_tokenize_task(documents(c), c.stage_dir("tokenizer")),
            deps=(*sources, "tokenizer"),
            describe="tokenize (per-source token streams)",
        ),
        BuildStep(
            "tokens",
            lambda c: make_mix_task(
                c.stage_dir("tokenized"),
                spec,
                context_length=mixture.context_length,
                total_tokens=mixture.tokens,
                renormalize=mixture.renormalize,
                seed=mixture.seed,
                target_bytes=mixture.shard_bytes,
            ),
            deps=("tokenized",),
            describe="mix (Table 1 proportions -> shards + manifest)",
        ),
    ]


POST_PLANNERS.append(plan_tokens)


def plan_build(ctx: BuildContext) -> list[BuildStep]:
    steps: list[BuildStep] = []
    for name, src in ctx.config.sources.items():
        if src.format == "documents":
            steps += plan_documents_source(name, src, ctx)
        else:
            steps += SOURCE_PLANNERS[name](name, src, ctx)
    for planner in POST_PLANNERS:
        steps += planner(ctx)
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
    results: list[StageResult] = []
    for step in steps:
        spec = step.make(ctx)
        if isinstance(spec, TaskSpec):
            result = run_task(spec, output, run, force=force)
        else:
            result = run_stage(spec, output, run, force=force)
        ctx.results[step.name] = result
        results.append(result)
        if not run.quiet:
            echo(result.summary())
    if "tokens" in ctx.results and not run.quiet:
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
    return results


def demo_config_path() -> Path:
    """The bundled demo config (small inputs in the real upstream formats, shipped in the wheel)."""
    return Path(str(resources.files("llama_data") / "demo" / "build.toml"))


def load_build_config(path: str | None) -> BuildConfig:
    return load_config(path or demo_config_path())


@register_source_planner("commoncrawl")
def plan_commoncrawl(name: str, src: SourceConfig, ctx: BuildContext) -> list[BuildStep]:
    """CCNet: a perplexity model trained from `lm_from`'s output (unless `lm` is given), then
    the ccnet stage over the WET/WARC inputs."""
    from llama_data.beam_jobs.ccnet import ccnet_stage_from_options
    from llama_data.pipeline.config import CommonCrawlConfig

    assert isinstance(src, CommonCrawlConfig)
    inputs = list(src.inputs)
    steps: list[BuildStep] = []
    deps: tuple[str, ...] = ()
    lm_step = f"{name}-lm"
    if src.lm is None:
        if src.lm_from not in ctx.config.sources:
            raise UserError(
                f"sources.{name}.lm_from: the config builds no source {src.lm_from!r} to train the "
                f"perplexity model from; add it, or set sources.{name}.lm to a train-lm folder"
            )
        steps.append(
            BuildStep(
                lm_step,
                lambda c: _train_lm_task(lm_step, c.documents_of(src.lm_from), src),
                deps=(src.lm_from,),
                describe=f"train-lm {','.join(src.languages)} from {src.lm_from}",
            )
        )
        deps = (lm_step,)

    def make(c: BuildContext) -> StageSpec:
        return ccnet_stage_from_options(
            inputs,
            src.lm or c.stage_dir(lm_step),
            languages=src.languages,
            keep=src.keep,
            min_length=src.min_length,
            min_lang_score=src.min_lang_score,
            cutoffs_file=src.cutoffs,
            group_files=src.dedup_group_files,
            name=name,
        )

    steps.append(
        BuildStep(
            name,
            make,
            deps=deps,
            describe="WET/WARC -> line dedup -> lid -> perplexity buckets -> doc dedup -> length",
            inputs=inputs,
        )
    )
    return steps


def _train_lm_task(name: str, inputs: list[str], src) -> TaskSpec:  # noqa: ANN001
    from llama_data.pipeline.ccnet.train_lm import TrainLmSettings, train_lm

    def run(workdir: str, _ctx) -> dict:  # noqa: ANN001
        cards = {
            lang: train_lm(
                inputs, workdir, TrainLmSettings(lang=lang, vocab_size=src.lm_vocab_size)
            )
            for lang in src.languages
        }
        docs = sum(card["training"]["docs"] for card in cards.values())
        return {
            "in": docs,
            "kept": docs,
            "models": {lang: card["training"] for lang, card in cards.items()},
        }

    return TaskSpec(
        name=name,
        run=run,
        inputs=list(inputs),
        config={"languages": list(src.languages), "vocab_size": src.lm_vocab_size, "order": 5},
    )


# Source planners register themselves on import (kept last: they import this module).
from llama_data.beam_jobs import c4 as _c4  # noqa: E402, F401
from llama_data.beam_jobs import stackexchange as _stackexchange  # noqa: E402, F401
from llama_data.beam_jobs import wikipedia as _wikipedia  # noqa: E402, F401
from llama_data.beam_jobs import wikiref as _wikiref  # noqa: E402, F401
