"""Inline expansion of user macros, the part of LLaMA's arXiv recipe RedPajama cut short.

Definitions (`\\newcommand`, `\\renewcommand`, `\\providecommand`, `\\DeclareMathOperator`,
`\\def`/`\\gdef`/`\\edef`/`\\xdef`, `\\let`) are read in document order, removed from the text, and
every later use is replaced by the body with its arguments (`#1`..`#9`, an optional first
argument with its default). The result of an expansion is expanded again, as TeX does.

A paper can define a macro that never terminates (`\\def\\a{\\a}`) or doubles at each step
(`\\def\\a{\\b\\b}\\def\\b{\\c\\c}...`). Two budgets stop both: a nesting depth, and a total amount
of work (characters produced plus a cost per expansion) proportional to the input. A use that
hits the depth limit stays unexpanded; hitting the work budget leaves the rest of the text as
it is. Either way the macro is named in `errors` and the paper is still processed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from llama_data.pipeline.arxiv.latex import (
    CONTROL_WORD,
    VERBATIM_ENVS,
    env_end,
    join_tex,
    read_argument,
    read_optional,
    skip_spaces,
)

NEWCOMMANDS = frozenset({"newcommand", "renewcommand", "providecommand"})
DEFS = frozenset({"def", "gdef", "edef", "xdef"})
PREFIXES = frozenset({"long", "global", "protected", "outer"})
# Commands a user redefinition must not make disappear: the cleaner needs to see them.
PROTECTED = frozenset(
    {
        "part", "chapter", "section", "subsection", "subsubsection", "paragraph", "subparagraph",
        "addpart", "addchap", "addsec", "begin", "end", "item", "appendix", "bibliography",
        "printbibliography", "bibliographystyle", "input", "include", "subfile", "documentclass",
        "usepackage", "newcommand", "renewcommand", "providecommand", "def", "gdef", "edef", "xdef",
        "let", "DeclareMathOperator", "verb",
    }
)  # fmt: skip
_TAIL_CW = re.compile(r"\\([A-Za-z@]+)\s*$")
_PARAM = re.compile(r"#(#|[1-9])")
_DEF_PARAMS = re.compile(r"(?:#[1-9])*")
_VERB_ALT = "|".join(re.escape(e) for e in VERBATIM_ENVS)
_DEFINERS = NEWCOMMANDS | DEFS | PREFIXES | {"DeclareMathOperator", "let"}
_STOP_WORDS = (*sorted(_DEFINERS), "verb")


@dataclass(frozen=True)
class Macro:
    name: str
    nargs: int = 0
    default: str | None = None  # default of an optional first argument
    body: str = ""
    literal: bool = False  # a `\\let` copy of a built-in: substituted, never rescanned


class _DepthExceeded(Exception):
    pass


class _BudgetExceeded(Exception):
    pass


@dataclass
class MacroExpander:
    """Expands user macros in one document. Not thread-safe; make one per document."""

    max_depth: int = 32
    budget_factor: int = 20
    min_budget: int = 2_000_000
    macros: dict[str, Macro] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    defined: int = 0
    expanded: int = 0
    _budget: int = 0
    _exhausted: bool = False
    _version: int = 0
    _compiled: tuple | None = None

    def collect(self, text: str) -> str:
        """Register the definitions in `text` (a preamble) and return it without them."""
        return self._run(text, expand=False)

    def expand(self, text: str) -> str:
        """Register definitions and expand uses, in document order."""
        return self._run(text, expand=True)

    def _run(self, text: str, expand: bool) -> str:
        self._budget = max(self.min_budget, self.budget_factor * len(text))
        self._exhausted = False
        try:
            return self._scan(text, 0, expand)
        except RecursionError:  # pragma: no cover - depth limit is far below Python's
            self._error("python_recursion")
            return text

    def _error(self, what: str) -> None:
        if what not in self.errors and len(self.errors) < 50:
            self.errors.append(what)

    def _spend(self, n: int) -> None:
        self._budget -= n
        if self._budget < 0:
            raise _BudgetExceeded

    def _pattern(self, expand: bool) -> re.Pattern[str]:
        """One regex for everything the scan must stop at: definitions, verbatim, `\\verb`,
        an escaped backslash, and the macros defined so far (rebuilt when a definition is added).
        Skipping every other control word in C is what makes the scan fast."""
        live = expand and not self._exhausted
        key = (live, self._version)
        if self._compiled is None or self._compiled[0] != key:
            names = sorted(self.macros, key=len, reverse=True) if live else []
            words = "|".join(re.escape(w) for w in (*_STOP_WORDS, *names))
            self._compiled = (
                key,
                re.compile(
                    r"\\(?:(?P<bs>\\)|begin\s*\{(?P<venv>" + _VERB_ALT + r")\}"
                    r"|(?P<cw>" + words + r")(?![A-Za-z@]))"
                ),
            )
        return self._compiled[1]

    def _scan(self, text: str, depth: int, expand: bool) -> str:
        pieces: list[str] = []
        pos = 0
        n = len(text)
        while pos < n:
            m = self._pattern(expand).search(text, pos)
            if m is None:
                break
            _append(pieces, text[pos : m.start()])
            if m.group("bs"):
                pieces.append(m.group(0))
                pos = m.end()
                continue
            if m.group("venv"):
                stop = env_end(text, m.group("venv"), m.end())
                stop = n if stop < 0 else stop
                pieces.append(text[m.start() : stop])
                pos = stop
                continue
            name = m.group("cw")
            if name in _DEFINERS:
                end = self._definition(text, m.start(), name)
                if end is not None:
                    pos = end
                    continue
                pieces.append(m.group(0))
                pos = m.end()
                continue
            if name == "verb":
                if m.end() >= n:
                    pieces.append(m.group(0))
                    pos = m.end()
                    continue
                star = text[m.end()] == "*"
                delim_at = m.end() + star
                close = text.find(text[delim_at], delim_at + 1) if delim_at < n else -1
                stop = n if close < 0 else close + 1
                pieces.append(text[m.start() : stop])
                pos = stop
                continue
            macro = self.macros.get(name) if expand and not self._exhausted else None
            if macro is None:
                pieces.append(m.group(0))
                pos = m.end()
                continue
            call = self._call(text, m.end(), macro)
            if call is None:
                self._error(f"bad_arguments:\\{name}")
                pieces.append(m.group(0))
                pos = m.end()
                continue
            body, end = call
            if macro.literal:
                _append(pieces, body)
                pos = end
                continue
            body, end = self._absorb_tail_arguments(body, text, end)
            if depth == 0:
                try:
                    expansion = self._expand_one(body, depth)
                except _DepthExceeded:
                    self._error(f"recursion:\\{name}")
                    expansion = text[m.start() : end]
                except _BudgetExceeded:
                    self._error(f"expansion_budget:\\{name}")
                    self._exhausted = True
                    expansion = text[m.start() : end]
            else:
                expansion = self._expand_one(body, depth)
            _append(pieces, expansion)
            pos = end
        _append(pieces, text[pos:])
        return "".join(pieces)

    def _expand_one(self, body: str, depth: int) -> str:
        if depth + 1 > self.max_depth:
            raise _DepthExceeded
        self.expanded += 1
        self._spend(len(body) + 16)
        return self._scan(body, depth + 1, True)

    def _absorb_tail_arguments(self, body: str, text: str, end: int) -> tuple[str, int]:
        """TeX rescans an expansion *together with what follows it*: `\\newcommand{\\M}{\\mc}`
        then `\\M{x}` gives `\\mc{x}`. When a body ends with a macro that takes arguments
        (possibly through a chain of argument-free macros), its arguments are taken from the text.
        """
        for _ in range(self.max_depth):
            tail = _TAIL_CW.search(body[-256:])
            if tail is None:
                break
            target = self.macros.get(tail.group(1))
            hops = 0
            while (
                target is not None
                and target.nargs == 0
                and target.default is None
                and hops < self.max_depth
            ):
                nxt = _TAIL_CW.search(target.body[-256:])
                target = None if nxt is None or target.literal else self.macros.get(nxt.group(1))
                hops += 1
            if target is None or target.literal or (target.nargs == 0 and target.default is None):
                break
            call = self._call(text, end, target)
            if call is None:
                break
            body, end = body + text[end : call[1]], call[1]
        return body, end

    def _call(self, text: str, pos: int, macro: Macro) -> tuple[str, int] | None:
        """Read the arguments of a use at `pos`: (body with arguments substituted, end)."""
        args: list[str] = []
        if macro.default is not None:
            opt = read_optional(text, pos)
            if opt is None:
                args.append(macro.default)
            else:
                args.append(opt[0])
                pos = opt[1]
        while len(args) < macro.nargs:
            arg = read_argument(text, pos)
            if arg is None:
                return None
            args.append(arg[0])
            pos = arg[1]
        if macro.nargs == 0 and text.startswith("{}", pos):
            pos += 2  # `\foo{}` is the usual way to end an argument-free macro
        if not args:
            return macro.body, pos
        return _PARAM.sub(
            lambda p: "#" if p.group(1) == "#" else _arg(args, p.group(1)), macro.body
        ), pos

    def _definition(self, text: str, start: int, cmd: str) -> int | None:
        """Parse a definition starting at `start`; register it; return where it ends (or None)."""
        m = CONTROL_WORD.match(text, start)
        assert m is not None
        pos = m.end()
        if cmd in PREFIXES:
            nxt = CONTROL_WORD.match(text, skip_spaces(text, pos))
            if nxt is None or nxt.group(1) not in DEFS | PREFIXES:
                return None
            return self._definition(text, nxt.start(), nxt.group(1))
        star = text.startswith("*", pos)
        pos += star
        if cmd in NEWCOMMANDS or cmd == "DeclareMathOperator":
            name_arg = read_argument(text, pos)
            if name_arg is None or not CONTROL_WORD.fullmatch(name_arg[0].strip()):
                self._error(f"bad_definition:{cmd}")
                return None
            name = name_arg[0].strip()[1:]
            pos = name_arg[1]
            if cmd == "DeclareMathOperator":
                body = read_argument(text, pos)
                if body is None:
                    self._error(f"bad_definition:\\{name}")
                    return None
                op = "\\operatorname*" if star else "\\operatorname"
                self._define(Macro(name, 0, None, f"{op}{{{body[0]}}}"), cmd)
                return body[1]
            nargs = 0
            default = None
            opt = read_optional(text, pos)
            if opt is not None:
                if not opt[0].strip().isdigit() or not 0 <= int(opt[0]) <= 9:
                    self._error(f"bad_definition:\\{name}")
                    return None
                nargs, pos = int(opt[0]), opt[1]
                opt2 = read_optional(text, pos)
                if opt2 is not None and nargs > 0:
                    default, pos = opt2
            body = read_argument(text, pos)
            if body is None:
                self._error(f"bad_definition:\\{name}")
                return None
            self._define(Macro(name, nargs, default, body[0]), cmd)
            return body[1]
        if cmd == "let":
            target = CONTROL_WORD.match(text, skip_spaces(text, pos))
            if target is None:
                return None
            pos = skip_spaces(text, target.end())
            if text.startswith("=", pos):
                pos = skip_spaces(text, pos + 1)
            value = read_argument(text, pos)
            if value is None:
                return None
            name = target.group(1)
            src = self.macros.get(value[0][1:]) if value[0].startswith("\\") else None
            if src is not None:
                self._define(Macro(name, src.nargs, src.default, src.body, src.literal), cmd)
            elif value[0] != f"\\{name}":
                self._define(Macro(name, 0, None, value[0], literal=True), cmd)
            return value[1]
        # \def\name<params>{body}
        target = CONTROL_WORD.match(text, skip_spaces(text, pos))
        if target is None:
            return None
        name = target.group(1)
        pos = target.end()
        brace = text.find("{", pos)
        if brace < 0:
            self._error(f"bad_definition:\\{name}")
            return None
        params = text[pos:brace]
        body = read_argument(text, brace)
        if body is None:
            self._error(f"bad_definition:\\{name}")
            return None
        if _DEF_PARAMS.fullmatch(params) is None or params != "".join(
            f"#{i}" for i in range(1, len(params) // 2 + 1)
        ):
            # delimited parameters (\def\a#1.{...}) are TeX's own parser: drop, do not guess
            self._error(f"unsupported_def:\\{name}")
            return body[1]
        self._define(Macro(name, len(params) // 2, None, body[0]), cmd)
        return body[1]

    def _define(self, macro: Macro | None, cmd: str) -> None:
        if macro is None or macro.name in PROTECTED:
            return
        if cmd == "providecommand" and macro.name in self.macros:
            return
        self.defined += 1
        self.macros[macro.name] = macro
        self._version += 1


def _append(pieces: list[str], piece: str) -> None:
    """Append, keeping a control word at the end of the output from swallowing letters."""
    if not piece:
        return
    if pieces and piece[0].isalpha():
        last = pieces[-1]
        if join_tex(last, piece) != last + piece:
            pieces.append(" ")
    pieces.append(piece)


def _arg(args: list[str], digit: str) -> str:
    i = int(digit) - 1
    return args[i] if i < len(args) else ""
