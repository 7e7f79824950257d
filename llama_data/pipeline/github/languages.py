"""Which files count as source code, what language they are, and how that language comments.

The allow-list is the single place that decides which files of a repository are worth training on:
programming languages, their build files, and the markup that documents them (Markdown, reST,
HTML, TeX). Data formats (JSON, YAML, CSV, SVG), lockfiles and binary assets are left out: they
are mostly machine-written and teach a model little about code. Every extension of RedPajama-v1's
published whitelist is on it (tests/conformance/test_github.py checks); the languages it lacks
(Kotlin, Swift, Dart, CUDA, ...) are added. The comment syntax of each
language is what the header stripper needs to tell a licence comment from code: a `#` line is a
comment in Python but a preprocessor directive in C and a heading in Markdown.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass


@dataclass(frozen=True)
class CommentSyntax:
    """Line-comment prefixes, block-comment delimiter pairs, and whether docstrings count."""

    line: tuple[str, ...] = ()
    block: tuple[tuple[str, str], ...] = ()
    docstring: bool = False


C_STYLE = CommentSyntax(line=("//",), block=(("/*", "*/"),))
CSS = CommentSyntax(block=(("/*", "*/"),))
HASH = CommentSyntax(line=("#",))
PYTHON = CommentSyntax(line=("#",), docstring=True)
SQL = CommentSyntax(line=("--",), block=(("/*", "*/"),))
LUA = CommentSyntax(line=("--",), block=(("--[[", "]]"),))
HASKELL = CommentSyntax(line=("--",), block=(("{-", "-}"),))
MARKUP = CommentSyntax(block=(("<!--", "-->"),))
PERCENT = CommentSyntax(line=("%",))
SEMICOLON = CommentSyntax(line=(";",))
PHP = CommentSyntax(line=("//", "#"), block=(("/*", "*/"),))
NONE = CommentSyntax()

# language -> (comment syntax, extensions). Extensions are matched lower-cased, longest first.
_LANGUAGES: dict[str, tuple[CommentSyntax, tuple[str, ...]]] = {
    "Assembly": (SEMICOLON, (".asm", ".s")),
    "Batchfile": (NONE, (".bat", ".cmd")),
    "C": (C_STYLE, (".c", ".h")),
    "C#": (C_STYLE, (".cs",)),
    "C++": (C_STYLE, (".cpp", ".cc", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++", ".ipp")),
    "CMake": (HASH, (".cmake",)),
    "CSS": (CSS, (".css", ".scss", ".less")),
    "Clojure": (SEMICOLON, (".clj", ".cljs", ".cljc")),
    "CUDA": (C_STYLE, (".cu", ".cuh")),
    "Dart": (C_STYLE, (".dart",)),
    "Dockerfile": (HASH, (".dockerfile",)),
    "Elixir": (HASH, (".ex", ".exs")),
    "Erlang": (PERCENT, (".erl", ".hrl")),
    "Fortran": (NONE, (".f", ".f77", ".f90", ".f95", ".f03", ".f08", ".for", ".fpp")),
    "Go": (C_STYLE, (".go",)),
    "Groovy": (C_STYLE, (".groovy", ".gradle")),
    "HTML": (MARKUP, (".html", ".htm")),
    "Haskell": (HASKELL, (".hs",)),
    "Java": (C_STYLE, (".java",)),
    "JavaScript": (C_STYLE, (".js", ".jsx", ".mjs", ".cjs")),
    "Julia": (HASH, (".jl",)),
    "Kotlin": (C_STYLE, (".kt", ".kts")),
    "Lua": (LUA, (".lua",)),
    "Makefile": (HASH, (".mk", ".mak")),
    "Markdown": (MARKUP, (".md", ".markdown")),
    "Objective-C": (C_STYLE, (".m", ".mm")),
    "OCaml": (CommentSyntax(block=(("(*", "*)"),)), (".ml", ".mli")),
    "PHP": (PHP, (".php", ".php3", ".php4", ".php5", ".phps", ".phpt")),
    "Perl": (HASH, (".pl", ".pm", ".perl")),
    "Pod": (NONE, (".pod",)),
    "PowerShell": (HASH, (".ps1", ".psm1", ".psd1")),
    "Python": (PYTHON, (".py", ".pyi", ".pyx")),
    "R": (HASH, (".r",)),
    "Ruby": (HASH, (".rb", ".rake", ".gemspec")),
    "Rust": (C_STYLE, (".rs",)),
    "SQL": (SQL, (".sql",)),
    "Scala": (C_STYLE, (".scala", ".sc")),
    "Shell": (HASH, (".sh", ".bash", ".zsh", ".command")),
    "Smali": (HASH, (".smali",)),
    "Swift": (C_STYLE, (".swift",)),
    "TeX": (PERCENT, (".tex", ".sty", ".cls")),
    "TypeScript": (C_STYLE, (".ts", ".tsx")),
    "Vim script": (NONE, (".vim",)),
    "Visual Basic": (NONE, (".vb",)),
    "XML": (MARKUP, (".xml",)),
    "reStructuredText": (NONE, (".rst",)),
}

# Files recognised by their whole name (no useful extension).
_FILENAMES: dict[str, str] = {
    "makefile": "Makefile",
    "gnumakefile": "Makefile",
    "dockerfile": "Dockerfile",
    "cmakelists.txt": "CMake",
    "rakefile": "Ruby",
    "gemfile": "Ruby",
    "vagrantfile": "Ruby",
    "build": "Starlark",
    "build.bazel": "Starlark",
    "workspace": "Starlark",
}
_STARLARK = (HASH, (".bzl",))

EXTENSION_LANGUAGE: dict[str, str] = {
    ext: lang for lang, (_, exts) in _LANGUAGES.items() for ext in exts
} | dict.fromkeys(_STARLARK[1], "Starlark")
LANGUAGE_SYNTAX: dict[str, CommentSyntax] = {
    lang: syntax for lang, (syntax, _) in _LANGUAGES.items()
} | {"Starlark": _STARLARK[0]}
ALLOWED_EXTENSIONS: frozenset[str] = frozenset(EXTENSION_LANGUAGE)
"""The documented allow-list: every extension above (and the file names in `_FILENAMES`)."""


def language_of(path: str) -> str | None:
    """The language a path's name or extension says, or None when it is not on the allow-list.

    Extensions (the part after the last dot) compare lower-cased, so `.C`/`.H` count as C (GitHub's `.C` C++ files are rare).
    """
    name = posixpath.basename(path).lower()
    if name in _FILENAMES:
        return _FILENAMES[name]
    if name.startswith("dockerfile."):
        return "Dockerfile"
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:  # no extension, or a dot file like `.bashrc`
        return None
    return EXTENSION_LANGUAGE.get("." + ext)


def comment_syntax(language: str | None) -> CommentSyntax:
    return LANGUAGE_SYNTAX.get(language or "", NONE)


def allowed_names() -> list[str]:
    """Every allowed extension and file name, sorted: what docs/github.md lists."""
    return sorted(ALLOWED_EXTENSIONS) + sorted(_FILENAMES)
