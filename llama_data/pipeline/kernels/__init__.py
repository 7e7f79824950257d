"""Compiled kernels, each optional, each with a Python twin that gives the same bytes.

`_linehash` (`linehash.c`, built by `setup.py` when the project is installed, `make install`
included) computes `normalize.packed_line_hashes`: every line of a page stripped, lowercased, its
decimal digits made "0", cc_net's punctuation and the control characters removed, and the first 8
bytes of its SHA-1. A profile of `llama-data ccnet` showed the Python version (two regex passes
over the lowercased page, then a `hashlib.sha1` call per line) at ~1.2 of ~11 CPU-s; the C
version walks the str once, with CPython's own character functions (`str.strip`'s whitespace,
`str.lower`'s full case mapping and final-sigma rule, `str.isdecimal`), so it is exact for every
str. The characters to remove are handed in by `normalize.py` (`set_removed`), which holds the
only copy of that set.

`_ftlid` (`ftlid.c`) is fastText's supervised prediction with k=1, for lid.176 (the ccnet stage's
language id, and any model like it): the same label and the same float score as the fasttext
binding, bit for bit, at a fifth of its CPU. lid.176 is quantized and pruned, and fastText looks
every character n-gram of every word up, twice, in a `std::unordered_map` of the kept n-grams:
that lookup was half the language-id step, itself the ccnet stage's largest cost. The kernel
keeps a bitmap of the kept n-grams, extends each n-gram's hash byte by byte, and dequantizes the
input rows once at load; every float operation is fastText's, in fastText's order. It reads
supervised models with hierarchical softmax (lid.176.ftz and lid.176.bin); for anything else it
raises NotImplementedError and `ccnet/langid.py` uses the fasttext binding.

Fallback: `normalize.py` and `ccnet/langid.py` import the modules inside a `try`; where one was
not built (no compiler at install time: `setup.py` marks both optional) the import fails and the
Python path or the fasttext binding runs. The results are the same either way
(tests/test_linehash_kernel.py, tests/test_ftlid_kernel.py), only slower; `available()` says
which modules are built, and a test fails where they should have been built but were not.
"""

from __future__ import annotations

import importlib

KERNELS = ("_linehash", "_ftlid")


def available(name: str = "_linehash") -> bool:
    """Whether the compiled module `name` imports (else its Python twin runs)."""
    try:
        importlib.import_module(f"{__name__}.{name}")
    except ImportError:
        return False
    return True
