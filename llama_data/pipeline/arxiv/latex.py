"""LaTeX scanning primitives: comments, brace groups, macro arguments, verbatim regions.

Everything here works on plain strings with explicit positions and never recurses on input
structure, so malformed input (unbalanced braces, a dangling `\\verb`) gives a "not found"
answer instead of an exception or a runaway loop.
"""

from __future__ import annotations

import re

# Environments whose content is taken literally: no comments, no macros, no \input inside.
VERBATIM_ENVS = ("verbatim", "verbatim*", "Verbatim", "Verbatim*", "lstlisting", "minted", "alltt")
# Environments that are comments themselves (the `comment` package): dropped with their content.
COMMENT_ENVS = ("comment",)

_ENV_ALT = "|".join(re.escape(e) for e in (*VERBATIM_ENVS, *COMMENT_ENVS))
# One scan over a line: an escaped character, \verb<delim>, \begin{<verbatim env>}, or a `%`.
_LINE_SCAN = re.compile(
    r"\\verb\*?(?P<delim>[^A-Za-z\s*])|\\begin\s*\{(?P<env>" + _ENV_ALT + r")\}|\\.|(?P<pct>%)"
)
CONTROL_WORD = re.compile(r"\\([A-Za-z@]+)")
_TRAILING_CW = re.compile(r"\\[A-Za-z@]+$")


def _comment_start(line: str, start: int = 0) -> tuple[int, str | None, int]:
    """(position of the comment `%` or -1, verbatim env opened on this line or None, its end pos)."""
    pos = start
    while True:
        m = _LINE_SCAN.search(line, pos)
        if m is None:
            return -1, None, -1
        if m.group("pct"):
            return m.start(), None, -1
        if m.group("delim") is not None:
            close = line.find(m.group("delim"), m.end())
            if close < 0:  # unterminated \verb: the rest of the line is literal
                return -1, None, -1
            pos = close + 1
            continue
        if m.group("env") is not None:
            return -1, m.group("env"), m.end()
        pos = m.end()


def strip_comments(text: str) -> str:
    """Remove `%` comments: not `\\%`, not in verbatim/lstlisting/minted or `\\verb`.

    A line that is only a comment disappears entirely; an inline comment is cut at the `%`.
    `comment` environments are removed with their content.
    """
    out: list[str] = []
    env: str | None = None  # the verbatim-like environment we are inside, if any
    lines = text.split("\n")
    for line in lines:
        if env is not None:
            end_tag = f"\\end{{{env}}}"
            idx = line.find(end_tag)
            if idx < 0:
                if env not in COMMENT_ENVS:
                    out.append(line)
                continue
            head, line = line[: idx + len(end_tag)], line[idx + len(end_tag) :]
            if env not in COMMENT_ENVS:
                out.append(head)
                env = None
                if not line.strip():
                    continue
                # text after \end{verbatim} continues on the same output line
                kept = _strip_line(line, out, joined=True)
                env = kept
                continue
            env = None
            if not line.strip():
                continue
        env = _strip_line(line, out)
    return "\n".join(out)


def _strip_line(line: str, out: list[str], joined: bool = False) -> str | None:
    """Append `line` without its comment to `out`; return a verbatim env it opens, if any."""
    if "%" not in line and "\\begin" not in line:
        _emit(out, line, joined)
        return None
    pos, env, env_end = _comment_start(line)
    if env is not None:
        end_tag = f"\\end{{{env}}}"
        close = line.find(end_tag, env_end)
        if env in COMMENT_ENVS:
            begin = line.rfind("\\begin", 0, env_end)
            before = line[:begin]
            if before.strip():
                _emit(out, before.rstrip(), joined)
            if close >= 0:
                rest = line[close + len(end_tag) :]
                if rest.strip():
                    return _strip_line(rest, out, joined=bool(before.strip()))
                return None
            return env
        if close >= 0:  # one-line verbatim: keep it literally, scan what follows
            head = line[: close + len(end_tag)]
            _emit(out, head, joined)
            rest = line[close + len(end_tag) :]
            return _strip_line(rest, out, joined=True) if rest else None
        _emit(out, line, joined)
        return env
    if pos < 0:
        _emit(out, line, joined)
    elif line[:pos].strip():
        _emit(out, line[:pos].rstrip(), joined)
    elif joined:
        pass
    return None


def _emit(out: list[str], piece: str, joined: bool) -> None:
    if joined and out:
        out[-1] += piece
    else:
        out.append(piece)


def group_end(text: str, open_pos: int) -> int:
    """Index just past the `}` matching the `{` at `open_pos`, or -1 if unbalanced."""
    depth = 0
    i = open_pos
    n = len(text)
    while i < n:
        j = _next_special(text, i)
        if j < 0:
            return -1
        c = text[j]
        if c == "\\":
            i = j + 2
            continue
        if c == "{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return j + 1
        i = j + 1
    return -1


_SPECIAL = re.compile(r"[\\{}]")


def _next_special(text: str, pos: int) -> int:
    m = _SPECIAL.search(text, pos)
    return -1 if m is None else m.start()


def skip_spaces(text: str, pos: int) -> int:
    """Skip blanks and at most one newline (a blank line is a paragraph break, not a space)."""
    n = len(text)
    newlines = 0
    while pos < n and text[pos] in " \t\n\r":
        if text[pos] == "\n":
            newlines += 1
            if newlines > 1:
                break
        pos += 1
    return pos


def read_argument(text: str, pos: int) -> tuple[str, int] | None:
    """A mandatory TeX argument at `pos`: a brace group (without its braces) or one token."""
    pos = skip_spaces(text, pos)
    if pos >= len(text):
        return None
    c = text[pos]
    if c == "{":
        end = group_end(text, pos)
        return None if end < 0 else (text[pos + 1 : end - 1], end)
    if c == "\\":
        m = CONTROL_WORD.match(text, pos)
        if m:
            return m.group(0), m.end()
        return (text[pos : pos + 2], pos + 2) if pos + 1 < len(text) else None
    if c in "}%#":
        return None
    return c, pos + 1


def read_optional(text: str, pos: int) -> tuple[str, int] | None:
    """An optional `[...]` argument at `pos` (brackets inside braces do not close it)."""
    pos = skip_spaces(text, pos)
    if pos >= len(text) or text[pos] != "[":
        return None
    depth = 0
    i = pos + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:
                return None
        elif c == "]" and depth == 0:
            return text[pos + 1 : i], i + 1
        i += 1
    return None


def join_tex(left: str, right: str) -> str:
    """Concatenate so that a trailing control word never swallows following letters."""
    if left and right and right[0].isalpha() and _TRAILING_CW.search(left[-64:]):
        return left + " " + right
    return left + right


def env_end(text: str, env: str, pos: int) -> int:
    """Index just past `\\end{env}` at or after `pos`, or -1."""
    m = re.compile(r"\\end\s*\{" + re.escape(env) + r"\}").search(text, pos)
    return -1 if m is None else m.end()
