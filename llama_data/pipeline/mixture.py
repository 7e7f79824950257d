"""Mixture math: Table 1 weights, the max-epochs rule, and an exact, deterministic source order.

The plan only: which source each row comes from and how many rows each source gives;
`mix_shards.py` writes the rows.

The paper samples its sources at fixed proportions (Table 1). Drawing each training row's source
at random gets those proportions only on average; here the order of sources over rows follows the
greedy largest-deficit rule (Megatron's blending): row n goes to the source whose share is furthest
behind its weight, `argmax_s w_s * (n + 1) - c_s(n)`, ties to the earlier source. Then every prefix
of the row sequence holds each source within one row of `w_s * n`.

Weights are exact fractions `k_s / D` (sum of k_s == D), and arithmetic is in integers, so the
schedule is exactly periodic with period D: the deficit state after D rows equals the initial one.
One period is computed once; the source of any row and the row counts of any prefix are then O(1),
which is what lets shards be written independently (in parallel) and still agree.

Repetition: each source may be repeated at most `max_epochs` times (default 1 for CommonCrawl and
C4, 2.5 for the others, close to the paper's epochs). The default total is the largest number of
rows for which no source exceeds its max epochs.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

TABLE1_ORDER: tuple[str, ...] = (
    "commoncrawl",
    "c4",
    "github",
    "wikipedia",
    "books",
    "arxiv",
    "stackexchange",
)
TABLE1_LABELS: dict[str, str] = {
    "commoncrawl": "CommonCrawl",
    "c4": "C4",
    "github": "Github",
    "wikipedia": "Wikipedia",
    "books": "Books",
    "arxiv": "ArXiv",
    "stackexchange": "StackExchange",
}
# Table 1 of Touvron et al. (2023): sampling proportion, epochs, disk size.
TABLE1_WEIGHTS: dict[str, float] = {
    "commoncrawl": 0.67,
    "c4": 0.15,
    "github": 0.045,
    "wikipedia": 0.045,
    "books": 0.045,
    "arxiv": 0.025,
    "stackexchange": 0.02,
}
TABLE1_EPOCHS: dict[str, float] = {
    "commoncrawl": 1.10,
    "c4": 1.06,
    "github": 0.64,
    "wikipedia": 2.45,
    "books": 2.23,
    "arxiv": 1.06,
    "stackexchange": 1.03,
}
TABLE1_DISK: dict[str, str] = {
    "commoncrawl": "3.3 TB",
    "c4": "783 GB",
    "github": "328 GB",
    "wikipedia": "83 GB",
    "books": "85 GB",
    "arxiv": "92 GB",
    "stackexchange": "78 GB",
}
DEFAULT_MAX_EPOCHS: dict[str, float] = {"commoncrawl": 1.0, "c4": 1.0}
OTHER_MAX_EPOCHS = 2.5
# Weights from files are made exact with at most this denominator (the schedule's period bound).
MAX_DENOMINATOR = 100_000


class MixtureError(ValueError):
    """A mixture that cannot be built as asked (missing source, bad weights, too little data)."""


def default_max_epochs(source: str) -> float:
    return DEFAULT_MAX_EPOCHS.get(source, OTHER_MAX_EPOCHS)


def source_sort_key(name: str) -> tuple[int, str]:
    """Table 1 order first, then any other source alphabetically."""
    return (TABLE1_ORDER.index(name), "") if name in TABLE1_ORDER else (len(TABLE1_ORDER), name)


@dataclass(frozen=True)
class MixtureSpec:
    """What the user asked for: weights per source and optional per-source max epochs."""

    weights: Mapping[str, float]
    max_epochs: Mapping[str, float] = field(default_factory=dict)
    name: str = "table1"

    def max_epochs_of(self, source: str) -> float:
        return float(self.max_epochs.get(source, default_max_epochs(source)))


def load_mixture_spec(spec: str | None = "table1") -> MixtureSpec:
    """`table1` or a JSON/TOML file: `{source: weight}` or `{weights = {...}, max_epochs = {...}}`."""
    if spec in (None, "", "table1"):
        return MixtureSpec(dict(TABLE1_WEIGHTS), {}, "table1")
    path = Path(spec)
    if not path.is_file():
        raise MixtureError(f"weights: {spec!r} is neither 'table1' nor a readable file")
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise MixtureError(f"weights file {spec}: {exc}") from exc
    if not isinstance(data, dict):
        raise MixtureError(f"weights file {spec}: expected a mapping of source to weight")
    weights = data.get("weights", data)
    max_epochs = data.get("max_epochs", {}) if "weights" in data else {}
    return MixtureSpec(
        _numbers(weights, spec, "weight"), _numbers(max_epochs, spec, "max_epochs"), path.name
    )


def _numbers(values: Any, spec: str, what: str) -> dict[str, float]:
    if not isinstance(values, dict):
        raise MixtureError(f"weights file {spec}: {what} must be a mapping of source to number")
    out: dict[str, float] = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise MixtureError(f"weights file {spec}: {what} of {key!r} must be a number >= 0")
        out[str(key)] = float(value)
    return out


def exact_weights(
    weights: Mapping[str, float], max_denominator: int = MAX_DENOMINATOR
) -> tuple[list[int], int]:
    """Integers k_s and D with k_s / D == the weights (normalized), sum(k_s) == D."""
    fractions = [Fraction(str(w)).limit_denominator(max_denominator) for w in weights.values()]
    total = sum(fractions, Fraction(0))
    if total <= 0:
        raise MixtureError("weights sum to zero")
    normalized = [f / total for f in fractions]
    denominator = math.lcm(*(f.denominator for f in normalized))
    ks = [int(f * denominator) for f in normalized]
    return ks, denominator


def largest_deficit_pattern(ks: Sequence[int], denominator: int) -> np.ndarray:
    """One period of the greedy largest-deficit order: source index of rows 0..D-1."""
    n_sources = len(ks)
    k = np.asarray(ks, dtype=np.int64)
    counts = np.zeros(n_sources, dtype=np.int64)
    pattern = np.empty(denominator, dtype=np.int16 if n_sources < 2**15 else np.int32)
    for n in range(denominator):
        # deficit * D, in integers: k_s * (n + 1) - c_s * D. argmax takes the first on ties.
        s = int(np.argmax(k * (n + 1) - counts * denominator))
        pattern[n] = s
        counts[s] += 1
    return pattern


class Schedule:
    """The periodic source order: `source_of(n)` and `counts(n)` in O(1)."""

    def __init__(self, ks: Sequence[int], denominator: int) -> None:
        self.ks = np.asarray(ks, dtype=np.int64)
        self.denominator = int(denominator)
        self.pattern = largest_deficit_pattern(ks, denominator)
        onehot = np.zeros((denominator + 1, len(ks)), dtype=np.int64)
        onehot[np.arange(1, denominator + 1), self.pattern] = 1
        self._prefix = np.cumsum(onehot, axis=0)  # _prefix[j, s]: rows of s among the first j

    def source_of(self, n: int) -> int:
        return int(self.pattern[n % self.denominator])

    def counts(self, n: int) -> np.ndarray:
        """Rows of each source among the first n rows."""
        q, r = divmod(int(n), self.denominator)
        return q * self.ks + self._prefix[r]

    def sources(self, start: int, stop: int) -> np.ndarray:
        """Source index of each row in [start, stop)."""
        idx = np.arange(start, stop, dtype=np.int64) % self.denominator
        return self.pattern[idx]


@dataclass(frozen=True)
class SourceStats:
    """What one source offers the mixture (from its tokenized stream and cleaned documents)."""

    documents: int
    tokens: int
    disk_bytes: int = 0


@dataclass(frozen=True)
class SourcePlan:
    name: str
    weight: float  # after renormalization
    max_epochs: float
    documents: int
    tokens_available: int
    disk_bytes: int
    rows: int
    tokens_used: int
    epochs: float
    proportion: float  # realized share of rows


@dataclass(frozen=True)
class MixturePlan:
    context_length: int
    total_rows: int
    sources: tuple[SourcePlan, ...]
    ks: tuple[int, ...]
    denominator: int
    weights_name: str
    requested_weights: dict[str, float]
    renormalized: bool
    dropped: tuple[str, ...]  # weighted sources that were missing or empty (renormalized away)
    unused: tuple[str, ...]  # available sources the weights give nothing
    warnings: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sources]

    @property
    def total_tokens(self) -> int:
        return self.total_rows * self.context_length

    def schedule(self) -> Schedule:
        return Schedule(self.ks, self.denominator)

    def to_manifest(self) -> dict[str, Any]:
        """The manifest's mixture keys (`weights`, `renormalized`, per-source accounting)."""
        return {
            "weights": {s.name: s.weight for s in self.sources},
            "weights_spec": self.weights_name,
            "requested_weights": dict(self.requested_weights),
            "renormalized": self.renormalized,
            "dropped_sources": list(self.dropped),
            "unused_sources": list(self.unused),
            "schedule": {
                "rule": "largest-deficit",
                "period": self.denominator,
                "ks": list(self.ks),
            },
            "sources": {
                s.name: {k: v for k, v in asdict(s).items() if k not in ("name",)}
                for s in self.sources
            },
        }


