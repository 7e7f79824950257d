"""Licence keys: BigQuery's licence names, and classifying a checkout's LICENSE/COPYING text.

BigQuery's `github_repos.licenses` table already names licences with lower-case SPDX-like keys
(`apache-2.0`, `mit`, `bsd-3-clause`, `gpl-3.0`, ...); a local checkout only has the licence
text, so `classify_license_text` recognises the standard texts by phrases that appear in them and
in no other common licence. The checks run from the most specific text to the least (LGPL and
AGPL quote the GPL; the BSD 3-clause text contains the 2-clause one), and anything unrecognised
is `other` rather than a guess.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Iterable, Sequence

import numpy as np

ALLOWED_LICENSES: frozenset[str] = frozenset({"apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause"})
"""The LLaMA recipe keeps only Apache, BSD and MIT licensed projects."""

NO_LICENSE = "none"
UNKNOWN_LICENSE = "other"

# Spellings seen in exports and package metadata -> our keys.
_ALIASES = {
    "apache": "apache-2.0",
    "apache2": "apache-2.0",
    "apache-2": "apache-2.0",
    "apache 2.0": "apache-2.0",
    "apache license 2.0": "apache-2.0",
    "expat": "mit",
    "mit license": "mit",
    "bsd-2": "bsd-2-clause",
    "bsd-3": "bsd-3-clause",
    "simplified bsd": "bsd-2-clause",
    "new bsd": "bsd-3-clause",
    "modified bsd": "bsd-3-clause",
    "gpl-2.0-only": "gpl-2.0",
    "gpl-2.0-or-later": "gpl-2.0",
    "gpl-3.0-only": "gpl-3.0",
    "gpl-3.0-or-later": "gpl-3.0",
    "lgpl-2.1-only": "lgpl-2.1",
    "lgpl-2.1-or-later": "lgpl-2.1",
    "lgpl-3.0-only": "lgpl-3.0",
    "lgpl-3.0-or-later": "lgpl-3.0",
    "agpl-3.0-only": "agpl-3.0",
    "agpl-3.0-or-later": "agpl-3.0",
}


def normalize_license_key(value: object) -> str:
    """A licence key from a table cell: lower-cased SPDX-like, `none` when empty or missing."""
    if value is None:
        return NO_LICENSE
    key = str(value).strip().lower()
    if not key or key in {"null", "none", "noassertion"}:
        return NO_LICENSE
    key = _ALIASES.get(key, key)
    return "-".join(key.split()) if " " in key or "\t" in key else key


def is_allowed(key: str) -> bool:
    return key in ALLOWED_LICENSES


_FLAGS = re.IGNORECASE
_GNU = r"GNU\s+GENERAL\s+PUBLIC\s+LICEN[CS]E"
_LESSER = r"GNU\s+LESSER\s+GENERAL\s+PUBLIC\s+LICEN[CS]E"
_BSD = r"Redistribution\s+and\s+use\s+in\s+source\s+and\s+binary\s+forms"
_NEAR = 300  # characters after a title in which its version must appear

# (key, title, further patterns, window). A licence text is the licence whose title appears
# first (the GPL text mentions the Affero GPL in its section 13; the LGPL text quotes the GPL),
# its further patterns searched from the title on, within `window` characters (None: anywhere).
# Rules with the same title are tried in order, most specific first.
_RULE_SPECS: tuple[tuple[str, str, tuple[str, ...], int | None], ...] = (
    ("agpl-3.0", r"GNU\s+AFFERO\s+GENERAL\s+PUBLIC\s+LICEN[CS]E", (), None),
    ("lgpl-3.0", _LESSER, (r"Version\s+3",), _NEAR),
    ("lgpl-2.1", _LESSER, (r"Version\s+2\.1",), _NEAR),
    ("lgpl-2.1", _LESSER, (), None),
    ("lgpl-2.0", r"GNU\s+LIBRARY\s+GENERAL\s+PUBLIC\s+LICEN[CS]E", (), None),
    ("gpl-3.0", _GNU, (r"Version\s+3",), _NEAR),
    ("gpl-2.0", _GNU, (r"Version\s+2",), _NEAR),
    ("gpl-1.0", _GNU, (), None),
    ("apache-2.0", r"Apache\s+License", (r"Version\s+2\.0",), _NEAR),
    ("apache-2.0", r"Version\s+2\.0,\s+January\s+2004", (r"apache\.org/licenses",), _NEAR),
    ("apache-2.0", r"apache\.org/licenses/LICENSE-2\.0", (), None),
    ("apache-1.1", r"Apache\s+Software\s+License", (r"Version\s+1\.1",), _NEAR),
    ("mpl-2.0", r"Mozilla\s+Public\s+License,?\s+v(ersion)?\.?\s*2\.0", (), None),
    ("mpl-1.1", r"Mozilla\s+Public\s+License,?\s+v(ersion)?\.?\s*1\.1", (), None),
    ("epl-2.0", r"Eclipse\s+Public\s+License\s*-?\s*v(ersion)?\s*2\.0", (), None),
    ("epl-1.0", r"Eclipse\s+Public\s+License\s*-?\s*v(ersion)?\s*1\.0", (), None),
    ("bsl-1.0", r"Boost\s+Software\s+License\s*-\s*Version\s+1\.0", (), None),
    ("artistic-2.0", r"The\s+Artistic\s+License\s+2\.0", (), None),
    ("cc0-1.0", r"CC0\s+1\.0\s+Universal", (), None),
    (
        "unlicense",
        r"free\s+and\s+unencumbered\s+software\s+released\s+into\s+the\s+public\s+domain",
        (),
        None,
    ),
    ("wtfpl", r"DO\s+WHAT\s+THE\s+FUCK\s+YOU\s+WANT", (), None),
    ("bsd-4-clause", _BSD, (r"advertising\s+materials\s+mentioning",), None),
    (
        "bsd-3-clause",
        _BSD,
        (
            r"(Neither\s+the\s+name|names?\s+of\s+(its|the)\s+contributors\s+may\s+(not\s+)?be\s+used"
            r"|may\s+not\s+be\s+used\s+to\s+endorse\s+or\s+promote)",
        ),
        None,
    ),
    ("bsd-2-clause", _BSD, (), None),
    (
        "mit",
        r"Permission\s+is\s+hereby\s+granted,\s+free\s+of\s+charge,\s+to\s+any\s+person\s+obtaining",
        (),
        None,
    ),
    (
        "isc",
        r"Permission\s+to\s+use,\s+copy,\s+modify,\s+and(/or)?\s+distribute\s+this\s+software"
        r"\s+for\s+any\s+purpose",
        (),
        None,
    ),
)
_RULES = tuple(
    (key, re.compile(title, _FLAGS), tuple(re.compile(p, _FLAGS) for p in extra), window)
    for key, title, extra, window in _RULE_SPECS
)
_MAX_CLASSIFY_CHARS = 64 * 1024  # licence texts are short; a huge "LICENSE" is not one


def classify_license_text(text: str) -> str:
    """The key of the standard licence `text` is, or `other` when it is none we recognise."""
    text = text[:_MAX_CLASSIFY_CHARS]
    best: tuple[int, int, str] | None = None
    for rank, (key, title, extra, window) in enumerate(_RULES):
        m = title.search(text)
        if m is None or (best is not None and m.start() > best[0]):
            continue
        scope = text[m.start() : None if window is None else m.end() + window]
        if all(p.search(scope) for p in extra) and (best is None or (m.start(), rank) < best[:2]):
            best = (m.start(), rank, key)
    return best[2] if best else UNKNOWN_LICENSE


_LICENSE_FILE = re.compile(
    r"^(un)?(licen[cs]e|copying|copyright)([-_][\w.-]+?|\.(mit|apache[\w.-]*|bsd|[al]?gpl[\w.-]*))?"
    r"(\.(txt|md|markdown|rst|html?))?$",
    re.IGNORECASE,
)


def is_license_file(path: str) -> bool:
    """A top-level LICENSE/LICENCE/COPYING/UNLICENSE file, optionally suffixed (LICENSE-MIT)."""
    return "/" not in path.strip("/") and bool(_LICENSE_FILE.match(posixpath.basename(path)))


def combine_license_keys(keys: list[str]) -> str:
    """One key for a repository whose licence files name several (dual or mixed licensing).

    Several permissive licences (LICENSE-APACHE + LICENSE-MIT) leave the user a permissive choice,
    so the first one in sorted order stands for them. A restrictive licence next to a permissive
    one (COPYING with the GPL beside a LICENSE) is conservatively the repository's licence: we
    cannot tell which files it covers. An unrecognised text (a COPYRIGHT file listing authors)
    decides only when nothing else was recognised.
    """
    found = set(keys)
    if not found:
        return NO_LICENSE
    known = sorted(found - {UNKNOWN_LICENSE, NO_LICENSE})
    if not known:
        return UNKNOWN_LICENSE if UNKNOWN_LICENSE in found else NO_LICENSE
    blocking = [k for k in known if not is_allowed(k)]
    return blocking[0] if blocking else known[0]


def resolve_license(table_keys: list[str], row_key: str | None) -> str:
    """A repository's licence after the join: the licences table wins, then the row's own column.

    Exports that were joined already carry `license` on every row; when the table has no row
    for the repository, that column is used, and without either the repository has none.
    """
    found = table_license(table_keys)
    return found if found is not None else normalize_license_key(row_key)


def table_license(table_keys: Iterable[str]) -> str | None:
    """One repository's licence from its licences-table rows; None when they name none."""
    keys = [normalize_license_key(k) for k in table_keys]
    keys = [k for k in keys if k != NO_LICENSE]
    return combine_license_keys(keys) if keys else None


