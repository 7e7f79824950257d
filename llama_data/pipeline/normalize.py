"""cc_net's two normalizations, character for character, and its 8-byte line hashes.

cc_net (Wenzek et al., 2020; `cc_net/text_normalizer.py`) normalizes text twice, differently:

* `normalize_line` is cc_net's `normalize_for_dedup`, the key of the line dedup: stripped,
  lowercased, every Unicode decimal digit turned into `0`, then cc_net's own set of Unicode
  punctuation (`UNICODE_PUNCT`'s keys, below) and the control characters U+0000-U+001F and
  U+007F-U+009F removed. Accents are *kept* ("café" and "cafe" are different lines) and so is
  every other punctuation mark, ASCII or not. Nothing is stripped after the removals.
* `normalize_for_lm` is cc_net's `normalize` with its defaults, what SentencePiece and the
  KenLM model see: stripped, lowercased, accents removed (NFD, combining marks of category Mn
  dropped), digits to `0`, the same punctuation *replaced* by its ASCII counterpart, control
  characters removed. cc_net applies it to the whole document, so its newlines go with the
  other control characters and a page becomes one line (see `ccnet/perplexity.py`).

The conformance suite (`tests/conformance/test_ccnet.py`) holds both to cc_net's own functions
on every line of the sample corpus.

Speed: each is one `str.translate` pass through a table filled on first sight of a character,
instead of cc_net's regex passes. That is exact because every step after `lower()` acts on
characters one at a time, except the canonical reordering inside NFD; it can only change the
result when a text holds one of the few characters whose decomposition keeps a combining mark
that is not Mn, and such texts take cc_net's whole-string path (`_REORDERING`).

`packed_line_hashes`, the line dedup's hot loop, runs in C where the extension in
`llama_data/pipeline/kernels` was built (it is at install when a C compiler is present), else in
Python (`packed_line_hashes_py`); the bytes are the same (tests/test_linehash_kernel.py).

`line_hash` takes the first 8 bytes of the SHA-1 of the normalized line as a little-endian uint64
(cc_net reads the same bytes with `np.frombuffer(..., np.uint64)`).
"""

from __future__ import annotations

import hashlib
import re
import sys
import unicodedata
from collections.abc import Callable

# cc_net's Unicode punctuation and the ASCII each stands for in LM text. `normalize_line` removes
# these characters; `normalize_for_lm` replaces them. ("１" is there in cc_net too, but digits
# become "0" before punctuation is looked at, so it never applies.)
UNICODE_PUNCT: dict[str, str] = {
    "，": ",",
    "。": ".",
    "、": ",",
    "„": '"',
    "”": '"',
    "“": '"',
    "«": '"',
    "»": '"',
    "１": '"',
    "」": '"',
    "「": '"',
    "《": '"',
    "》": '"',
    "´": "'",
    "∶": ":",
    "：": ":",
    "？": "?",
    "！": "!",
    "（": "(",
    "）": ")",
    "；": ";",
    "–": "-",
    "—": " - ",
    "．": ". ",
    "～": "~",
    "’": "'",
    "…": "...",
    "━": "-",
    "〈": "<",
    "〉": ">",
    "【": "[",
    "】": "]",
    "％": "%",
    "►": "-",
}

# C0 and C1 control characters (tab and newline included), as cc_net's NON_PRINTING_CHARS_RE.
NON_PRINTING = frozenset(map(chr, [*range(0, 32), *range(127, 160)]))


def _dedup_value(ch: str) -> str:
    if ch.isdecimal():  # what re's \d matches: every Unicode decimal digit (category Nd)
        return "0"
    if ch in UNICODE_PUNCT or ch in NON_PRINTING:
        return ""
    return ch


def _lm_value(text: str) -> str:
    """cc_net's `normalize` steps after `lower()`, on an already lowercased string."""
    nfd = unicodedata.normalize("NFD", text)
    out = []
    for c in nfd:
        if unicodedata.category(c) == "Mn":
            continue
        if c.isdecimal():
            c = "0"
        c = UNICODE_PUNCT.get(c, c)
        out.append("".join(x for x in c if x not in NON_PRINTING))
    return "".join(out)


class _Table(dict):
    """A `str.translate` table filled on first sight of each character."""

    def __init__(self, value) -> None:  # noqa: ANN001
        super().__init__()
        self.value = value

    def __missing__(self, code: int) -> str:
        value = self[code] = self.value(chr(code))
        return value


