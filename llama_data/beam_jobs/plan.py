"""The build plan's vocabulary, shared by `build` and every source's planner.

A source's planner turns its typed `[sources.<name>]` config into `BuildStep`s; a step's spec is
made only when its dependencies have run, because its inputs are their outputs. A step that
refines another source's documents (the Wikipedia-reference filter over CommonCrawl) says so in
`refines`, and the token stages then take the refined documents as that source's share.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llama_data.beam_jobs import fs
from llama_data.beam_jobs.harness import StageResult, StageSpec, TaskSpec
from llama_data.beam_jobs.runners import RunOptions
from llama_data.pipeline.config import BuildConfig


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
    refines: str | None = None  # the source whose documents this step's output replaces


# (stage name, typed source config, context) -> steps
SourcePlanner = Callable[[str, Any, BuildContext], list[BuildStep]]
# (context, the steps planned so far) -> steps: build-wide sections after the sources
SectionPlanner = Callable[[BuildContext, Sequence[BuildStep]], list[BuildStep]]


def final_stage(steps: Sequence[BuildStep], source: str) -> str:
    """The stage whose kept documents are `source`'s contribution to the mixture: the last step
    that refines it, or its own stage."""
    refined = [s.name for s in steps if s.refines == source]
    return refined[-1] if refined else source


def one_step(
    name: str,
    make: Callable[[BuildContext], StageSpec | TaskSpec],
    describe: str,
    inputs: list[str],
) -> list[BuildStep]:
    """The plan of a source that is one stage over its static inputs."""
    return [BuildStep(name, make, describe=describe, inputs=list(inputs))]