def repo_hash(repo_name: str) -> int:
    """8 bytes of BLAKE2b of the repository name: at 10 million repositories two collide with a
    probability of about 3e-6 (and a collision can only swap two repositories' licences)."""
    return int.from_bytes(
        hashlib.blake2b(repo_name.encode("utf-8"), digest_size=8).digest(), "little"
    )


class LicenseTable:
    """Every repository's licence in ~9 bytes: sorted 8-byte name hashes and a key code each.

    Joining files with their licence by a shuffle keyed by repository moves every file through
    the shuffle for a few bytes of licence; the table is small enough to give to every worker
    instead (3.3 million repositories, all of BigQuery's `licenses`, take 30 MB), and files are
    then looked up where they are read.
    """

    def __init__(self, hashes: np.ndarray, codes: np.ndarray, keys: Sequence[str]) -> None:
        order = np.argsort(hashes, kind="stable")
        self.hashes = np.ascontiguousarray(hashes[order], dtype=np.uint64)
        self.codes = np.ascontiguousarray(codes[order])
        self.keys = tuple(keys)
        self._last: tuple[str | None, str | None] = (None, None)

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def nbytes(self) -> int:
        return int(self.hashes.nbytes + self.codes.nbytes)

    def get(self, repo_name: str) -> str | None:
        # the files of a repository come together in exports and checkouts: one search each
        if repo_name == self._last[0]:
            return self._last[1]
        h = np.uint64(repo_hash(repo_name))
        i = int(np.searchsorted(self.hashes, h))
        found = (
            self.keys[int(self.codes[i])] if i < len(self.hashes) and self.hashes[i] == h else None
        )
        self._last = (repo_name, found)
        return found

    def license_of(self, repo_name: str, row_key: object = None) -> str:
        """The table's licence for the repository, else the row's own column (`resolve_license`)."""
        found = self.get(repo_name)
        return found if found is not None else normalize_license_key(row_key)


