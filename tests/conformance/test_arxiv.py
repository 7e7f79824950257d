"""arXiv cleaning against hand-checked real papers of the sample corpus.

The LLaMA paper (§2.1) is the reference: "We removed everything before the first section, as
well as the bibliography. We also removed the comments from the .tex files, and inline-expanded
definitions and macros written by users." Its authors' code is not published and no package
implements it, so each expectation below was written by reading the papers' LaTeX in
`../shared/corpus/arxiv/`, not by running our code: where the text must start, what must be gone
(preamble, title, abstract, bibliography, comments), what a real use of a paper's own
`\\newcommand` must expand to (its definition applied by hand), and in which order the
`\\input` chapters must appear. Each check is one case of the table: the value found in our
output beside the value the reading gives.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

from conformance.references import ConformanceTable
from llama_data.pipeline.arxiv.archive import read_directory
from llama_data.pipeline.arxiv.clean import ArxivClean, clean_latex
from llama_data.pipeline.arxiv.project import Project, flatten
from llama_data.pipeline.arxiv.reader import paper_document
from llama_data.pipeline.document import Document

REFERENCE = "hand-checked arXiv sources"

# Checks: ("first line", text) | ("present", text) | ("absent", text) | ("absent pattern", regex)
# | ("in order", [texts]) | ("ends with", text) | ("main file", name).
CONV = "1603.07285"  # one .tex and a .bib (natbib); chapters (report class)
CONV_CHECKS = [
    ("main file", "conv_arithmetic.tex"),
    ("first line", r"\chapter{Introduction}"),
    # the preamble, title page, epigraph, three abstracts and the table of contents are gone
    ("absent", r"\documentclass"),
    ("absent", r"\usepackage"),
    ("absent", r"\title{A guide to convolution arithmetic for deep learning}"),
    ("absent", "All models are wrong, but some are useful."),
    ("absent", r"\begin{abstract}"),
    ("absent", "The authors of this guide would like to thank David Warde-Farley"),
    ("absent", r"\tableofcontents"),
    # the bibliography (\bibliography and \bibliographystyle at the end) and \end{document}
    ("absent", r"\bibliography{bibliography}"),
    ("absent", r"\bibliographystyle{natbib}"),
    ("absent", r"\end{document}"),
    ("ends with", "\\noindent \\autoref{fig:dilation} provides an example for $i = 7$, $k = 3$ and\n$d = 2$."),
    # comments: the paper has no \%, so no % at all may remain; `{%` line ends lose their %
    ("absent", "%"),
    ("present", r"multiple feature maps stacked one onto another.\footnote{"),
    ("present", r"An example of this is what was referred to earlier as {\em channels\/} for"),
    ("present", r"\foreach \x in {-10,1,11} {"),
    # body text kept as written, chapters in the order of the file
    ("present", "The bread and butter of neural networks is \\emph{affine transformations}: a\nvector is received as input"),
    (
        "in order",
        [
            r"\chapter{Introduction}",
            r"\section{Discrete convolutions}",
            r"\section{Pooling}",
            r"\chapter{Convolution arithmetic}",
            r"\chapter{Pooling arithmetic}",
            r"\chapter{Transposed convolution arithmetic}",
            r"\chapter{Miscellaneous convolutions}",
        ],
    ),
]  # fmt: skip

SYSTOLIC = "2008.10111"  # systolic_paper.tex \input-s six sections and an appendix
SYSTOLIC_CHECKS = [
    ("main file", "systolic_paper.tex"),
    ("first line", r"\section{Introduction And main results}"),
    ("absent", r"\title{Computing Reeb dynamics on 4d convex polytopes}"),
    ("absent", "We study the combinatorial Reeb flow on the boundary"),  # the abstract
    ("absent", r"\input"),
    ("absent", r"\newcommand"),
    ("absent", r"\renewcommand"),
    ("absent", r"\begin{thebibliography}"),
    ("absent", r"\bibitem{abhs}"),
    ("absent", "Sharp systolic inequalities for Reeb flows on the three-sphere"),
    ("absent", r"\end{document}"),
    # the chapters, in the order of the \input lines; the appendix environment around the last
    (
        "in order",
        [
            r"\section{Introduction And main results}",
            r"\section{Type 1 combinatorial Reeb orbits}",
            r"\section{Reeb dynamics on symplectic polytopes}",
            r"\section{The quaternionic trivialization}",
            r"\section{Reeb dynamics on smoothings of polytopes}",
            r"\section{The smooth-combinatorial correspondence}",
            r"\begin{appendix}",
            r"\section{Rotation numbers}",
        ],
    ),
    ("ends with", "Combining the above two lines completes the proof.\n\\end{proof}\n\n\\end{appendix}"),
    # a comment line in s5 disappears with its line
    ("absent", r"%by $V_{F,"),
    ("present", "restricted to $U_{F,\\varepsilon} + \\varepsilon \\nu_1$ is a translation in ${\\mathbb R}^4$.\nHence the derivative of $\\Phi_t$ on the full tangent space of $Y_\\varepsilon$, namely"),
    # user macros, expanded by hand from the preamble's definitions:
    # \op -> \operatorname; \floor[1] -> \left\lfloor #1 \right\rfloor; \ceil likewise;
    # \Z -> {\mathbb Z}; \R, \C likewise; \mc[1] -> {\mathcal #1}; \Ker -> \op{Ker};
    # \renewcommand{\epsilon}{\varepsilon}; \Sg -> \text{Sp}(2); \Sgt -> \widetilde{\text{Sp}}(2)
    ("present", r"\operatorname{CZ}(\gamma) = \left\lfloor \rho(\gamma) \right\rfloor + \left\lceil \rho(\gamma) \right\rceil \in {\mathbb Z}."),
    ("present", r"\operatorname{CZ}_{\operatorname{comb}}(\gamma) = \left\lfloor \rho_{\operatorname{comb}}(\gamma) \right\rfloor + \left\lceil \rho_{\operatorname{comb}}(\gamma) \right\rceil."),
    ("present", r"{\mathcal A}(\gamma) = \int_{{\mathbb R}/T{\mathbb Z}}\gamma^*\lambda_0."),
    ("present", r"\operatorname{sys}(X) = \frac{{\mathcal A}_{\operatorname{min}}(X)^n}{n!\operatorname{vol}(X)}."),
    ("present", r"$\xi=\operatorname{Ker}(\lambda)\subset TY$"),
    ("present", r"Consider ${\mathbb R}^{2n}={\mathbb C}^n$ with coordinates"),
    ("present", r"Let $\widetilde{\text{Sp}}(2)$ denote the universal cover of the group $\text{Sp}(2)$ of"),
    ("present", r"have systolic ratio $2-\varepsilon$ for $\varepsilon>0$ arbitrarily small."),
    ("absent pattern", r"\\(op|mc|floor|ceil|Sgt?|Ker|R|C|Z|epsilon)(?![A-Za-z@])"),
]  # fmt: skip

SYMPY = "not-arxiv-sympy-paper-peerj"  # paper, supplement, cover letters, rebuttals in one repo
SYMPY_CHECKS = [
    ("main file", "paper.tex"),
    ("first line", r"\section{Introduction}"),
    ("absent", "Dear"),  # the cover letters
    ("absent", r"\begin{abstract}"),
    ("absent", r"\maketitle"),
    ("absent", r"\input"),
    ("absent", r"\bibliography{paper}"),
    ("absent", r"\end{document}"),
    # comment lines, in paper.tex and in the \input files
    ("absent", "%% What sympy is, where to download etc."),
    ("absent", "% Features to discuss in depth:"),
    ("absent", "% symbols, various ways to declare them"),
    ("absent", "% TODO: Someone verify that this is a good summary of the diffgeom module"),
    ("absent", "% doctest printer doesn't display \"mpf\""),
    ("absent", "% Future work:"),
    # verbatim text exactly as written
    ("present", ">>> mpmath.mp.dps = 30    # 30 digits of precision"),
    # \input files inlined where paper.tex and features.tex input them
    (
        "in order",
        [
            r"\section{Introduction}",
            "SymPy is a full featured computer algebra system (CAS) written in the",
            r"\section{Overview of Capabilities}",
            "This section gives a basic introduction of SymPy, and lists its features.",
            r"\subsection{Basic Usage}",
            "Symbolic variables, called symbols, must be defined and assigned to",
            "The assumptions system allows users to specify that symbols have certain",
            "The generic way to simplify an expression is by calling the \\texttt{simplify}",
            "SymPy provides all the basic operations of calculus, such as calculating",
            "SymPy implements a suite of algorithms for polynomial manipulation,",
            "SymPy has a rich collection of expression printers.",
            "SymPy has equation solvers that can handle ordinary differential equations,",
            "Besides being an important feature in its own right, computations on",
            r"\section{Numerics}",
            "While SymPy primarily focuses on symbolics, it is impossible to have a",
            r"\section{Physics Submodule}",
            "SymPy includes several submodules that allow users to solve domain specific",
            r"\section{Architecture}",
            "Software architecture is of central importance in any large software",
            r"\section{Projects that Depend on SymPy}",
            "There are several projects that depend on SymPy as a library for implementing",
            r"\section{Conclusion and Future Work}",
            "SymPy is a robust computer algebra system that provides a wide spectrum of",
        ],
    ),
]  # fmt: skip

# The repository's other document, supplement.tex, taken as the main file.
SUPPLEMENT_CHECKS = [
    ("first line", r"\section{Limits: The Gruntz Algorithm}"),
    ("absent", "The supplementary material takes a deeper look"),  # before the first section
    ("absent", r"\vskip"),
    ("absent", "% Series module (Formal Power Series, Fourier Series)"),
    ("absent", r"\bibliography{paper}"),
    # gamma.tex: an escaped \% is text, not a comment
    ("present", r"\href{http://www.sympygamma.com/input/?i=integrate+tan\%28x\%29}{Integral steps of $\tan (x)$}"),
    ("in order", [r"\section{Limits: The Gruntz Algorithm}", r"\section{SymPy Gamma}", r"\section{Comparison with Mathematica}"]),
]  # fmt: skip


def found(text: str, kind: str, expected):  # noqa: ANN001, ANN201
    """What our text shows for one check, in the form of the check's expected value."""
    if kind == "first line":
        return text.split("\n", 1)[0]
    if kind == "present":
        return expected if expected in text else "not found"
    if kind == "absent":
        i = text.find(expected)
        return None if i < 0 else f"found at {i}: {text[max(0, i - 40) : i + 60]!r}"
    if kind == "absent pattern":
        m = re.search(expected, text)
        return None if m is None else f"found {m.group(0)!r} at {m.start()}"
    if kind == "in order":
        positions = [text.find(s) for s in expected]
        missing = [s for s, p in zip(expected, positions, strict=True) if p < 0]
        if missing:
            return f"missing: {missing}"
        return [s for _, s in sorted(zip(positions, expected, strict=True))]
    if kind == "ends with":
        tail = text.rstrip("\n")
        return expected if tail.endswith(expected) else tail[-len(expected) - 20 :]
    raise ValueError(kind)


