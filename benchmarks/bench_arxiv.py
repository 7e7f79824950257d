"""arXiv benchmark: LaTeX cleaning throughput (papers/s, MB/s) and the whole reader on a bulk tar.

- clean: `clean_latex` on flattened papers (the shared corpus' three papers when present, plus
  macro-heavy synthetic papers), one core;
- reader: a bulk tar in arXiv's layout built in memory from those papers (gzipped per paper),
  read end to end: gunzip, tar, decoding, main file, \\input resolution, cleaning.
Times are CPU seconds of this process (per core; the machine may be shared). Prints one JSON line.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from llama_data.pipeline.arxiv import ArxivClean, ArxivReader, clean_latex
from llama_data.pipeline.arxiv.archive import paper_directories, read_directory
from llama_data.pipeline.arxiv.project import Project, find_main, flatten
from llama_data.pipeline.document import Document
from llama_data.pipeline.io import FileSplit, local_open
from llama_data.pipeline.steps import run_steps

CORPUS = (
    Path(
        os.environ.get(
            "LLAMA_DATA_CORPUS", Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
        )
    )
    / "arxiv"
)


def synthetic_paper(seed: int, sections: int = 12) -> dict[str, bytes]:
    rng = random.Random(seed)
    macros = "\n".join(
        [r"\newcommand{\R}{\mathbb{R}}", r"\newcommand{\norm}[1]{\left\lVert #1\right\rVert}",
         r"\newcommand{\loss}[2][\theta]{\mathcal{L}_{#2}(#1)}", r"\DeclareMathOperator{\tr}{tr}",
         r"\def\eps{\varepsilon}", r"\def\ip#1#2{\langle #1,#2\rangle}"]
    )  # fmt: skip
    words = [
        "the",
        "of",
        "model",
        "data",
        "we",
        "show",
        "that",
        "a",
        "bound",
        "holds",
        "for",
        "all",
        "tensors",
        "and",
    ]
    main = [
        r"\documentclass{article}",
        macros,
        r"\begin{document}",
        r"\begin{abstract}x\end{abstract}",
    ]
    files: dict[str, bytes] = {}
    for s in range(sections):
        body = [f"\\section{{Part {s}}}"]
        for _ in range(25):
            sent = " ".join(rng.choice(words) for _ in range(18))
            body.append(
                f"{sent} $\\norm{{x_{s}}} \\le \\eps$, $\\loss{{n}}$, $\\ip{{u}}{{v}} \\in \\R$ % note\n"
            )
        files[f"sec/s{s}.tex"] = "\n".join(body).encode()
        main.append(f"\\input{{sec/s{s}}}")
    main += [r"\bibliographystyle{plain}", r"\bibliography{refs}", r"\end{document}"]
    files["main.tex"] = "\n".join(main).encode()
    return files


def projects() -> list[dict[str, bytes]]:
    out = []
    if CORPUS.is_dir():
        out += [read_directory(d).files for d in paper_directories(str(CORPUS))]
    out += [synthetic_paper(i) for i in range(6)]
    return out


def bench_clean(projs: list[dict[str, bytes]], repeat: int = 5) -> dict:
    flat = []
    for files in projs:
        p = Project(files)
        flat.append(flatten(p, find_main(p)).text)
    mb = sum(len(t.encode()) for t in flat) / 1e6
    t0 = time.process_time()
    for _ in range(repeat):
        for t in flat:
            clean_latex(t)
    dt = time.process_time() - t0
    return {"papers": len(flat), "mb": round(mb, 3), "papers_per_s": round(repeat * len(flat) / dt, 1),
            "mb_per_s": round(repeat * mb / dt, 2)}  # fmt: skip


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def bench_reader(projs: list[dict[str, bytes]], copies: int = 20) -> dict:
    members = {}
    raw_bytes = 0
    for c in range(copies):
        for i, files in enumerate(projs):
            members[f"2401/2401.{c:02d}{i:03d}.gz"] = gzip.compress(_tar(files), mtime=0)
            raw_bytes += sum(len(v) for v in files.values())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "arXiv_src_2401_001.tar"
        path.write_bytes(_tar(members))
        t0 = time.process_time()
        docs = list(ArxivReader().read(FileSplit(str(path)), local_open))
        out = list(run_steps([ArxivClean()], [d for d in docs if isinstance(d, Document)]))
        dt = time.process_time() - t0
        tar_mb = path.stat().st_size / 1e6
    kept = sum(isinstance(o, Document) for o in out)
    return {"papers": len(members), "kept": kept, "tar_mb": round(tar_mb, 2), "source_mb": round(raw_bytes / 1e6, 2),
            "papers_per_s": round(len(members) / dt, 1), "source_mb_per_s": round(raw_bytes / 1e6 / dt, 2)}  # fmt: skip


def main() -> None:
    projs = projects()
    print(json.dumps({"bench": "arxiv", "clean": bench_clean(projs), "reader": bench_reader(projs),
                      "python": sys.version.split()[0]}))  # fmt: skip


if __name__ == "__main__":
    main()