class LicenseTableBuilder:
    """Accumulates (repo, key) pairs in numpy chunks (a combiner's accumulator); mergeable."""

    _CHUNK = 1 << 16

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._codes_of: dict[str, int] = {}
        self._hashes: list[np.ndarray] = []
        self._codes: list[np.ndarray] = []
        self._pending: list[tuple[int, int]] = []

    def add(self, repo_name: str, key: str) -> None:
        self._pending.append((repo_hash(repo_name), self._code(key)))
        if len(self._pending) >= self._CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            hashes, codes = zip(*self._pending, strict=True)
            self._hashes.append(np.array(hashes, dtype=np.uint64))
            self._codes.append(np.array(codes, dtype=np.uint32))
            self._pending = []

    def merge(self, other: LicenseTableBuilder) -> None:
        other._flush()
        for hashes, codes in zip(other._hashes, other._codes, strict=True):
            recode = np.array([self._code(k) for k in other.keys], dtype=np.uint32)
            self._hashes.append(hashes)
            self._codes.append(recode[codes] if len(recode) else codes)

    def _code(self, key: str) -> int:
        if key not in self._codes_of:
            self._codes_of[key] = len(self.keys)
            self.keys.append(key)
        return self._codes_of[key]

    def build(self) -> LicenseTable:
        self._flush()
        hashes = np.concatenate(self._hashes) if self._hashes else np.empty(0, np.uint64)
        codes = np.concatenate(self._codes) if self._codes else np.empty(0, np.uint32)
        dtype = np.uint8 if len(self.keys) <= 256 else np.uint32
        return LicenseTable(hashes, codes.astype(dtype), self.keys)
