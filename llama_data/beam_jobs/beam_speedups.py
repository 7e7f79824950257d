"""Two remedies for costs the Beam runner adds to every stage, whatever the stage does.

1. A memo for Beam's graph translation, which otherwise costs ~1.3 s of CPU per stage.

While it builds, translates and runs a pipeline, Beam asks `userstate.get_dofn_specs(dofn)`
whether each DoFn uses state or timers about twenty times per DoFn (is_stateful_dofn,
validate_stateful_dofn, to_runner_api, DoFnSignature, ...), and each answer runs
`inspect.signature` over every method of the DoFn: ~30,000 signature computations for one of our
stages, 40% of its start-up on the local runner. The answer depends only on the DoFn object's
methods, which do not change after construction, so it is memoized per DoFn instance (a worker
that unpickles a DoFn gets a new instance and computes it once again).

Applied only to the Beam release this project pins (see setup.cfg), where the function's contract
was read; any other release runs unpatched.

2. Freezing what the runner holds out of Python's cyclic GC. A worker holds ~130,000 long-lived
objects (the pipeline graph, protos, bundle processors); every full collection, triggered by the
allocations of a step such as wikitext parsing (mwparserfromhell makes millions of small objects),
walks them all again. `freeze_long_lived()` (called from the first DoFn setup in a process) moves
them to the permanent generation: the Wikipedia stage's CPU fell from 20.9 to 15.6 s on the
benchmark input, with no change in what it writes. `thaw()` undoes it when a stage run by the
in-process runner ends, so a stage's graph can be collected before the next one is built.
"""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

import apache_beam as beam
from apache_beam.transforms import userstate

PATCHED_RELEASES = ("2.77.",)

_original = userstate.get_dofn_specs
_memo: dict[int, tuple[weakref.ref, frozenset, frozenset]] = {}


def _memoized_get_dofn_specs(dofn: Any) -> tuple[set, set]:
    key = id(dofn)
    hit = _memo.get(key)
    if hit is not None and hit[0]() is dofn:
        return set(hit[1]), set(hit[2])
    states, timers = _original(dofn)
    try:
        ref = weakref.ref(dofn, lambda _, key=key: _memo.pop(key, None))
    except TypeError:  # an object without weak references: not memoized
        return states, timers
    _memo[key] = (ref, frozenset(states), frozenset(timers))
    return set(states), set(timers)


def apply() -> bool:
    """Install the memo once; True when it is active."""
    if not beam.__version__.startswith(PATCHED_RELEASES):
        return False
    if userstate.get_dofn_specs is not _memoized_get_dofn_specs:
        userstate.get_dofn_specs = _memoized_get_dofn_specs
    return True


_freeze_lock = threading.Lock()
_frozen = False


def freeze_long_lived() -> None:
    """Collect once, then freeze every tracked object (once per process until `thaw`)."""
    global _frozen
    with _freeze_lock:
        if _frozen:
            return
        gc.collect()
        gc.freeze()
        _frozen = True


def thaw() -> None:
    """Return frozen objects to the collector (after a stage run in this process)."""
    global _frozen
    with _freeze_lock:
        if _frozen:
            gc.unfreeze()
            _frozen = False
