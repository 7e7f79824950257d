"""The compiled line hashing (`llama_data.pipeline.kernels._linehash`) against its Python twin.

`normalize.packed_line_hashes` runs the C kernel when it was built and `packed_line_hashes_py`
otherwise; both must give the same bytes for every str, or the line dedup (and the frozen
outputs) would depend on whether the install had a compiler. The Python path is itself held to
`hash_bytes(normalize_line(line))` in test_ccnet.py and to cc_net in the conformance suite."""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
from pathlib import Path

import pytest

from llama_data.pipeline import kernels, normalize
from llama_data.pipeline.document import Document
from llama_data.pipeline.normalize import UNICODE_PUNCT, packed_line_hashes_py

REPO = Path(__file__).resolve().parents[1]
WET = REPO.parent / "shared" / "corpus" / "commoncrawl" / "pages.warc.wet.gz"

# the characters str.lower() and str.strip() treat specially, cc_net's punctuation, digits of
# several scripts, controls (C0, C1; some are whitespace to str.strip, some not), lone
# surrogates and astral characters, in the positions that matter: a line's ends, alone, repeated
EDGE_CASES = [
    "",
    "\n",
    "\n\n\n",
    "a",
    "A\n",
    "\nB",
    "\r",
    "\r\n",
    "x\r\ny\r\n",
    "\r\n\r\nz\r",
    " \t a \t ",
    " \x1c a \x1c\n\x85x\x85",
    "\x1c\x1d\x1e\x1f",
    " \x01 a\t \n\x7f\x9f€ \x01",
    "\x00\x08\x0b\x0c\x0e\x1b\x7f\x80\x9f\xa0",
    "x\x0by\x0cz\n0123456789",
    " \u3000x\u3000 \n\xa0y\xa0",
    "\u2028a\u2029\n\u2000b\u200a\n\u205fc\u1680\n\u200bd\u200b\n\ufeffe\ufeff",
    "İstanbul ١٢٣ ５ １\nǅ ß ﬃ",
    "İ",
    "İİ\nxİy",
    "ΟΔΟΣ\nΣ\nαΣ\nΣα ΑΣ.",
    "ΑΣ",
    "Σ",
    "ΣΣ",
    "ΑΣΣ",
    "ΑΣ'Β",
    "ΑΣ'",
    "Α'Σ",
    "Α\u0301Σ",
    "ΑΣ\u0301",
    "ΑΣ\u0301Β",
    "\u02b0Σ",  # a modifier letter: case-ignorable and cased, so no cased letter precedes
    "\u0345Σ\nΑΣ\u02b0\nΑ\u02b0Σ\u02b0Β",
    "ΑΣ \nΣΑ",
    " ΑΣ \n ΣΑ ",
    "ΑΣ\n",
    "\nΣ",
    "ΑΣ1",
    "ΑΣ…Β",
    "a\ud800b",
    "\udc00\ud800\n\udfff",
    "\ud83d\ude00",
    "😀 𝟘𝟙𝟚 𐐀𐐨 \U0001e900\U0001e922",
    "“Hi” — 12… ”\n …  x  « »",
    "".join(UNICODE_PUNCT),
    "\n".join(UNICODE_PUNCT),
    "０１２３４５６７８９ ٠١٢٣٤٥٦٧٨٩ ०१२३४५६७८९ ๐๑๒๓๔๕๖๗๘๙ ߀߁ 𝟎𝟏 ¹²³ ½ Ⅻ",
    "ÀÉÎÕÜ àéîõü ÆØÅ Ÿ µ ÿ",
    "ДОБРО ПОЖАЛОВАТЬ\nдобро",
    "中文，测试。「引号」【括号】（１２３）",
    "x" * 55 + "\n" + "y" * 56 + "\n" + "z" * 64 + "\n" + "w" * 119 + "\n" + "v" * 120,
    "é" * 1000,
    "Ω" * 5000 + "\n" + "𐐀" * 3000,
]


def _kernel():  # noqa: ANN202
    if not kernels.available():
        pytest.fail(
            "llama_data/pipeline/kernels/_linehash was not built: `make install` (pip install -e "
            "'.[dev]') compiles it with the system C compiler; without it the line dedup runs "
            "~5x slower (see llama_data/pipeline/kernels/__init__.py)"
        )
    return normalize._KERNEL


def test_the_kernel_is_built_and_used() -> None:
    """`make test` runs where gcc is: the extension must have been built and be the one
    `packed_line_hashes` calls, so the speed is never lost without notice."""
    kernel = _kernel()
    assert kernel is not None
    from llama_data.pipeline.kernels import _linehash

    assert kernel is _linehash.packed_line_hashes


@pytest.mark.parametrize("text", EDGE_CASES)
def test_edge_cases(text: str) -> None:
    assert _kernel()(text) == packed_line_hashes_py(text)
    assert normalize.packed_line_hashes(text) == packed_line_hashes_py(text)


