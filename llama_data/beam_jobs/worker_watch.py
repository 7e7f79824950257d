"""A local worker process that cannot start (or dies) ends the run instead of hanging it.

Beam's local runner in multi-process mode starts each SDK worker from a thread of the driver
(`sh -c "python -m apache_beam.runners.worker.sdk_worker_main"`) and then waits for it to connect,
without a timeout. When the worker exits first (its interpreter gone or unable to start, killed
for memory), that thread raises `RuntimeError("Worker subprocess exited with return code N")`,
which only reaches `threading.excepthook`, and the driver waits forever: `build` printed
`0 docs` for minutes. So for the length of a local run (`watched_workers`), an excepthook that
recognises those threads records the failure and signals the main thread, whose handler raises
`WorkerFailed` out of the runner's wait; `run_pipeline` turns it into one line.

Both the hook and the signal handler are process-wide, so they are installed only around one
pipeline run in the main thread, the previous ones chained and restored after (as
`beam_speedups.tuned_run` does); elsewhere (a run from another thread, a remote runner) nothing
is installed.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from llama_data.beam_jobs.runners import RunOptions

# The thread Beam's `SubprocessSdkWorkerHandler.start_worker` runs each worker from, and what
# `SubprocessSdkWorker.run` raises there when the worker process exits with an error.
WORKER_THREAD = "run_worker"
WORKER_EXIT = "Worker subprocess exited"
SIGNAL = signal.SIGUSR1


class WorkerFailed(BaseException):
    """A local worker process exited while the run needed it. A BaseException, so that no
    `except Exception` of the runner on its way out takes it for a bundle's failure."""


@contextlib.contextmanager
def watched_workers(run: RunOptions) -> Iterator[None]:
    """For one local pipeline run in the main thread: a worker thread's failure raises
    `WorkerFailed` in the main thread (see the module docstring)."""
    if not run.is_local or threading.current_thread() is not threading.main_thread():
        yield
        return
    failures: list[str] = []
    main = threading.main_thread().ident
    previous_hook = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        thread = args.thread
        if (
            thread is not None
            and thread.name == WORKER_THREAD
            and isinstance(args.exc_value, RuntimeError)
            and str(args.exc_value).startswith(WORKER_EXIT)
        ):
            failures.append(str(args.exc_value))
            if main is not None:
                signal.pthread_kill(main, SIGNAL)
            return
        previous_hook(args)

    def on_signal(signum: int, frame: object) -> None:
        if failures:
            raise WorkerFailed(failures[0])

    previous_handler = signal.signal(SIGNAL, on_signal)
    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous_hook
        signal.signal(SIGNAL, previous_handler)
