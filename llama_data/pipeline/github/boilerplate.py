"""Remove licence and copyright header comments from the top of a source file, and nothing else.

A header is removed paragraph by paragraph: the leading comment blocks of a file (per the
language's comment syntax, after a preamble of shebang, encoding line, `<?php` or `<?xml`) are
split into paragraphs, and only paragraphs that read like a licence or copyright notice go. A
module docstring that also documents the module keeps its documentation; a block comment made
only of a licence disappears with its delimiters. Directives that share the top of a file with
licences (`//go:build`, `# -*- coding`, `/* eslint-disable */`, `// swift-tools-version`) never go,
and lines that are not comments in the file's language (`#include` in C, `# Heading` in Markdown)
are code and end the header. Files in languages we know no comment syntax for are left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llama_data.pipeline.github.languages import CommentSyntax, comment_syntax

_I = re.IGNORECASE
LICENSE_MARKER = re.compile(
    "|".join(
        (
            r"\bcopyright\b",
            r"\(c\)\s*\d{4}",
            r"©",
            r"spdx-license-identifier",
            r"\blicen[cs]ed\b",
            r"\blicen[cs]e\s*:",
            r"\b(apache|mit|bsd|isc|mozilla|eclipse|boost|artistic)\b[\w\s,.()-]{0,24}\blicen[cs]e",
            r"\blicen[cs]e\b[\s,]*(version|v\d|\d\.\d)",
            r"\b[la]?gpl(v?\d(\.\d)?)?(\+|-or-later|-only)?\b",
            r"\bgnu\s+(lesser\s+|library\s+|affero\s+)?general\s+public\s+licen[cs]e",
            r"permission\s+is\s+hereby\s+granted",
            r"permission\s+to\s+use,\s+copy,\s+modify",
            r"\bredistributions?\s+(and\s+use\s+)?(of|in)\s+(source|binary)",
            r"redistribution\s+and\s+use",
            r"without\s+(any\s+)?warrant",
            r"all\s+rights\s+reserved",
            r"\bfree\s+software\b",
            r"endorse\s+or\s+promote",
            r"limitations\s+under\s+the\s+licen[cs]e",
            r"you\s+may\s+not\s+use\s+this\s+file\s+except",
            r"obtain\s+a\s+copy\s+of\s+the\s+licen[cs]e",
            r"the\s+above\s+copyright\s+notice",
            r"this\s+(file|program|library)\s+is\s+part\s+of\b",
            r"use\s+of\s+this\s+source\s+code\s+is\s+governed",
            r"https?://\S*licen[cs]e",
            r"\b(distributed|released|available)\s+under\s+the\b",
            r"under\s+the\s+terms\s+of\s+the\b",
            r"\bmerchantability\b",
            r"fitness\s+for\s+a\s+particular\s+purpose",
            r"\bbe\s+liable\b",
        )
    ),
    _I,
)
_AS_IS = re.compile(r"\"?\bAS IS\b\"?")  # upper case only: "as is" is ordinary English

# Lines with meaning to a tool: never removed, even inside a licence block.
DIRECTIVE = re.compile(
    r"-\*-.*-\*-|\bvim?:|\bex:|coding[:=]|^\s*(go:|\+build\b|swift-tools-version|@ts-|@flow\b"
    r"|eslint|jshint|jslint|global\s|prettier-|pylint:|noqa|type:\s|mypy:|isort:|fmt:|nolint"
    r"|clang-format|#region|#endregion|@jsx|@refresh|@preserve)",
    _I,
)
_PEP263 = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*[-\w.]+")
_PREAMBLE = re.compile(r"^\s*(<\?php\b|<\?xml\b|<!doctype\b)", _I)
_DOCSTRING_OPEN = re.compile(r"^\s*([rRuUbB]{0,2})(\"\"\"|''')")
_NO_WORDS = re.compile(r"^[\W_]*$")


def is_license_text(text: str) -> bool:
    return bool(LICENSE_MARKER.search(text) or _AS_IS.search(text))


@dataclass
class _Block:
    start: int  # first line index
    end: int  # last line index (inclusive)
    opener: str | None  # the opening delimiter for block comments/docstrings, None for line runs
    closer: str | None
    inner: list[str]  # comment text per line, delimiters and decoration removed


def _inner_line(line: str, prefixes: tuple[str, ...]) -> str:
    s = line.strip()
    for p in prefixes:
        if p and s.startswith(p):
            s = s[len(p) :]
            break
    s = s.strip().lstrip("*#/!;%-").strip()
    return "" if _NO_WORDS.match(s) else s


def _line_run(lines: list[str], i: int, syntax: CommentSyntax) -> _Block | None:
    prefixes = tuple(sorted(syntax.line, key=len, reverse=True))
    block_openers = tuple(o for o, _ in syntax.block)
    j = i
    while j < len(lines):
        s = lines[j].lstrip()
        if not s.startswith(prefixes) or (block_openers and s.startswith(block_openers)):
            break
        j += 1
    if j == i:
        return None
    inner = [_inner_line(lines[k], prefixes) for k in range(i, j)]
    return _Block(i, j - 1, None, None, inner)


def _delimited(lines: list[str], i: int, opener: str, closer: str, lead: str) -> _Block | None:
    """A block from `lead + opener` on line i to the line holding `closer`; None if malformed."""
    first = lines[i]
    pos = first.index(opener, len(first) - len(first.lstrip()) + len(lead)) + len(opener)
    j, search_from = i, pos
    while j < len(lines):
        end = lines[j].find(closer, search_from)
        if end >= 0:
            if lines[j][end + len(closer) :].strip():
                return None  # code after the comment on its closing line: not a pure header
            break
        j += 1
        search_from = 0
    else:
        return None
    inner = []
    for k in range(i, j + 1):
        text = lines[k]
        if k == j:
            text = text[: text.find(closer, pos if k == i else 0)]
        if k == i:
            text = text[pos:]
        inner.append(_inner_line(text, ()))
    return _Block(i, j, lead + opener, closer, inner)


def _comment_block(lines: list[str], i: int, syntax: CommentSyntax) -> _Block | None:
    s = lines[i].lstrip()
    for opener, closer in sorted(syntax.block, key=lambda b: len(b[0]), reverse=True):
        if s.startswith(opener):
            return _delimited(lines, i, opener, closer, "")
    if syntax.docstring:
        m = _DOCSTRING_OPEN.match(lines[i])
        if m:
            return _delimited(lines, i, m.group(2), m.group(2), m.group(1))
    if syntax.line:
        return _line_run(lines, i, syntax)
    return None


def _paragraphs(inner: list[str]) -> list[list[int]]:
    paras: list[list[int]] = []
    current: list[int] = []
    for k, text in enumerate(inner):
        directive = bool(DIRECTIVE.search(text))
        if not text or directive:
            if current:
                paras.append(current)
            current = []
            if directive:
                paras.append([k])
            continue
        current.append(k)
    if current:
        paras.append(current)
    return paras


def _only_directives(block: _Block) -> bool:
    texts = [t for t in block.inner if t]
    return bool(texts) and all(DIRECTIVE.search(t) for t in texts)


def _strip_block(lines: list[str], block: _Block) -> tuple[list[str], bool]:
    """The block's lines without licence paragraphs, and whether any were found."""
    drop: set[int] = set()
    for para in _paragraphs(block.inner):
        text = " ".join(block.inner[k] for k in para)
        if not DIRECTIVE.search(text) and is_license_text(text):
            drop.update(para)
    raw = lines[block.start : block.end + 1]
    if not drop:
        return raw, False
    kept_content = [k for k, t in enumerate(block.inner) if t and k not in drop]
    if not kept_content:
        return [], True
    last = len(raw) - 1
    # Each line becomes ("keep" | "bare" | "empty" | "drop", text). "bare" is a delimiter line
    # without content, which bounds the block like its start and end do.
    marked: list[tuple[str, str]] = []
    for k, line in enumerate(raw):
        indent = line[: len(line) - len(line.lstrip())]
        nl = "\n" if line.endswith("\n") else ""
        delim = block.opener is not None and k in (0, last)
        if k in drop:
            marked.append(("drop", ""))
            if block.opener is not None and k == 0:
                marked.append(("bare", indent + block.opener + nl))
            elif block.closer is not None and k == last:
                marked.append(("bare", indent + block.closer + nl))
        elif delim:
            marked.append(("keep" if block.inner[k] else "bare", line))
        else:
            marked.append(("keep" if block.inner[k] else "empty", line))
    # Empty comment lines around a removed paragraph collapse to one between kept paragraphs and
    # to none at the block's edges; empty lines elsewhere stay as the author wrote them.
    result: list[str] = []
    k = 0
    while k < len(marked):
        kind, line = marked[k]
        if kind in ("keep", "bare"):
            result.append(line)
            k += 1
            continue
        run_end = k
        while run_end < len(marked) and marked[run_end][0] in ("empty", "drop"):
            run_end += 1
        run = marked[k:run_end]
        if any(kd == "drop" for kd, _ in run):
            inside = k > 0 and marked[k - 1][0] == "keep"
            inside = inside and run_end < len(marked) and marked[run_end][0] == "keep"
            empties = [ln for kd, ln in run if kd == "empty"]
            if inside and empties:
                result.append(empties[0])
        else:
            result.extend(ln for _, ln in run)
        k = run_end
    return result, True


