"""A paper's files -> one flattened LaTeX source: decoding, main file, \\input resolution.

Resolution stays inside the paper's own files (a name that leaves the project, like
`../../etc/passwd`, is simply missing), is bounded in depth and total size (a file that inputs
another twice, ten levels deep, must not blow up), and detects cycles.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from llama_data.pipeline.arxiv.clean import BEGIN_DOC_RE, END_DOC_RE
from llama_data.pipeline.arxiv.latex import group_end, strip_comments

TEX_EXTS = (".tex", ".ltx", ".latex")
DOCCLASS_RE = re.compile(r"\\documentclass(?![A-Za-z@])|\\documentstyle(?![A-Za-z@])")
# \input{x}, \input x, \include{x}, \subfile{x}, \import{dir}{x}, \subimport{dir}{x}
INPUT_RE = re.compile(
    r"\\(?P<cmd>input|include|subfile|subfileinclude|import|subimport|inputfrom|subinputfrom"
    r"|includefrom|subincludefrom)(?![A-Za-z@])\*?\s*"
)
_BARE_NAME = re.compile(r"[^\s{}\\%]+")
_ENDINPUT_RE = re.compile(r"\\endinput(?![A-Za-z@])")
_INPUTENC_RE = re.compile(rb"\\usepackage\s*\[([^\]]*)\]\s*\{inputenc\}")
# inputenc option -> Python codec, for LaTeX sources that declare their 8-bit encoding.
_INPUTENC = {
    b"latin1": "latin-1", b"latin9": "iso8859-15", b"latin2": "iso8859-2", b"latin5": "iso8859-9",
    b"ansinew": "cp1252", b"cp1252": "cp1252", b"cp1250": "cp1250", b"cp1251": "cp1251",
    b"koi8-r": "koi8-r", b"cp866": "cp866", b"applemac": "mac-roman", b"utf8": "utf-8",
    b"utf8x": "utf-8", b"cp850": "cp850", b"cp437": "cp437", b"ascii": "ascii",
}  # fmt: skip


def decode_latex(data: bytes) -> tuple[str, str]:
    """(text, encoding): UTF-8 first, then the declared inputenc, then a byte-statistics guess.

    Old arXiv sources are often latin-1/cp1252 (or koi8-r, cp1251 for Russian). A source that
    is valid UTF-8 is UTF-8; otherwise the `inputenc` option names the encoding; otherwise
    charset-normalizer guesses, and latin-1 (which never fails) is the last resort.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    for m in _INPUTENC_RE.finditer(data[:65536]):
        for opt in m.group(1).split(b","):
            codec = _INPUTENC.get(opt.strip().lower())
            if codec:
                try:
                    return data.decode(codec), codec
                except UnicodeDecodeError:
                    continue
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:200_000]).best()
        if best is not None and best.encoding not in ("utf_8", "ascii"):
            return data.decode(best.encoding), best.encoding
    except (ImportError, LookupError, UnicodeDecodeError):
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def is_text(data: bytes) -> bool:
    return b"\x00" not in data[:8192]


@dataclass
class Project:
    """A paper's files: raw bytes by normalised relative path, decoded lazily without comments."""

    files: Mapping[str, bytes]
    _text: dict[str, str] = field(default_factory=dict)
    encodings: dict[str, str] = field(default_factory=dict)

    def text(self, name: str) -> str:
        if name not in self._text:
            raw, enc = decode_latex(self.files[name])
            if enc != "utf-8":
                self.encodings[name] = enc
            self._text[name] = strip_comments(raw)
        return self._text[name]

    def tex_files(self) -> list[str]:
        names = [n for n in self.files if n.lower().endswith(TEX_EXTS) and is_text(self.files[n])]
        return sorted(names)

    def lookup(self, ref: str, base_dir: str) -> str | None:
        """The project file `ref` names, seen from `base_dir` (LaTeX adds `.tex` when absent)."""
        ref = ref.strip().strip('"')
        if not ref:
            return None
        for root in (base_dir, ""):
            path = posixpath.normpath(posixpath.join(root, ref))
            if path.startswith("../") or path == ".." or path.startswith("/"):
                continue
            for cand in (path, path + ".tex"):
                if cand in self.files and is_text(self.files[cand]):
                    return cand
        return None


@dataclass(frozen=True)
class InputRef:
    cmd: str
    ref: str
    start: int
    end: int


