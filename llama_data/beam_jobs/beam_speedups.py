"""Three remedies for costs the Beam runner adds to every stage, whatever the stage does.

1. Memos for Beam's graph translation, which otherwise costs ~1.5 s of CPU per stage.

While it builds, translates and runs a pipeline, Beam asks `userstate.get_dofn_specs(dofn)`
whether each DoFn uses state or timers about twenty times per DoFn (is_stateful_dofn,
validate_stateful_dofn, to_runner_api, DoFnSignature, ...), and each answer runs
`inspect.signature` over every method of the DoFn: ~30,000 signature computations for one of our
stages, 40% of its start-up on the local runner. The answer depends only on the DoFn object's
methods, which do not change after construction, so it is memoized per DoFn instance (a worker
that unpickles a DoFn gets a new instance and computes it once again).

Two more answers that depend on nothing that changes are memoized the same way: a function's
signature (`typehints.decorators.get_signature`, ~6,000 calls a stage, ~10 us each) and
`PipelineOptions.view_as(cls)` (~500 calls a stage, each a new argparse parser of ~160 us; views
share their object's option dict, so one view per object and class is what every call gave).

Applied only to the Beam release this project pins (see setup.cfg), where the functions' contracts
were read; any other release runs unpatched.

2. Freezing what the runner holds out of Python's cyclic GC. A worker holds ~130,000 long-lived
objects (the pipeline graph, protos, bundle processors); every full collection, triggered by the
allocations of a step such as wikitext parsing (mwparserfromhell makes millions of small objects),
walks them all again. `freeze_long_lived()` (called from the first DoFn setup in a process) moves
them to the permanent generation: the Wikipedia stage's CPU fell from 20.9 to 15.6 s on the
benchmark input, with no change in what it writes. `thaw()` undoes it when a stage run by the
in-process runner ends, so a stage's graph can be collected before the next one is built.

3. Keeping big freed buffers in the heap (glibc). The runner moves elements between fused stages
as encoded bytes in buffers of megabytes that are allocated and freed again and again; glibc
hands each buffer over its mmap threshold (dynamic, at most 32 MB) back to the kernel when it is
freed, and trims the heap's free top above 128 KB, so the next buffer page-faults all its pages
in afresh. On the GitHub stage's 150-copy benchmark input that was 430,000-680,000 minor faults
and 1.3-2.0 s of system CPU, a fifth of the stage. `keep_freed_buffers()` raises both thresholds
to 256 MB (`mallopt`), after which the same run takes ~190,000 faults and ~0.5 s of system CPU,
for ~100 MB more peak RSS. It runs in the launching process (the in-process runner) and in each
worker process at its first DoFn setup. Where the user set `MALLOC_MMAP_THRESHOLD_` or
`MALLOC_TRIM_THRESHOLD_`, or where the C library is not glibc, nothing is changed.

Scope. All three are process-wide, so they are confined to the pipeline run: `tuned_run()`
installs them when a stage's pipeline starts and undoes them when it ends (memos removed, GC
thawed, glibc's thresholds back to their defaults), and nothing is ever written to `os.environ`:
an exported `MALLOC_*_` once reached the fastText training child of `train-wikiref`, whose
training then diverged ("Encountered NaN"). A worker process that Beam starts (the local runner's
multi-process mode, a portable worker pool, Dataflow) is the runner's own and keeps them for its
life. `LLAMA_DATA_NO_RUNNER_TUNING=1` in the environment turns all of it off.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import logging
import os
import threading
import types
import weakref
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms import core, ptransform, userstate
from apache_beam.transforms import util as beam_util
from apache_beam.typehints import decorators

PATCHED_RELEASES = ("2.77.",)
DISABLE_ENV = "LLAMA_DATA_NO_RUNNER_TUNING"


def enabled() -> bool:
    """False when the user turned the tuning off (`LLAMA_DATA_NO_RUNNER_TUNING=1`)."""
    return os.environ.get(DISABLE_ENV, "").strip().lower() in ("", "0", "false", "no")


class _WeakMemo:
    """Values remembered per live object (by identity, dropped when the object dies): DoFns,
    functions and options objects are compared by identity and may not be hashable."""

    _MISS = object()

    def __init__(self) -> None:
        self._entries: dict[tuple[int, Any], tuple[weakref.ref, Any]] = {}

    def get(self, obj: Any, tag: Any = None) -> Any:
        hit = self._entries.get((id(obj), tag))
        return hit[1] if hit is not None and hit[0]() is obj else self._MISS

    def put(self, obj: Any, value: Any, tag: Any = None) -> None:
        """Remember `value` (not at all for an object without weak references)."""
        key, entries = (id(obj), tag), self._entries
        try:
            ref = weakref.ref(obj, lambda _, key=key, entries=entries: entries.pop(key, None))
        except TypeError:
            return
        entries[key] = (ref, value)


_original = userstate.get_dofn_specs
_dofn_specs = _WeakMemo()


def _memoized_get_dofn_specs(dofn: Any) -> tuple[set, set]:
    hit = _dofn_specs.get(dofn)
    if hit is _WeakMemo._MISS:
        states, timers = _original(dofn)
        hit = (frozenset(states), frozenset(timers))
        _dofn_specs.put(dofn, hit)
    return set(hit[0]), set(hit[1])  # callers may change what they get


_original_get_signature = decorators.get_signature
_signatures = _WeakMemo()


def _memoized_get_signature(func: Any) -> Any:
    """`get_signature` of a plain function or a method bound to anything, once per function
    (a bound method's signature is its function's without the first parameter, whatever the
    object); other callables are not memoized."""
    if isinstance(func, types.MethodType) and isinstance(func.__func__, types.FunctionType):
        target, bound = func.__func__, True
    elif isinstance(func, types.FunctionType):
        target, bound = func, False
    else:
        return _original_get_signature(func)
    signature = _signatures.get(target, bound)
    if signature is _WeakMemo._MISS:
        signature = _original_get_signature(func)  # immutable: one object serves every caller
        _signatures.put(target, signature, bound)
    return signature


_original_view_as = PipelineOptions.view_as
_views = _WeakMemo()


def _memoized_view_as(self: PipelineOptions, cls: type) -> Any:
    """One view per options object and class. A view is a new parse of the object's flags that
    shares its `_all_options` dict, so a second view of the same class is the same as the first;
    Beam asks for ~500 of them while it builds and runs a stage, each a new argparse parser."""
    view = _views.get(self, cls)
    if view is _WeakMemo._MISS:
        view = _original_view_as(self, cls)
        _views.put(self, view, cls)
    return view


_PATCHES = (
    (userstate, "get_dofn_specs", _memoized_get_dofn_specs),
    (decorators, "get_signature", _memoized_get_signature),
    (core, "get_signature", _memoized_get_signature),
    (ptransform, "get_signature", _memoized_get_signature),
    (beam_util, "get_signature", _memoized_get_signature),
    (PipelineOptions, "view_as", _memoized_view_as),
)


_ORIGINALS = tuple((owner, name, getattr(owner, name)) for owner, name, _ in _PATCHES)


_told_unpatched = False


def apply() -> bool:
    """Install the memos (idempotent); True when they are active. On a Beam release other than
    the one they were measured on, say so once and run unpatched."""
    global _told_unpatched
    if not enabled():
        return False
    if not beam.__version__.startswith(PATCHED_RELEASES):
        if not _told_unpatched:
            _told_unpatched = True
            logging.getLogger("llama_data").info(
                "apache-beam %s: the runner memos were measured on %s only; running without them",
                beam.__version__,
                "/".join(r + "x" for r in PATCHED_RELEASES),
            )
        return False
    for owner, name, memo in _PATCHES:
        if getattr(owner, name) is not memo:
            setattr(owner, name, memo)
    return True


def remove() -> None:
    """Put Beam's own functions back."""
    for owner, name, original in _ORIGINALS:
        setattr(owner, name, original)