_DEDUP_TABLE = _Table(_dedup_value)
_LM_TABLE = _Table(_lm_value)


def _reordering_chars() -> str:
    """Characters whose NFD keeps a combining mark (ccc != 0) that is not Mn: NFD reorders such
    marks across character boundaries, which a per-character table cannot (38 in Unicode 14)."""
    found = []
    for code in range(0x300, sys.maxunicode + 1):
        ch = chr(code)
        if unicodedata.combining(ch) or unicodedata.decomposition(ch):
            nfd = unicodedata.normalize("NFD", ch)
            if any(unicodedata.combining(c) and unicodedata.category(c) != "Mn" for c in nfd):
                found.append(ch)
    return "".join(found)


# `_reordering_chars()` of the Unicode version Python 3.11 ships, written out: scanning the whole
# code space for them took ~0.1-0.3 s of every run that scores a page (a test holds the two equal)
_REORDERING_UNICODE = "14.0.0"
_REORDERING_CHARS = (
    "\u1715\u1734\u1b44\u1baa\u1bf2\u1bf3\u302e\u302f\ua953\ua9c0\U000111c0\U00011235"
    "\U0001134d\U000116b6\U0001193d\U00016ff0\U00016ff1\U0001d15e\U0001d15f\U0001d160"
    "\U0001d161\U0001d162\U0001d163\U0001d164\U0001d165\U0001d166\U0001d16d\U0001d16e"
    "\U0001d16f\U0001d170\U0001d171\U0001d172\U0001d1bb\U0001d1bc\U0001d1bd\U0001d1be"
    "\U0001d1bf\U0001d1c0"
)
_REORDERING: re.Pattern[str] | None = None
_REORDERING_LEADS: tuple[bytes, ...] = ()


def _needs_whole_string_nfd(text: str) -> bool:
    """Whether `text` holds one of the reordering characters. The regex alone scans a page at
    ~25 ns a character (its class mixes BMP and astral characters); first the UTF-8 lead bytes
    of those characters (4 bytes: U+1000-1FFF, U+3000-3FFF, U+A000-AFFF and the astral planes;
    not general punctuation's, Latin-1's, Cyrillic's or Arabic's) are looked for with
    `bytes.__contains__`, and only a page holding one goes to the regex."""
    global _REORDERING, _REORDERING_LEADS
    if text.isascii():
        return False
    if _REORDERING is None:
        chars = (
            _REORDERING_CHARS
            if unicodedata.unidata_version == _REORDERING_UNICODE
            else _reordering_chars()
        )
        _REORDERING_LEADS = tuple(sorted({c.encode("utf-8")[:1] for c in chars}))
        _REORDERING = re.compile(f"[{re.escape(chars)}]")
    data = text.encode("utf-8", "surrogatepass")
    if not any(lead in data for lead in _REORDERING_LEADS):
        return False
    return _REORDERING.search(text) is not None


def strip_accents(text: str) -> str:
    """cc_net's `strip_accents`: NFD, then combining marks of category Mn dropped."""
    if text.isascii():
        return text
    nfd = unicodedata.normalize("NFD", text)
    return "".join(c for c in nfd if unicodedata.category(c) != "Mn")


def normalize_line(line: str) -> str:
    """cc_net's `normalize_for_dedup`: the line dedup key (may be empty: "" is hashed too)."""
    line = line.strip()
    if not line:
        return line
    return line.lower().translate(_DEDUP_TABLE)


def normalize_for_lm(text: str) -> str:
    """cc_net's `normalize(text)` with its defaults (accents, case, digits, punct=1)."""
    text = text.strip()
    if not text:
        return text
    text = text.lower()
    if _needs_whole_string_nfd(text):
        return _lm_value(text)
    return text.translate(_LM_TABLE)


def hash_bytes(normalized: str) -> bytes:
    """First 8 bytes of SHA-1 of the UTF-8 normalized line (cc_net's line hash)."""
    return hashlib.sha1(normalized.encode("utf-8", "surrogatepass")).digest()[:8]


