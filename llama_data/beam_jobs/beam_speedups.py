"""One memo for Beam's graph translation, which otherwise costs ~1.3 s of CPU per stage.

While it builds, translates and runs a pipeline, Beam asks `userstate.get_dofn_specs(dofn)`
whether each DoFn uses state or timers about twenty times per DoFn (is_stateful_dofn,
validate_stateful_dofn, to_runner_api, DoFnSignature, ...), and each answer runs
`inspect.signature` over every method of the DoFn: ~30,000 signature computations for one of our
stages, 40% of its start-up on the local runner. The answer depends only on the DoFn object's
methods, which do not change after construction, so it is memoized per DoFn instance (a worker
that unpickles a DoFn gets a new instance and computes it once again).

Applied only to the Beam release this project pins (see setup.cfg), where the function's contract
was read; any other release runs unpatched.
"""

from __future__ import annotations

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