_freeze_lock = threading.Lock()
_frozen = False


def freeze_long_lived() -> None:
    """At a DoFn's setup: the memos and malloc settings (for a worker process Beam started),
    then collect once and freeze every tracked object (once per process until `thaw`)."""
    global _frozen
    if not enabled():
        return
    apply()
    keep_freed_buffers()
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


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
FREED_BUFFER_BYTES = 256 * 1024 * 1024
GLIBC_DEFAULT_BYTES = 128 * 1024  # both thresholds' initial values (malloc.h, M_*_THRESHOLD)
_MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
_malloc_tuned: bool | None = None


def _glibc() -> Any:
    """The process's C library when it is glibc (it has `gnu_get_libc_version`), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 (raises AttributeError on musl and others)
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc


def keep_freed_buffers() -> bool:
    """Raise glibc's mmap and trim thresholds in this process (once until `release_buffers`);
    True when they are set. Nothing is exported: child processes start with glibc's defaults."""
    global _malloc_tuned
    with _freeze_lock:
        if _malloc_tuned is not None:
            return _malloc_tuned
        _malloc_tuned = False
        if not enabled() or any(name in os.environ for name in _MALLOC_ENV):
            return False  # turned off, or the user's own settings stand
        libc = _glibc()
        if libc is None:
            return False
        ok = libc.mallopt(_M_MMAP_THRESHOLD, FREED_BUFFER_BYTES) == 1
        ok = libc.mallopt(_M_TRIM_THRESHOLD, FREED_BUFFER_BYTES) == 1 and ok
        _malloc_tuned = ok
        return ok


def release_buffers() -> None:
    """Put glibc's thresholds back to their initial values (when `keep_freed_buffers` set them;
    glibc's dynamic mmap threshold stays off after any `mallopt`) and trim the heap."""
    global _malloc_tuned
    with _freeze_lock:
        if _malloc_tuned:
            libc = _glibc()
            if libc is not None:
                libc.mallopt(_M_MMAP_THRESHOLD, GLIBC_DEFAULT_BYTES)
                libc.mallopt(_M_TRIM_THRESHOLD, GLIBC_DEFAULT_BYTES)
                with contextlib.suppress(AttributeError):
                    libc.malloc_trim(0)
        _malloc_tuned = None


@contextlib.contextmanager
def tuned_run():
    """The three remedies for the length of one pipeline run in this process, undone after."""
    if not enabled():
        yield
        return
    apply()
    keep_freed_buffers()
    try:
        yield
    finally:
        thaw()
        release_buffers()
        remove()
