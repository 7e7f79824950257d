"""The output folder of a run: checked writable before any work, and held by one run at a time.

`claim_output(output)` makes the folder (one line, exit 2 when it cannot: a regular file, a
read-only parent, a stage folder that is a symlink to nowhere or to a read-only place) and takes
an exclusive `fcntl.flock` on `OUTPUT/.lock` for the run's lifetime. A second run on the same
folder fails at once, naming the first (its pid, start time and command, written into the
lock file); the kernel drops the lock when the holder exits, even by SIGKILL, so a rerun after
a crash never finds a stale lock. Remote outputs (gs://, s3://) are neither checked nor locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from llama_data.pipeline.errors import UserError

LOCK_NAME = ".lock"


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def check_writable(output: str) -> Path:
    """Make `output` (a local folder) and prove it and its stage folders writable, or raise
    `UserError` in one line naming the path."""
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise UserError(f"--output {output}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--output {output}: cannot create the folder ({_why(exc)})") from None
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise UserError(f"--output {output}: cannot write in the folder ({_why(exc)})") from None
    for child in sorted(out.iterdir()):
        if child.is_symlink() and not child.exists():
            raise UserError(f"--output {output}: {child.name} is a symlink to nowhere")
        if child.is_symlink() and not child.is_dir():
            raise UserError(f"--output {output}: {child.name} is a symlink to a file, not a folder")
        if child.is_dir() and not os.access(child, os.W_OK | os.X_OK):
            raise UserError(f"--output {output}: {child.name} is not writable")
    return out


@contextlib.contextmanager
def claim_output(output: str, beside: bool = False) -> Iterator[None]:
    """Hold `output` for this run (see the module docstring); remote outputs pass through.

    `beside`: the lock is `<output>.lock` next to the folder, for a command that builds its
    output under another name and renames it into place at the end (`tokenize`, `mix`): a
    lock inside would go with the folder it replaces, and the next run would lock a new file.
    """
    if "://" in output:
        yield
        return
    out = check_writable(output)
    path = out.absolute().parent / f"{out.absolute().name}.lock" if beside else out / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UserError(f"--output {output}: cannot create {path.name} ({_why(exc)})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown"
            raise UserError(
                f"--output {output} is in use by another run ({holder}); wait for it or choose "
                "another --output"
            ) from None
        os.ftruncate(fd, 0)
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        command = " ".join(sys.argv)[:300]
        os.pwrite(fd, f"pid {os.getpid()}, started {started}: {command}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