def expected_value(kind: str, expected):  # noqa: ANN001, ANN201
    return None if kind in ("absent", "absent pattern") else expected


@functools.cache
def _paper(folder: Path) -> Document:
    paper = read_directory(str(folder))
    out = ArxivClean().process(paper_document(paper))
    assert isinstance(out, Document), out
    return out


@functools.cache
def _supplement(folder: Path) -> str:
    project = Project(read_directory(str(folder)).files)
    result = clean_latex(flatten(project, "supplement.tex").text)
    assert result.reason is None, result.reason
    return result.text


def _cases(name: str, doc_text: str, checks: list, main_file: str | None = None) -> list:
    cases = []
    for i, (kind, expected) in enumerate(checks):
        ours = main_file if kind == "main file" else found(doc_text, kind, expected)
        cases.append((f"{name} #{i} {kind}", expected, ours, expected_value(kind, expected)))
    return cases


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("folder", "checks"),
    [(CONV, CONV_CHECKS), (SYSTOLIC, SYSTOLIC_CHECKS), (SYMPY, SYMPY_CHECKS)],
    ids=[CONV, SYSTOLIC, "sympy-paper"],
)
def test_paper(corpus: Path, table: ConformanceTable, folder: str, checks: list) -> None:
    doc = _paper(corpus / "arxiv" / folder)
    cases = _cases(folder, doc.text, checks, doc.meta.get("main_file"))
    row = table.compare(REFERENCE, f"{folder}: cleaned LaTeX", cases)
    assert row.unexplained == 0, row.first_difference


@pytest.mark.corpus
def test_second_document_of_a_repository(corpus: Path, table: ConformanceTable) -> None:
    text = _supplement(corpus / "arxiv" / SYMPY)
    row = table.compare(
        REFERENCE, f"{SYMPY}/supplement.tex: cleaned LaTeX", _cases(SYMPY, text, SUPPLEMENT_CHECKS)
    )
    assert row.unexplained == 0, row.first_difference