def test_every_code_point() -> None:
    """Each code point alone on a line, between cased letters, and after spaces at a line's
    ends: lowering, digits, removals, stripping and UTF-8 (surrogates included) of every
    character, the same in C as in Python."""
    kernel = _kernel()
    chars = [chr(c) for c in range(sys.maxunicode + 1)]
    for text in (
        "\n".join(chars),
        "\n".join("A" + c + "b" for c in chars),
        "\n".join(" " + c + "x" + c + " " for c in chars),
        "".join(chars),
    ):
        assert kernel(text) == packed_line_hashes_py(text)


def test_sha1_against_hashlib() -> None:
    """The C SHA-1 on lines of every length around the block and padding boundaries (55/56,
    64, 119/120 bytes) and on long ones; these lines normalize to themselves."""
    kernel = _kernel()
    rng = random.Random(1)
    for length in [*range(300), 1000, 4095, 4096, 65537]:
        line = "".join(rng.choice("abcdefghij-=+") for _ in range(length))
        assert kernel(line) == hashlib.sha1(line.encode()).digest()[:8], length
        assert kernel(line + "\n" + line) == 2 * hashlib.sha1(line.encode()).digest()[:8]


# what random documents are drawn from: ASCII and its controls, Latin-1, Greek (capital sigma
# and the case-ignorable marks around it), Cyrillic, CJK, digits of several scripts, every
# UNICODE_PUNCT key, C1 controls, Unicode whitespace, lone surrogates and astral characters
POOLS = [
    [chr(c) for c in range(0x20, 0x7F)] + ["\n"] * 8 + [" "] * 8,
    [chr(c) for c in range(0x00, 0x20)] + ["\x7f"],
    [chr(c) for c in range(0xA0, 0x100)],
    [chr(c) for c in range(0x370, 0x400) if chr(c).isprintable()] + ["Σ"] * 20 + ["ς", "σ"],
    ["'", "\u0301", "\u00ad", "\u02b0", "."],
    [chr(c) for c in range(0x400, 0x460)],
    [chr(c) for c in range(0x4E00, 0x4E80)] + [chr(c) for c in range(0x3000, 0x3020)],
    [c for c in map(chr, range(0x10000)) if c.isdecimal()] + ["𝟘", "𝟙", "\U000104a5"],
    list(UNICODE_PUNCT),
    [chr(c) for c in range(0x80, 0xA0)],
    [c for c in map(chr, range(0x3100)) if c.isspace()],
    ["\ud800", "\udbff", "\udc00", "\udfff"],
    ["😀", "𐐀", "𐐨", "\U0001e900", "\U0010ffff", "\U00020000"],
    ["İ", "ǅ", "ß", "ﬃ", "ŉ", "ΐ"],
]


def _random_text(rng: random.Random) -> str:
    pools = rng.sample(POOLS, rng.randint(1, 5))
    return "".join(rng.choice(rng.choice(pools)) for _ in range(rng.randint(0, 200)))


def test_random_documents() -> None:
    kernel = _kernel()
    rng = random.Random(19)
    for _ in range(5000):
        text = _random_text(rng)
        assert kernel(text) == packed_line_hashes_py(text), repr(text)


def test_corpus_pages() -> None:
    """Every page of the sample WET file (real text in ~20 languages)."""
    if not WET.is_file():
        pytest.skip("../shared/corpus is absent")
    from llama_data.pipeline.warc import CommonCrawlReader

    kernel = _kernel()
    texts = [
        d.text
        for d in CommonCrawlReader("commoncrawl").read_path(str(WET))
        if isinstance(d, Document)
    ]
    assert len(texts) > 100
    for text in texts:
        assert kernel(text) == packed_line_hashes_py(text), repr(text[:80])


def test_fallback_without_the_kernel() -> None:
    """Where the extension is not built (its import fails), `packed_line_hashes` is the Python
    path and gives the kernel's bytes: run in a fresh interpreter in which the import of
    `_linehash` fails (a None entry in sys.modules makes `import` raise ImportError)."""
    kernel = _kernel()
    child = (
        "import sys\n"
        "sys.modules['llama_data.pipeline.kernels._linehash'] = None\n"
        "from llama_data.pipeline import kernels, normalize\n"
        "from test_linehash_kernel import EDGE_CASES\n"
        "assert not kernels.available() and normalize._KERNEL is None\n"
        "for text in EDGE_CASES:\n"
        "    print(normalize.packed_line_hashes(text).hex())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [kernel(text).hex() for text in EDGE_CASES]


def test_arguments_are_checked() -> None:
    from llama_data.pipeline.kernels import _linehash

    _kernel()
    with pytest.raises(TypeError):
        _linehash.packed_line_hashes(b"bytes")
    with pytest.raises(TypeError):
        _linehash.set_removed(["x"])
    with pytest.raises(ValueError):
        _linehash.set_removed("\n")
