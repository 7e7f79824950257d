"""File digests: the one helper behind every sha256 a manifest, a model card or a download names.

Shared by pipeline/ and model/ (the trainer checks the tokenizer a build recorded); it imports
nothing of either.
"""

from __future__ import annotations

import hashlib
import os

BLOCK = 1 << 20


def file_sha256(path: str | os.PathLike[str], algo: str = "sha256") -> str:
    """The hex SHA-256 of a file's bytes, read in 1 MiB blocks; `algo` names another hashlib
    algorithm where a publisher's checksum is one (Wikimedia's md5, archive.org's sha1)."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            h.update(block)
    return h.hexdigest()
