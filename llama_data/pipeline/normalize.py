"""cc_net's line normalization and 8-byte line hashes.

Two normalizations, as in cc_net (Wenzek et al., 2020):

* `normalize_line` is the *dedup* key: boilerplate such as "© 2019 Acme – All rights reserved"
  and "© 2021 ACME — all rights reserved" must hash alike, so case, digits, accents, Unicode
  punctuation and non-printing characters are folded away. ASCII punctuation is kept, as cc_net
  keeps it (it carries meaning in code and formulas).
* `normalize_for_lm` is the text the perplexity model sees: the same folding, except that Unicode
  punctuation is *replaced* by its ASCII counterpart rather than removed, so the LM still sees
  sentence boundaries.

`line_hash` takes the first 8 bytes of the SHA-1 of the normalized line as a little-endian uint64
(cc_net reads the same bytes with `np.frombuffer(..., np.uint64)`): 8 bytes per line is what the
dedup shuffle carries, and at 2^64 the chance of a false duplicate among 10^10 lines is ~3e-9.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable

# Unicode punctuation and the ASCII it stands for in LM text. cc_net's table covers CJK full-width
# forms, typographic quotes and dashes; we add the few others that are common on the web.
UNICODE_PUNCT: dict[str, str] = {
    "，": ",",
    "。": ".",
    "、": ",",
    "„": '"',
    "”": '"',
    "“": '"',
    "‟": '"',
    "«": '"',
    "»": '"',
    "」": '"',
    "「": '"',
    "《": '"',
    "》": '"',
    "『": '"',
    "』": '"',
    "´": "'",
    "‘": "'",
    "’": "'",
    "‚": "'",
    "‹": "'",
    "›": "'",
    "∶": ":",
    "：": ":",
    "？": "?",
    "！": "!",
    "（": "(",
    "）": ")",
    "；": ";",
    "–": "-",
    "—": " - ",
    "―": " - ",
    "．": ". ",
    "～": "~",
    "…": "...",
    "━": "-",
    "〈": "<",
    "〉": ">",
    "【": "[",
    "】": "]",
    "％": "%",
    "►": "-",
    "•": "-",
    "·": "-",
    "¡": "",
    "¿": "",
    "†": "",
    "‡": "",
    "§": "",
    "¶": "",
}

# C0 and C1 control characters (tab and newline included: a line never contains them after
# splitting, and inside a line they are layout, not content) plus zero-width and bidi marks.
_NON_PRINTING = (
    "".join(map(chr, [*range(0, 32), *range(127, 160)]))
    + "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"
)
_NON_PRINTING_SET = frozenset(_NON_PRINTING)


def _is_unicode_punct(ch: str) -> bool:
    """Non-ASCII punctuation (Unicode category P*) or one of cc_net's listed symbols."""
    if ch in UNICODE_PUNCT:
        return True
    return ord(ch) > 127 and unicodedata.category(ch).startswith("P")


def _fold(ch: str) -> str:
    """One (already lowercased) character without its accents: NFD minus combining marks.

    Per character this equals cc_net's NFD of the whole line followed by dropping category Mn:
    NFD only reorders combining marks, and all of them are dropped anyway.
    """
    if ch.isdecimal():  # what re's \d matches: every Unicode decimal digit
        return "0"
    if ch in _NON_PRINTING_SET:
        return ""
    return "".join(c for c in unicodedata.normalize("NFD", ch) if unicodedata.category(c) != "Mn")


class _Table(dict):
    """A translation table filled on first sight of each character: after warm-up a whole
    normalization is one `str.translate` pass in C (~10x faster than NFD + regexes per line)."""

    def __init__(self, punct: str) -> None:
        super().__init__()
        self.punct = punct  # "remove" (dedup key) or "replace" (LM text)

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        if _is_unicode_punct(ch):
            value = "" if self.punct == "remove" else _fold_all(UNICODE_PUNCT.get(ch, ""))
        else:
            value = _fold(ch)
        self[code] = value
        return value


def _fold_all(text: str) -> str:
    return "".join(_fold(c) for c in text)


_DEDUP_TABLE = _Table("remove")
_LM_TABLE = _Table("replace")


def strip_accents(text: str) -> str:
    """Decompose (NFD) and drop combining marks: "é" -> "e", "ñ" -> "n"."""
    if text.isascii():
        return text
    nfd = unicodedata.normalize("NFD", text)
    return "".join(c for c in nfd if unicodedata.category(c) != "Mn")


def normalize_line(line: str) -> str:
    """The dedup key of a line: stripped, lowercased, digits -> 0, no accents, no Unicode
    punctuation, no non-printing characters.

    An empty result means the line carries no content worth deduplicating (blank, or only
    punctuation); callers skip such lines rather than hash them.
    """
    line = line.strip()
    if not line:
        return ""
    return line.lower().translate(_DEDUP_TABLE).strip()


def normalize_for_lm(line: str) -> str:
    """What the perplexity model is trained on and scores: like the dedup key, but Unicode
    punctuation becomes ASCII (cc_net's `normalize(..., punct=1)`), so sentence marks survive."""
    line = line.strip()
    if not line:
        return ""
    return line.lower().translate(_LM_TABLE).strip()


def hash_bytes(normalized: str) -> bytes:
    """First 8 bytes of SHA-1 of the UTF-8 normalized line (the shuffle key)."""
    return hashlib.sha1(normalized.encode("utf-8", "surrogatepass")).digest()[:8]


def line_hash(normalized: str) -> int:
    """The line hash as an unsigned 64-bit integer (little-endian, as numpy reads it in cc_net)."""
    return int.from_bytes(hash_bytes(normalized), "little")


def line_hashes(lines: Iterable[str]) -> list[int | None]:
    """Hash of each line after normalization; None for lines that normalize to nothing."""
    out: list[int | None] = []
    for line in lines:
        norm = normalize_line(line)
        out.append(line_hash(norm) if norm else None)
    return out


def text_digest(text: str) -> bytes:
    """16-byte digest of a whole document after normalizing each line: the exact-dedup key.

    Normalizing first means two copies of a page that differ only in a date or in typographic
    quotes are the same document; 16 bytes keep false matches negligible at web scale.
    """
    h = hashlib.sha1()
    for line in text.split("\n"):
        norm = " ".join(normalize_line(line).split())  # removed punctuation leaves double spaces
        if norm:
            h.update(norm.encode("utf-8", "surrogatepass"))
            h.update(b"\n")
    return h.digest()[:16]
