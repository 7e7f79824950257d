"""The LLaMA arXiv cleaning (§2.1), done carefully.

"We removed everything before the first section, as well as the bibliography. We also removed
the comments from the .tex files, and inline-expanded definitions and macros written by users."

Order matters: comments go first (a commented-out `\\section` or `\\newcommand` does not count);
definitions are read from the whole document (preamble included) and expanded in the body
*before* looking for the first section, so a macro that expands to `\\section` is honoured; the
bibliography is removed last, keeping appendices that follow it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from llama_data.pipeline.arxiv.latex import env_end, group_end, read_optional, strip_comments
from llama_data.pipeline.arxiv.macros import MacroExpander
from llama_data.pipeline.document import Document, Outcome, Rejected
from llama_data.pipeline.steps import Step

SECTIONING = (
    "part", "chapter", "section", "subsection", "subsubsection", "paragraph", "subparagraph",
    "addpart", "addchap", "addsec",
)  # fmt: skip
# `\section`, `\section*`, `\section[short]{...}`; not `\sectionmark` nor `\sections`.
SECTION_RE = re.compile(r"\\(?:" + "|".join(SECTIONING) + r")(?![A-Za-z@])\*?")
BEGIN_DOC_RE = re.compile(r"\\begin\s*\{document\}")
END_DOC_RE = re.compile(r"\\end\s*\{document\}")
_BIB_RE = re.compile(
    r"\\begin\s*\{thebibliography\}|\\bibliography(?![A-Za-z@])|\\printbibliography(?![A-Za-z@])"
)
_BIBSTYLE_RE = re.compile(r"\\bibliographystyle\s*\{[^{}]*\}")
_CONTENT_AFTER_BIB_RE = re.compile(
    r"\\appendix(?![A-Za-z@])|\\begin\s*\{appendices\}|" + SECTION_RE.pattern
)
_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_TRAILING_WS = re.compile(r"[ \t]+\n")


@dataclass
class CleanResult:
    text: str
    reason: str | None = None  # set when nothing usable is left
    macro_errors: list[str] = field(default_factory=list)
    macros_defined: int = 0
    macros_expanded: int = 0
    bibliography_removed: bool = False


def split_document(text: str) -> tuple[str, str]:
    """(preamble, body): the body is what lies between `\\begin{document}` and `\\end{document}`."""
    begin = BEGIN_DOC_RE.search(text)
    preamble, body = ("", text) if begin is None else (text[: begin.start()], text[begin.end() :])
    end = END_DOC_RE.search(body)
    return preamble, body if end is None else body[: end.start()]


def _bib_span(text: str, m: re.Match) -> int:
    """Where the bibliography element starting at `m` ends."""
    token = m.group(0)
    if token.startswith("\\begin"):
        end = env_end(text, "thebibliography", m.end())
        return len(text) if end < 0 else end
    pos = m.end()
    opt = read_optional(text, pos)
    if opt is not None:
        pos = opt[1]
    if token.startswith("\\bibliography"):
        brace = re.compile(r"\s*\{").match(text, pos)
        if brace:
            end = group_end(text, brace.end() - 1)
            return len(text) if end < 0 else end
    return pos


_IF_TOKEN = re.compile(r"\\(iffalse|if[A-Za-z@]*|else|fi)(?![A-Za-z@])")


def remove_iffalse(text: str) -> str:
    """Drop `\\iffalse ... \\fi` blocks (authors' other way of commenting out), keeping an
    `\\else` branch. Nested conditionals are counted; a block without its `\\fi` is left alone."""
    if "\\iffalse" not in text:
        return text
    out: list[str] = []
    pos = 0
    while True:
        start = text.find("\\iffalse", pos)
        if start < 0 or re.match(r"[A-Za-z@]", text[start + 8 : start + 9]):
            if start < 0:
                out.append(text[pos:])
                return "".join(out)
            out.append(text[pos : start + 8])
            pos = start + 8
            continue
        depth, else_at, end = 1, -1, -1
        for m in _IF_TOKEN.finditer(text, start + 8):
            word = m.group(1)
            if word == "fi":
                depth -= 1
                if depth == 0:
                    end = m.end()
                    break
            elif word == "else":
                if depth == 1 and else_at < 0:
                    else_at = m.end()
            else:
                depth += 1
        if end < 0:
            out.append(text[pos:])
            return "".join(out)
        out.append(text[pos:start])
        if else_at >= 0:
            out.append(text[else_at : end - 3])
        pos = end


def remove_bibliography(text: str) -> tuple[str, bool]:
    """Drop every bibliography; drop what follows the last one only if it is back matter.

    What follows the bibliography is kept when it holds an appendix or a section (appendices
    after the references are content); otherwise it is author bios, `\\end{document}` leftovers
    and the like, and goes with the bibliography.
    """
    text = _BIBSTYLE_RE.sub("", text)
    if _BIB_RE.search(text) is None:
        return text, False
    parts: list[str] = []
    pos = 0
    while True:
        m = _BIB_RE.search(text, pos)
        if m is None:
            parts.append(text[pos:])
            break
        parts.append(text[pos : m.start()])
        end = _bib_span(text, m)
        if _BIB_RE.search(text, end) is None:
            tail = text[end:]
            after = _CONTENT_AFTER_BIB_RE.search(tail)
            parts.append("\n" + tail[after.start() :] if after else "")
            break
        pos = end
    return "".join(parts), True


def normalize_whitespace(text: str) -> str:
    text = _TRAILING_WS.sub("\n", text.replace("\r\n", "\n"))
    return _BLANK_LINES.sub("\n\n", text).strip() + "\n"


def clean_latex(source: str, max_depth: int = 32) -> CleanResult:
    """Comments, macros, everything before the first section, the bibliography."""
    text = remove_iffalse(strip_comments(source))
    preamble, body = split_document(text)
    expander = MacroExpander(max_depth=max_depth)
    expander.collect(preamble)
    body = expander.expand(body)
    result = CleanResult(
        text="",
        macro_errors=list(expander.errors),
        macros_defined=expander.defined,
        macros_expanded=expander.expanded,
    )
    first = SECTION_RE.search(body)
    if first is None:
        result.reason = "no_section"
        return result
    body, result.bibliography_removed = remove_bibliography(body[first.start() :])
    result.text = normalize_whitespace(body)
    if not SECTION_RE.sub("", result.text).strip():
        result.reason = "empty"
    return result


class ArxivClean(Step):
    """Clean a paper's flattened LaTeX; reject papers with no section or nothing left.

    Papers the reader could not turn into LaTeX (PDF-only, no .tex, no main file) arrive with
    `meta["skip"]` set and are rejected with that reason, so the counts add up.
    """

    name = "arxiv_clean"

    def __init__(self, max_depth: int = 32, min_chars: int = 1) -> None:
        self.max_depth = max_depth
        self.min_chars = min_chars

    def process(self, doc: Document) -> Outcome:
        skip = doc.meta.get("skip")
        if skip:
            self.count(str(skip).split(":")[0])
            return Rejected(doc, str(skip))
        res = clean_latex(doc.text, self.max_depth)
        meta: dict = {"macros_expanded": res.macros_expanded}
        if res.macro_errors:
            meta["macro_errors"] = res.macro_errors
            self.count("macro_errors")
        reason = res.reason
        if reason is None and len(res.text.strip()) < self.min_chars:
            reason = "too_short"
        if reason is not None:
            return self.reject(doc.with_text(doc.text, **meta), reason)
        self.count("kept")
        return doc.with_text(res.text, **meta)
