"""Local worker processes die with the run that started them.

Beam's local runner starts its SDK workers through a shell (`sh -c "python -m
apache_beam.runners.worker.sdk_worker_main"`, from a thread), so neither the process group nor
`PR_SET_PDEATHSIG` (which fires when the parent, here the shell, or the starting thread ends)
ties them to the driver. A worker notices a dead driver only between bundles, so one busy in C
code that holds the GIL (a regex, a tokenizer, a model) kept running after a SIGKILL of `build`,
and a watcher thread inside it would be as stuck as it. So the driver names itself in the
environment the workers inherit, for the length of one run only (`driver_marked`), and each
worker, at its first DoFn setup (`die_with_driver`), starts a small watcher *process* that
SIGKILLs the worker within a second of the driver's exit, and exits itself when the worker
does.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

DRIVER_ENV = "LLAMA_DATA_DRIVER_PID"
_WATCHER = """
import os, signal, sys, time
driver, worker = int(sys.argv[1]), int(sys.argv[2])
def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
while alive(worker):
    if not alive(driver):
        os.kill(worker, signal.SIGKILL)
        break
    time.sleep(0.5)
"""
_started = False
_lock = threading.Lock()


@contextlib.contextmanager
def driver_marked() -> Iterator[None]:
    """For one pipeline run: the workers it starts inherit this pid to watch. Set for the run
    only and put back after, so no other child of this process sees it."""
    before = os.environ.get(DRIVER_ENV)
    os.environ[DRIVER_ENV] = str(os.getpid())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(DRIVER_ENV, None)
        else:
            os.environ[DRIVER_ENV] = before


def _is_beam_worker() -> bool:
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return getattr(spec, "name", "") == "apache_beam.runners.worker.sdk_worker_main"


def die_with_driver() -> None:
    """At a DoFn's setup: in a local Beam worker process whose driver set `DRIVER_ENV`, start
    the watcher (once per process; nothing happens in the driver itself)."""
    global _started
    raw = os.environ.get(DRIVER_ENV, "")
    if _started or not raw.isdigit() or int(raw) == os.getpid() or not _is_beam_worker():
        return
    with _lock:
        if _started:
            return
        _started = True
    subprocess.Popen(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", _WATCHER, raw, str(os.getpid())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
    )
