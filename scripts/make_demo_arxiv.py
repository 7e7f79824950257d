"""Write llama_data/demo/arxiv/arXiv_src_2401_001.tar: a tiny bulk tar in arXiv's real layout.

Members are `2401/<id>.gz` (a gzipped tar of a multi-file project, or one gzipped .tex) and
`2401/<id>.pdf` (a PDF-only submission), as in `s3://arxiv/src/`. The papers are written for
this project. The output is byte-for-byte reproducible (fixed mtimes, owners and order).
"""

from __future__ import annotations

import gzip
import io
import sys
import tarfile
from pathlib import Path

MAIN = r"""\documentclass[11pt]{article}
\usepackage{amsmath,amssymb}
% Notation used throughout. A comment with a \section{Fake} that must not count.
\newcommand{\R}{\mathbb{R}}
\newcommand{\norm}[1]{\left\lVert #1 \right\rVert}
\newcommand{\loss}[2][\theta]{\mathcal{L}_{#2}(#1)}
\DeclareMathOperator*{\argmin}{arg\,min}
\def\eps{\varepsilon}
\def\pair#1#2{\langle #1, #2 \rangle}
\title{Lamplight Regression: A Tiny Paper for a Demo}
\author{A. Nonymous}
\begin{document}
\maketitle
\begin{abstract}
We study a toy problem. Everything before the first section, this abstract included,
is removed by the LLaMA recipe.
\end{abstract}

\input{sections/intro}
\include{sections/method}

\section*{Acknowledgments}
We thank the lamplighters of Harrow Lane. % a trailing comment
Discounts of 50\% were not involved.

\bibliographystyle{plain}
\bibliography{refs}

\appendix
\section{Proof of the Lemma}
Since $\norm{x}^2 = \pair{x}{x}$ for all $x \in \R^d$, the claim follows.
\end{document}
Anything after end{document} is ignored.
"""

INTRO = r"""\section{Introduction}
\label{sec:intro}
Let $x_1, \dots, x_n \in \R^d$ be points and $\eps > 0$ a tolerance.
We minimise $\loss{n}$ and, for a fixed model, $\loss[\phi]{n}$.
% TODO: cite the lamplighter dataset
"""

METHOD = r"""\section{Method}
Our estimator is $\hat\theta = \argmin_\theta \sum_i \norm{y_i - \theta x_i}^2$.
\begin{verbatim}
% this percent sign is code, not a comment
loss = sum((y - theta * x) ** 2)  # \norm is not expanded here
\end{verbatim}
\subsection*{Complexity}
Each step costs $O(nd)$ time.
"""

REFS = r"""@article{wren2031,
  title = {On the Lighting of Lamps},
  author = {Wren, Tobias},
  year = {2031}
}
"""

# A single .tex in latin-1, as many pre-2010 submissions are, with a thebibliography list and
# author biographies after it (back matter, dropped).
SINGLE = r"""\documentclass{article}
\usepackage[latin1]{inputenc}
\newcommand{\NN}{\mathbb{N}}
\begin{document}
\section{Einf\"uhrung}
Die Zahlen $n \in \NN$ heißen natürlich; Größen über 100\% sind selten.
\section{Ergebnis}
Für alle $n$ gilt $n + 0 = n$ \cite{peano}.
\begin{thebibliography}{9}
\bibitem{peano} G. Peano, Arithmetices principia, 1889.
\end{thebibliography}
\vspace{1cm}
\noindent Der Autor arbeitet über Lampen.
\end{document}
""".encode("latin-1")

# Hostile input: unsafe member names, a recursion bomb, a missing \input, unbalanced braces.
HOSTILE_MAIN = r"""\documentclass{article}
\def\loop{\loop x}
\newcommand{\twice}[1]{#1#1}
\begin{document}
\section{Still processed}
A recursive macro: \loop. An input that is not there: \input{missing-file}.
An unbalanced brace in \twice{text that never closes
\section{More}
The rest of the paper is kept.
\end{document}
"""

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1704067200  # 2024-01-01
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build() -> bytes:
    project = _tar(
        [
            ("main.tex", MAIN.encode()),
            ("sections/intro.tex", INTRO.encode()),
            ("sections/method.tex", METHOD.encode()),
            ("refs.bib", REFS.encode()),
        ]
    )
    hostile = _tar(
        [
            (
                "../escape.tex",
                b"\\documentclass{article}\\begin{document}\\section{Evil}\\end{document}",
            ),
            ("/etc/absolute.tex", b"not a paper"),
            ("paper.tex", HOSTILE_MAIN.encode()),
        ]
    )
    return _tar(
        [
            ("2401/2401.00001.gz", gzip.compress(project, mtime=0)),
            ("2401/2401.00002.gz", gzip.compress(SINGLE, mtime=0)),
            ("2401/2401.00003.pdf", PDF),
            ("2401/2401.00004.gz", gzip.compress(hostile, mtime=0)),
        ]
    )


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "llama_data/demo/arxiv/arXiv_src_2401_001.tar")
    out.write_bytes(build())
    print(f"wrote {out} ({out.stat().st_size} bytes)")
