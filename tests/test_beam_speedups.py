"""The runner tuning: memos answer like Beam's own functions, malloc settings stay in the process
that made them, and all of it is confined to a pipeline run and can be turned off."""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
import pytest
from apache_beam.transforms import userstate
from apache_beam.transforms.userstate import BagStateSpec

from llama_data.beam_jobs import beam_speedups


@pytest.fixture(autouse=True)
def _unpatched() -> Iterator[None]:
    """Each test leaves Beam as it found it (the tuning is never left installed)."""
    yield
    beam_speedups.thaw()
    beam_speedups.remove()


class _Stateful(beam.DoFn):
    BAG = BagStateSpec("bag", beam.coders.StrUtf8Coder())

    def process(self, item, bag=beam.DoFn.StateParam(BAG)):
        yield item


def test_memo_is_installed_and_answers_like_beam() -> None:
    assert beam_speedups.apply()
    assert userstate.get_dofn_specs is beam_speedups._memoized_get_dofn_specs
    for fn in (_Stateful(), beam.Map(lambda x: x).fn):
        expected = beam_speedups._original(fn)
        assert userstate.get_dofn_specs(fn) == expected
        assert userstate.get_dofn_specs(fn) == expected  # from the memo
        assert userstate.is_stateful_dofn(fn) == bool(expected[0] or expected[1])
    fn = _Stateful()
    userstate.get_dofn_specs(fn)[0].clear()  # callers get copies: the memo stays as it was
    assert userstate.get_dofn_specs(fn)[0]


class _WithMethod:
    def method(self, a, b=2):
        return a + b


def test_signature_memo_answers_like_beam() -> None:
    from apache_beam.transforms import core
    from apache_beam.typehints import decorators

    assert beam_speedups.apply()
    assert core.get_signature is decorators.get_signature is beam_speedups._memoized_get_signature

    def plain(x, y=1):
        return x

    for fn in (
        plain,
        _WithMethod().method,
        _WithMethod().method,
        _WithMethod.method,
        len,
        str.upper,
    ):
        expected = beam_speedups._original_get_signature(fn)
        assert decorators.get_signature(fn) == expected
        assert decorators.get_signature(fn) == expected  # from the memo where memoized
    # bound and unbound forms of one function are remembered apart
    assert list(decorators.get_signature(_WithMethod().method).parameters) == ["a", "b"]
    assert list(decorators.get_signature(_WithMethod.method).parameters) == ["self", "a", "b"]
    assert core.get_function_args_defaults(_WithMethod().method) == (["a", "b"], [2])


def test_view_memo_keeps_views_live_and_shared() -> None:
    from apache_beam.options.pipeline_options import (
        DebugOptions,
        PipelineOptions,
        StandardOptions,
    )

    assert beam_speedups.apply()
    options = PipelineOptions(["--runner", "DirectRunner", "--experiments", "a"])
    standard = options.view_as(StandardOptions)
    assert options.view_as(StandardOptions) is standard
    assert standard.runner == "DirectRunner"
    standard.runner = "FlinkRunner"  # a write through one view shows in every other
    assert options.view_as(StandardOptions).runner == "FlinkRunner"
    assert options.get_all_options()["runner"] == "FlinkRunner"
    debug = options.view_as(DebugOptions)
    debug.add_experiment("b")
    assert options.view_as(DebugOptions).experiments == ["a", "b"]
    other = PipelineOptions(["--runner", "SparkRunner"])  # another object has its own views
    assert other.view_as(StandardOptions).runner == "SparkRunner"


def test_freeze_then_thaw_returns_objects_to_the_collector() -> None:
    import gc

    before = gc.get_freeze_count()
    beam_speedups.freeze_long_lived()
    beam_speedups.freeze_long_lived()  # once per process until thawed
    assert gc.get_freeze_count() > before
    beam_speedups.thaw()
    assert gc.get_freeze_count() == 0


def _malloc_probe(env: dict[str, str]) -> list[str]:
    import os
    import subprocess
    import sys

    code = (
        "import os, subprocess, sys\n"
        "from llama_data.beam_jobs import beam_speedups as b\n"
        "print(b.keep_freed_buffers(), b.keep_freed_buffers(), b._glibc() is not None)\n"
        "child = \"import os; print(os.environ.get('MALLOC_MMAP_THRESHOLD_'), "
        "os.environ.get('MALLOC_TRIM_THRESHOLD_'))\"\n"
        "sys.stdout.flush()\n"
        "subprocess.run([sys.executable, '-c', child], check=True)\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "LLAMA_DATA_NO"))}
    out = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_keep_freed_buffers_sets_glibc_thresholds_once_and_exports_nothing() -> None:
    first, again, glibc, mmap, trim = _malloc_probe({})
    if glibc == "False":  # musl or another C library: nothing is changed
        assert (first, mmap, trim) == ("False", "None", "None")
        return
    assert first == again == "True"
    # a child process (fastText training, a shell command) starts with glibc's own defaults
    assert (mmap, trim) == ("None", "None")


def test_keep_freed_buffers_leaves_the_users_settings_alone() -> None:
    first, _, _, mmap, trim = _malloc_probe({"MALLOC_TRIM_THRESHOLD_": "131072"})
    assert first == "False"
    assert (mmap, trim) == ("None", "131072")


def test_tuning_can_be_turned_off() -> None:
    first, again, _, mmap, trim = _malloc_probe({beam_speedups.DISABLE_ENV: "1"})
    assert (first, again, mmap, trim) == ("False", "False", "None", "None")


def test_tuning_is_confined_to_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside `tuned_run` the memos are installed; after it Beam's functions are back, nothing
    is frozen and the environment is as it was. Turned off, nothing is installed at all."""
    import gc
    import os

    from apache_beam.options.pipeline_options import PipelineOptions

    original = userstate.get_dofn_specs
    environ = dict(os.environ)
    with beam_speedups.tuned_run():
        assert userstate.get_dofn_specs is beam_speedups._memoized_get_dofn_specs
        beam_speedups.freeze_long_lived()
        assert gc.get_freeze_count() > 0
    assert userstate.get_dofn_specs is original
    assert PipelineOptions.view_as is beam_speedups._original_view_as
    assert gc.get_freeze_count() == 0
    assert dict(os.environ) == environ
    monkeypatch.setenv(beam_speedups.DISABLE_ENV, "1")
    with beam_speedups.tuned_run():
        beam_speedups.freeze_long_lived()
        assert userstate.get_dofn_specs is original
        assert gc.get_freeze_count() == 0
