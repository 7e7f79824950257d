"""Progress of local runs: workers write small counter files, the driver sums and shows them.

Beam's local runners report metrics only at the end, and multi-process workers are separate
processes, so each reading DoFn writes `{docs, bytes}` to its own file in a local folder about twice
a second, and the driver renders the sum: one updating line on a TTY, a log line otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import TextIO

log = logging.getLogger("llama_data")


class ProgressWriter:
    """Worker side. Cheap to call per document; writes at most every `interval` seconds."""

    def __init__(self, directory: str | None, interval: float = 0.5) -> None:
        self.directory = directory
        self.interval = interval
        self.docs = 0
        self.bytes = 0
        self._path = (
            Path(directory) / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.json" if directory else None
        )
        self._last = 0.0

    def add(self, docs: int, nbytes: int) -> None:
        self.docs += docs
        self.bytes += nbytes
        if self._path is not None and time.monotonic() - self._last >= self.interval:
            self.flush()

    def flush(self) -> None:
        if self._path is None:
            return
        self._last = time.monotonic()
        tmp = self._path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps({"docs": self.docs, "bytes": self.bytes}))
            os.replace(tmp, self._path)
        except OSError:
            self._path = None  # progress is best effort; never fail the job for it


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} TB"


def _fmt_elapsed(s: float) -> str:
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class ProgressDisplay:
    """Driver side: a thread that polls the progress folder until stopped."""

    def __init__(
        self, directory: str, label: str, stream: TextIO | None = None, log_every: float = 10.0
    ) -> None:
        self.directory = Path(directory)
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.log_every = log_every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._start = time.monotonic()

    def totals(self) -> tuple[int, int]:
        docs = nbytes = 0
        for f in self.directory.glob("*.json"):
            try:
                d = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            docs += int(d.get("docs", 0))
            nbytes += int(d.get("bytes", 0))
        return docs, nbytes

    def line(self) -> str:
        docs, nbytes = self.totals()
        el = max(time.monotonic() - self._start, 1e-9)
        return (
            f"[{self.label}] {docs:,} docs  {_fmt_bytes(nbytes)}  "
            f"{docs / el:,.0f} docs/s  {_fmt_bytes(nbytes / el)}/s  elapsed {_fmt_elapsed(el)}"
        )

    def _loop(self) -> None:
        last_log = time.monotonic()
        while not self._stop.wait(0.5):
            if self.tty:
                self.stream.write("\r" + self.line() + "\033[K")
                self.stream.flush()
            elif time.monotonic() - last_log >= self.log_every:
                last_log = time.monotonic()
                self.stream.write(self.line() + "\n")
                self.stream.flush()

    def __enter__(self) -> ProgressDisplay:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()
