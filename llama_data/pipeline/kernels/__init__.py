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

Fallback: `normalize.py` imports the module inside a `try`; when it was not built (no compiler
at install time: `setup.py` marks it optional) the import fails and the Python path runs. The
results are the same either way (tests/test_linehash_kernel.py), only slower; `available()`
says which path runs, and a test fails where the extension should have been built but was not.
"""

from __future__ import annotations


def available() -> bool:
    """Whether the compiled `_linehash` module imports (else `normalize` uses its Python path)."""
    try:
        from llama_data.pipeline.kernels import _linehash  # noqa: F401
    except ImportError:
        return False
    return True