# `normalize_line`'s character map as two regex substitutions over a whole document (its lines
# stripped first): every decimal digit but "0" becomes "0" (re's \d is category Nd, as
# str.isdecimal), and cc_net's punctuation and the control characters other than the newline
# go. "１" is a digit before it is punctuation (`_dedup_value`), so the digit pass takes it.
_DIGITS_RE = re.compile(r"[^\D0]")
_REMOVED_CHARS = "".join(c for c in UNICODE_PUNCT if not c.isdecimal()) + "".join(
    c for c in sorted(NON_PRINTING) if c != "\n"
)
_REMOVED_RE = re.compile("[" + "".join(re.escape(c) for c in _REMOVED_CHARS) + "]")
# the same for ASCII text, as a bytes.translate table and its deletions
_ASCII_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_ASCII_DELETE = bytes(c for c in range(128) if chr(c) in NON_PRINTING and chr(c) != "\n")
_ASCII_TABLE = {
    **{ord(d): "0" for d in "123456789"},
    **{c: None for c in _ASCII_DELETE},
}


def _normalized_lines(text: str) -> str:
    """`normalize_line` of every line of `text`, joined by newlines, computed a document at a
    time: each line is stripped, the stripped lines are joined again and the document is
    lowercased and mapped in one pass (two regex substitutions). That is the same text line for
    line: lowercasing never crosses a newline (a newline is not case-ignorable, so even the
    final-sigma rule sees line ends as it does alone) and the map acts on single characters and
    keeps the newline."""
    joined = "\n".join([line.strip() for line in text.split("\n")]).lower()
    if joined.isascii():
        return joined.translate(_ASCII_TABLE)
    return _REMOVED_RE.sub("", _DIGITS_RE.sub("0", joined))


def packed_line_hashes_py(text: str) -> bytes:
    """cc_net's 8-byte hash of every line of `text` (blank lines too), concatenated: exactly
    `hash_bytes(normalize_line(line))` for each line, but normalized a document at a time
    (`_normalized_lines`; ASCII pages through `bytes.translate`). The Python path of
    `packed_line_hashes`, used where the compiled kernel was not built.

    Normalizing and hashing is most of the line dedup's work (~850k lines in a 40 MB sample);
    line by line, `str.translate` through a dict costs ~50 ns a character and a Python call per
    line as much again. A UTF-8 newline byte never occurs inside another character's encoding,
    so the encoded document splits into the encoded lines."""
    joined = "\n".join([line.strip() for line in text.split("\n")]).lower()
    if joined.isascii():
        data = joined.encode("ascii").translate(_ASCII_DIGITS, _ASCII_DELETE)
    else:
        mapped = _REMOVED_RE.sub("", _DIGITS_RE.sub("0", joined))
        data = mapped.encode("utf-8", "surrogatepass")
    sha1 = hashlib.sha1
    return b"".join([sha1(line).digest()[:8] for line in data.split(b"\n")])


def _load_kernel() -> Callable[[str], bytes] | None:
    """The compiled `packed_line_hashes` (llama_data/pipeline/kernels), told which characters
    the normalization removes (the same set as `_REMOVED_RE`'s), or None where it was not built."""
    try:
        from llama_data.pipeline.kernels import _linehash
    except ImportError:
        return None
    _linehash.set_removed(_REMOVED_CHARS)
    return _linehash.packed_line_hashes


_KERNEL = _load_kernel()


def packed_line_hashes(text: str) -> bytes:
    """cc_net's 8-byte hash of every line of `text` (blank lines too), concatenated: exactly
    `hash_bytes(normalize_line(line))` for each line. Computed by the C kernel when it was built
    (one pass over the str, ~5x less CPU than `packed_line_hashes_py` on the benchmark's WET
    pages, the same bytes), else by `packed_line_hashes_py`."""
    if _KERNEL is not None:
        return _KERNEL(text)
    return packed_line_hashes_py(text)


def line_hash(normalized: str) -> int:
    """The line hash as an unsigned 64-bit integer (little-endian, as numpy reads it in cc_net)."""
    return int.from_bytes(hash_bytes(normalized), "little")


def text_digest(text: str) -> bytes:
    """16-byte digest of a whole document after normalizing each line: the exact-dedup key
    (ours: cc_net has no document dedup). Lines normalizing to nothing are skipped and
    whitespace is collapsed, so two copies differing in a date or in layout are one document.

    The SHA-1 of each kept line followed by a newline, fed line by line, is the SHA-1 of those
    lines joined by newlines plus a final one; the lines come from `_normalized_lines`."""
    kept = [
        n for n in (" ".join(line.split()) for line in _normalized_lines(text).split("\n")) if n
    ]
    if not kept:
        return hashlib.sha1().digest()[:16]
    return hashlib.sha1(("\n".join(kept) + "\n").encode("utf-8", "surrogatepass")).digest()[:16]