def strip_license_header(text: str, language: str | None) -> tuple[str, bool]:
    """`text` without the licence/copyright comments at its top, and whether anything went."""
    syntax = comment_syntax(language)
    if not (syntax.line or syntax.block or syntax.docstring):
        return text, False
    lines = text.splitlines(keepends=True)
    i = 0
    # Preamble lines that are kept in place and may precede the header.
    while i < len(lines) and i < 3:
        line = lines[i]
        if (
            (i == 0 and line.startswith("#!"))
            or (i <= 1 and _PEP263.match(line))
            or _PREAMBLE.match(line)
        ):
            i += 1
        else:
            break
    changed = False
    out = lines[:i]
    while i < len(lines):
        j = i
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j >= len(lines):
            break
        block = _comment_block(lines, j, syntax)
        if block is None:
            break
        new, had_license = _strip_block(lines, block)
        if not had_license:
            if not _only_directives(block):
                break
            out.extend(lines[i : block.end + 1])  # `/* eslint-disable */` may precede a licence
            i = block.end + 1
            continue
        changed = True
        if new:
            out.extend(lines[i:j])
            out.extend(new)
            i = block.end + 1
        else:  # the whole block went, and the blank lines around it: keep one after a preamble
            spaced = j > i
            i = block.end + 1
            while i < len(lines) and not lines[i].strip():
                i += 1
                spaced = True
            if spaced and out and out[-1].strip() and i < len(lines):
                out.append("\n")
    if not changed:
        return text, False
    out.extend(lines[i:])
    return "".join(out), True