def input_refs(text: str) -> list[InputRef]:
    """The \\input-like commands of a (comment-free) text, with their spans."""
    refs: list[InputRef] = []
    for m in INPUT_RE.finditer(text):
        cmd, pos = m.group("cmd"), m.end()
        args: list[str] = []
        need = (
            2
            if cmd
            in ("import", "subimport", "inputfrom", "subinputfrom", "includefrom", "subincludefrom")
            else 1
        )
        while len(args) < need:
            while pos < len(text) and text[pos] in " \t":
                pos += 1
            if pos < len(text) and text[pos] == "{":
                end = group_end(text, pos)
                if end < 0:
                    break
                args.append(text[pos + 1 : end - 1])
                pos = end
            elif cmd == "input" and need == 1:
                bare = _BARE_NAME.match(text, pos)  # TeX primitive syntax: \input file
                if bare is None:
                    break
                args.append(bare.group(0))
                pos = bare.end()
            else:
                break
        if len(args) == need:
            ref = args[0] if need == 1 else posixpath.join(args[0], args[1])
            refs.append(InputRef(cmd, ref, m.start(), pos))
    return refs


def find_main(project: Project) -> str | None:
    """The main file: has `\\documentclass` and `\\begin{document}`.

    With several candidates (a paper plus its cover letter, subfiles with their own preamble):
    drop those another candidate inputs, then prefer the one that pulls in the most project
    files, then the largest, then the name (for determinism).
    """
    tex = project.tex_files()
    if not tex:
        return None
    full = [
        n
        for n in tex
        if DOCCLASS_RE.search(project.text(n)) and BEGIN_DOC_RE.search(project.text(n))
    ]
    candidates = full or [n for n in tex if BEGIN_DOC_RE.search(project.text(n))]
    candidates = candidates or [n for n in tex if DOCCLASS_RE.search(project.text(n))]
    if not candidates:
        return tex[0] if len(tex) == 1 else None
    if len(candidates) == 1:
        return candidates[0]
    reach = {c: _reachable(project, c) for c in candidates}
    included = {c for c in candidates for other in candidates if other != c and c in reach[other]}
    roots = [c for c in candidates if c not in included] or candidates
    return min(roots, key=lambda c: (-len(reach[c]), -len(project.files[c]), c))


def _reachable(project: Project, name: str, limit: int = 10_000) -> set[str]:
    seen: set[str] = set()
    stack = [name]
    while stack and len(seen) < limit:
        cur = stack.pop()
        base = posixpath.dirname(cur)
        for ref in input_refs(project.text(cur)):
            target = project.lookup(ref.ref, base)
            if target is not None and target not in seen and target != name:
                seen.add(target)
                stack.append(target)
    return seen


@dataclass
class Flattened:
    text: str
    missing: list[str] = field(default_factory=list)
    cycles: list[str] = field(default_factory=list)
    too_deep: list[str] = field(default_factory=list)
    truncated: bool = False
    files_used: int = 0


def _body_of_subfile(text: str) -> str:
    """A subfile/standalone file has its own preamble: keep only its document body."""
    if DOCCLASS_RE.search(text) and (b := BEGIN_DOC_RE.search(text)):
        rest = text[b.end() :]
        e = END_DOC_RE.search(rest)
        return rest if e is None else rest[: e.start()]
    return text


def flatten(
    project: Project,
    main: str,
    max_depth: int = 16,
    max_chars: int = 64 << 20,
    max_files: int = 10_000,
) -> Flattened:
    """Inline every \\input/\\include/\\subfile of `main`, recursively, bounded."""
    result = Flattened("")
    budget = [max_chars]

    def inline(name: str, stack: tuple[str, ...], root: bool) -> str:
        result.files_used += 1
        text = project.text(name)
        if not root:
            text = _body_of_subfile(text)
        end = _ENDINPUT_RE.search(text)
        if end is not None:
            text = text[: end.start()]
        # Every inlined copy costs its size (plus a floor), so fan-out bombs stop early too.
        budget[0] -= len(text) + 64
        if budget[0] < 0 or result.files_used > max_files:
            result.truncated = True
            return ""
        out: list[str] = []
        pos = 0
        base = posixpath.dirname(main)
        own_dir = posixpath.dirname(name)
        for ref in input_refs(text):
            out.append(text[pos : ref.start])
            pos = ref.end
            sub_base = (
                own_dir
                if ref.cmd.startswith(("sub", "import")) or ref.cmd.endswith("from")
                else base
            )
            target = project.lookup(ref.ref, sub_base) or project.lookup(ref.ref, own_dir)
            if target is None:
                if len(result.missing) < 50 and not ref.ref.lower().endswith(
                    (".bbl", ".pstex_t", ".pdf_t")
                ):
                    result.missing.append(ref.ref)
                continue
            if target in stack:
                result.cycles.append(" -> ".join((*stack, target)))
                continue
            if len(stack) >= max_depth:
                result.too_deep.append(target)
                continue
            piece = inline(target, (*stack, target), False)
            if result.truncated:
                break
            out.append(("\n" if ref.cmd.startswith("include") else "") + piece)
        if not result.truncated:
            out.append(text[pos:])
        return "".join(out)

    result.text = inline(main, (main,), True)
    return result