def _max_rows(tokens: int, max_epochs: float, context_length: int) -> int:
    """Rows a source can give: each row consumes context_length tokens (plus one shared token)."""
    budget = math.floor(tokens * max_epochs + 1e-9)
    return max(0, (budget - 1) // context_length)


def plan_mixture(
    available: Mapping[str, SourceStats],
    spec: MixtureSpec,
    context_length: int,
    total_tokens: int | None = None,
    renormalize: bool = False,
) -> MixturePlan:
    """Decide how many rows each source gives; raise MixtureError on what the user must fix."""
    if context_length < 1:
        raise MixtureError(f"context length must be >= 1, got {context_length}")
    weighted = {s: w for s, w in spec.weights.items() if w > 0}
    if not weighted:
        raise MixtureError("no source has a positive weight")
    missing = sorted(
        (s for s in weighted if s not in available or available[s].tokens <= 0),
        key=source_sort_key,
    )
    total_weight = sum(weighted.values())
    if missing and not renormalize:
        detail = ", ".join(f"{s} ({'empty' if s in available else 'missing'})" for s in missing)
        raise MixtureError(
            f"weighted sources without tokens: {detail}; build them or pass --renormalize "
            f"to spread their weight over the others"
        )
    if not renormalize and abs(total_weight - 1.0) > 1e-6:
        raise MixtureError(
            f"weights sum to {total_weight:g}, not 1; fix them or pass --renormalize"
        )
    names = sorted((s for s in weighted if s not in missing), key=source_sort_key)
    if not names:
        raise MixtureError("none of the weighted sources has tokens")
    unused = tuple(sorted((s for s in available if s not in weighted), key=source_sort_key))
    ks, denominator = exact_weights({s: weighted[s] for s in names})
    schedule = Schedule(ks, denominator)
    max_rows = np.asarray(
        [_max_rows(available[s].tokens, spec.max_epochs_of(s), context_length) for s in names],
        dtype=np.int64,
    )
    warnings: list[str] = []
    if total_tokens is not None:
        if total_tokens < context_length:
            raise MixtureError(
                f"--tokens {total_tokens} is less than one row of {context_length} tokens"
            )
        total_rows = total_tokens // context_length
        counts = schedule.counts(total_rows)
        over = [s for s, c, m in zip(names, counts, max_rows, strict=True) if c > m]
        if over:
            warnings.append(
                "sources repeated beyond their max epochs at the requested size: " + ", ".join(over)
            )
    else:
        total_rows = _largest_feasible(schedule, max_rows)
        if total_rows == 0:
            short = [s for s, m in zip(names, max_rows, strict=True) if m == 0]
            raise MixtureError(
                f"not enough tokens for a single row of {context_length}: {', '.join(short)}"
            )
        counts = schedule.counts(total_rows)
    plans = []
    for i, name in enumerate(names):
        stats = available[name]
        rows = int(counts[i])
        used = rows * context_length
        plans.append(
            SourcePlan(
                name=name,
                weight=ks[i] / denominator,
                max_epochs=spec.max_epochs_of(name),
                documents=stats.documents,
                tokens_available=stats.tokens,
                disk_bytes=stats.disk_bytes,
                rows=rows,
                tokens_used=used,
                epochs=round(used / stats.tokens, 6),
                proportion=round(rows / total_rows, 6),
            )
        )
    return MixturePlan(
        context_length=context_length,
        total_rows=int(total_rows),
        sources=tuple(plans),
        ks=tuple(ks),
        denominator=denominator,
        weights_name=spec.name,
        requested_weights=dict(spec.weights),
        renormalized=bool(missing) or (renormalize and abs(total_weight - 1.0) > 1e-6),
        dropped=tuple(missing),
        unused=unused,
        warnings=tuple(warnings),
    )


def _largest_feasible(schedule: Schedule, max_rows: np.ndarray) -> int:
    """Largest n with counts(n) <= max_rows everywhere (counts are monotone in n)."""
    ks, d = schedule.ks, schedule.denominator
    # c_s(n) > w_s n - 1, so n < (max_s + 1) / w_s bounds it above; c_s(n) < w_s n + 1 below.
    hi = int(min((int(m) + 1) * d // int(k) for m, k in zip(max_rows, ks, strict=True))) + 1
    lo = 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if np.all(schedule.counts(mid) <= max_rows):
            lo = mid
        else:
            hi = mid - 1
    return lo


# --- document order ---------------------------------------------------------------------------


def doc_key(doc_id: str) -> int:
    """A stable 8-byte key of a document id (the unit of seeded ordering)."""
    return int.from_bytes(hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest(), "little")


def _salt(seed: int, source: str, epoch: int) -> np.uint64:
    digest = hashlib.blake2b(f"{seed}:{source}:{epoch}".encode(), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "little"))


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def epoch_order(keys: np.ndarray, seed: int, source: str, epoch: int) -> np.ndarray:
    """Document order for one epoch of one source: a permutation of range(len(keys)).

    Depends only on the documents' keys (hashes of their ids), the seed, the source and the
    epoch, never on file layout or worker count; each repeated epoch gets a new order. Equal keys
    (the same id twice) keep their given order.
    """
    mixed = _splitmix64(np.asarray(keys, dtype=np.uint64) ^ _salt(seed, source, epoch))
    return np.lexsort((np.arange(len(keys)), mixed))
