"""Steps: the small, engine-free units every stage is made of (datatrove's shape).

A step takes one document and returns what became of it: the (possibly changed) document, a
`Rejected` with a named reason, a `DeadLetter`, or several documents. Steps that need a model load
it in `setup()`, which the engine calls once per worker *after* unpickling, never in `__init__`.
Counters are keyed `<stage>.<key>`; the engine decides where they go (Beam metrics, a dict).
"""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence

from llama_data.pipeline.document import DeadLetter, Document, Outcome, Rejected

CounterSink = Callable[[str, int], None]


class Step:
    """Base class. Subclasses set `name` and override `process` (or `process_batch`)."""

    name: str = "step"
    # Private attributes (leading underscore) are never pickled: declare their default here, at
    # class level, and fill them in setup(). Loaded models thus never travel to workers.
    _sink: CounterSink | None = None

    def setup(self) -> None:
        """Load models or other heavy state. Called once per worker before the first document."""

    def bind_counters(self, sink: CounterSink) -> None:
        self._sink = sink

    def count(self, key: str, n: int = 1) -> None:
        if self._sink is not None and n:
            self._sink(f"{self.name}.{key}", n)

    def process(self, doc: Document) -> Outcome | Iterable[Outcome] | None:
        raise NotImplementedError

    def reject(self, doc: Document, reason: str, keep_text: bool = True) -> Rejected:
        """Reject `doc`, counting `<step>.<reason before ':'>`.

        `keep_text=False` for documents skipped for what they are (a redirect, a tag wiki), not
        for their content: their text is not worth storing again in `rejected/`.
        """
        self.count(reason.partition(":")[0])
        return Rejected(doc if keep_text else doc.with_text(""), reason)

    def process_batch(self, docs: Sequence[Document]) -> list[Outcome]:
        """Batched form, for steps whose model is faster on batches (fastText, SentencePiece)."""
        out: list[Outcome] = []
        for doc in docs:
            out.extend(_as_outcomes(self.process(doc)))
        return out

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


def _as_outcomes(result: Outcome | Iterable[Outcome] | None) -> list[Outcome]:
    if result is None:
        return []
    if isinstance(result, Document | Rejected | DeadLetter):
        return [result]
    return list(result)


def run_steps(
    steps: Sequence[Step], docs: Iterable[Document], stage: str = ""
) -> Iterator[Outcome]:
    """Apply `steps` in order. A step that raises turns the document into a dead letter.

    This is the whole per-document semantics of a stage; the Beam DoFn calls it, tests call it.
    """
    for doc in docs:
        current = [doc]
        for step in steps:
            nxt: list[Document] = []
            for d in current:
                try:
                    results = _as_outcomes(step.process(d))
                except Exception as exc:  # noqa: BLE001 - a bad document must not crash the job
                    yield DeadLetter(
                        file=str(d.meta.get("file", "")),
                        error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}",
                        reason=f"step_error:{step.name}",
                        record_id=d.id,
                        stage=stage,
                    )
                    continue
                for r in results:
                    if isinstance(r, Document):
                        nxt.append(r)
                    else:
                        yield r
            current = nxt
            if not current:
                break
        yield from current


class LocalCounters(Counter):
    """A counter sink for running steps without an engine (tests, benchmarks, quick scripts)."""

    def __call__(self, key: str, n: int) -> None:
        self[key] += n
