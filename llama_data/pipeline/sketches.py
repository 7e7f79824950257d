"""What a stage records as documents leave it, for the build report: fixed-bin histograms,
category counts and a few sample documents per rejection reason.

The report must never read the corpus again (on a large build that would take longer than the
build), so a stage records, as it writes each document, everything the report draws:

* histograms with *fixed* bins (`Histogram`): each bin is a counter `hist.<name>.<group>.<bin>`,
  so the runner's own metrics merge them across bundles and workers, on any runner;
* category counts (`Category`): counters `cat.<name>.<kind>.<value>` (a GitHub file's licence);
* document lengths in UTF-8 bytes (`LENGTH`, every stage) and bytes per outcome (`bytes.kept`,
  `bytes.rejected.<reason>`);
* samples (`Recorder.take_samples`, `merge_samples`): per key (`kept`, or `rejected:<reason>`) the `k` documents whose id has
  the smallest seeded hash, truncated as they are recorded. The k smallest of a union are the k
  smallest of each part's k smallest, so per-bundle picks merge into the same pick whatever the
  bundling, worker count or runner: two builds of the same inputs show the same samples.

Everything here is engine-free: the harness (beam_jobs/) feeds documents through a `Recorder`
per bundle and hands its counts to Beam counters and its samples to a small file.
"""

from __future__ import annotations

import heapq
import json
import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

SAMPLE_TEXT_CHARS = 1200  # text kept per sample: enough to judge a page, bounded for the report
SAMPLE_LINES = 30  # and at most this many lines of it
SAMPLE_FIELD_CHARS = 240  # id, reason and each meta value


@dataclass(frozen=True)
class Histogram:
    """Fixed bins over `[lo, hi)` (log-spaced when `log`), values outside in the end bins.

    `field` is a meta key (None: the document's length in UTF-8 bytes); `by` a meta key whose
    value splits the histogram into groups (a page's language), or None for one group per
    outcome (`kept` / `rejected`). Fixed bins make histograms of any number of bundles merge
    by adding counters.
    """

    name: str
    field: str | None
    lo: float
    hi: float
    bins: int
    log: bool = False
    by: str | None = None
    label: str = ""

    def __post_init__(self) -> None:
        span = math.log10(self.hi) - math.log10(self.lo) if self.log else self.hi - self.lo
        object.__setattr__(self, "_scale", self.bins / span)
        object.__setattr__(self, "_origin", math.log10(self.lo) if self.log else self.lo)

    def bin(self, x: float) -> int:
        if self.log:
            if x <= self.lo:
                return 0
            i = int((math.log10(x) - self._origin) * self._scale)
        else:
            i = int((x - self._origin) * self._scale)
        return 0 if i < 0 else self.bins - 1 if i >= self.bins else i

    def edges(self) -> list[float]:
        if self.log:
            a, b = math.log10(self.lo), math.log10(self.hi)
            return [10 ** (a + (b - a) * i / self.bins) for i in range(self.bins + 1)]
        return [self.lo + (self.hi - self.lo) * i / self.bins for i in range(self.bins + 1)]

    def describe(self) -> dict[str, Any]:
        return {
            "field": self.field or "length (UTF-8 bytes)",
            "lo": self.lo,
            "hi": self.hi,
            "bins": self.bins,
            "log": self.log,
            "by": self.by or "outcome",
            "label": self.label or self.name,
        }


@dataclass(frozen=True)
class Category:
    """Counts of a meta value per outcome (`cat.<name>.<kept|rejected>.<value>`). Values are
    cut to 40 characters; a stage declares only fields with few values (licences, languages).
    `derive="extension"` counts the lower-cased extension of a path instead of the path."""

    name: str
    field: str
    derive: str | None = None
    label: str = ""

    def value(self, meta: dict[str, Any]) -> str:
        v = meta.get(self.field)
        if self.derive == "extension":
            name = str(v or "").rsplit("/", 1)[-1]
            return name.rsplit(".", 1)[-1][:16].lower() if "." in name[1:] else "(none)"
        return str(v)[:40]


# 8 bins a decade from 1 byte to 10 GB: every stage records its documents' lengths.
LENGTH = Histogram("length", None, 1.0, 1e10, 80, log=True, label="document length (bytes)")


@dataclass(frozen=True)
class RecordSpec:
    """What a stage records for the report (`StageSpec.record`). `enabled=False` records
    nothing (the overhead benchmark's baseline)."""

    histograms: tuple[Histogram, ...] = ()
    categories: tuple[Category, ...] = ()
    samples: int = 3
    seed: int = 0
    enabled: bool = True

    def describe(self) -> dict[str, Any]:
        return {h.name: h.describe() for h in (LENGTH, *self.histograms)}


def sample_hash(doc_id: str, seed: int) -> int:
    """The seeded 64-bit hash that orders documents for sampling: two CRC-32s, stable across
    processes and Python versions and cheap enough for every document (Python's `hash` is
    salted per process)."""
    b = doc_id.encode("utf-8", "surrogatepass")
    return zlib.crc32(b, seed & 0xFFFFFFFF) << 32 | zlib.crc32(b, (seed ^ 0x9E3779B9) & 0xFFFFFFFF)


def clip(value: Any, limit: int = SAMPLE_FIELD_CHARS) -> str:
    """A value as text for the report: valid UTF-8 (lone surrogates replaced), at most `limit`
    characters, marked when cut."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = text[: limit + 1].encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= limit else text[:limit] + "…"


def clip_text(text: str) -> str:
    """A document's text for a sample: its start, at most `SAMPLE_LINES` lines and
    `SAMPLE_TEXT_CHARS` characters (so a megabyte on one line is cut too)."""
    head = text[: SAMPLE_TEXT_CHARS + 1]
    lines = head.split("\n")
    cut = len(head) > SAMPLE_TEXT_CHARS or len(lines) > SAMPLE_LINES
    head = "\n".join(lines[:SAMPLE_LINES])[:SAMPLE_TEXT_CHARS]
    head = head.encode("utf-8", "replace").decode("utf-8")
    return head + "\n[…]" if cut else head


class Recorder:
    """One bundle's records: counter increments (`take_counts`) and sample candidates
    (`take_samples`).

    `observe` runs for every document leaving a stage, so it is kept to a few dictionary
    updates (about 0.4 µs a document; benchmarks/bench_report.py): the harness passes lengths a
    written table at a time (`add_lengths`, from Arrow), counter names are made once per bundle,
    and a sample candidate costs one CRC-32 unless it beats the bundle's current pick.
    """

    def __init__(self, spec: RecordSpec) -> None:
        self.spec = spec
        self._k = spec.samples
        self._seed1 = spec.seed & 0xFFFFFFFF
        self._seed2 = (spec.seed ^ 0x9E3779B9) & 0xFFFFFFFF
        self._numeric = [(h, f"hist.{h.name}.", h.by) for h in spec.histograms]
        self._cats = [(c, f"cat.{c.name}.") for c in spec.categories]
        self._any_declared = bool(self._numeric or self._cats)
        self._reset()

    def _reset(self) -> None:
        # lengths in UTF-8 bytes, binned at the bundle's end (numpy): appending is all a
        # document costs here; `_back` holds those taken back (`unobserve`)
        self._lens: dict[str, list[int]] = {"": []}  # "" kept, else the rejection reason
        self._arrays: dict[str, list[np.ndarray]] = {}  # the same, a written table's at a time
        self._back: list[int] = []
        self.counts: dict[str, int] = {}  # declared histograms and categories
        self._heaps: dict[str, list[tuple[int, int, Any, str]]] = {}
        self._bars: dict[str, int] = {}  # per key, the first 32 bits of the pick's largest hash
        self._seq = 0

    def observe(
        self,
        doc: Any,
        kind: str,
        reason: str = "",
        full_reason: str = "",
        length: bool = True,
    ) -> None:
        """Record one document: `kind` is `kept` or `rejected` (`reason` its counter key,
        `full_reason` the reason as written, e.g. `near_duplicate_of:<id>`). `length=False`
        when the caller records lengths a table at a time (`add_lengths`)."""
        text = doc.text
        key = "" if kind == "kept" else reason  # reasons are never empty
        if length and text:
            n = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
            lens = self._lens.get(key)
            if lens is None:
                lens = self._lens[key] = []
            lens.append(n)
        if self._any_declared:
            self._declared(doc.meta, kind, 1)
        if self._k:
            # the sample pick, the bundle's k smallest seeded hashes per key: one CRC-32 per
            # document, compared with the current pick's largest (its first 32 bits)
            ident = doc.id.encode("utf-8", "surrogatepass")
            high = zlib.crc32(ident, self._seed1)
            if high <= self._bars.get(key, _NO_BAR):
                self._offer(key, high, ident, doc, full_reason)

    def observe_kept(self, doc: Any) -> None:
        """`observe(doc, "kept", length=False)` for the path every kept document takes (the
        harness's writer): the same records with the fewest steps, as it runs per document."""
        if self._any_declared:
            self._declared(doc.meta, "kept", 1)
        if self._k:
            ident = doc.id.encode("utf-8", "surrogatepass")
            high = zlib.crc32(ident, self._seed1)
            if high <= self._bars.get("", _NO_BAR):
                self._offer("", high, ident, doc, "")

    def _offer(self, key: str, high: int, ident: bytes, doc: Any, full_reason: str) -> None:
        heap = self._heaps.get(key)
        if heap is None:
            heap = self._heaps[key] = []
        h = high << 32 | zlib.crc32(ident, self._seed2)
        full = len(heap) >= self._k
        if full and -h <= heap[0][0]:
            return
        self._seq += 1  # ties only for one id seen twice: either copy is the same sample
        entry = (-h, self._seq, doc, full_reason)
        if full:
            heapq.heapreplace(heap, entry)
        else:
            heapq.heappush(heap, entry)
        if len(heap) >= self._k:
            self._bars[key] = (-heap[0][0]) >> 32

    def add_lengths(self, kind: str, reason: str, lengths: np.ndarray) -> None:
        """Lengths in UTF-8 bytes of documents written together (a table's text column, from
        Arrow without a Python step per document); empty texts (dropped by the stage) left out."""
        lengths = lengths[lengths > 0]
        if len(lengths):
            self._arrays.setdefault("" if kind == "kept" else reason, []).append(lengths)

    def unobserve(self, doc: Any) -> None:
        """Take back a document `observe` recorded as kept (one the exact dedup then found
        contested: it is recorded again where it ends up). Its sample, if picked, stays."""
        if doc.text:
            self._back.append(len(doc.text.encode("utf-8", "surrogatepass")))
        if self._any_declared:
            self._declared(doc.meta, "kept", -1)

    def _declared(self, meta: dict[str, Any], kind: str, sign: int) -> None:
        counts = self.counts
        for h, prefix, by in self._numeric:
            value = meta.get(h.field)
            if value is None:
                continue
            try:
                x = float(value)
            except (TypeError, ValueError):
                continue
            if math.isnan(x):
                continue
            group = kind if by is None else str(meta.get(by))
            key = f"{prefix}{group}.{h.bin(x)}"
            counts[key] = counts.get(key, 0) + sign
        for c, prefix in self._cats:
            key = f"{prefix}{kind}.{c.value(meta)}"
            counts[key] = counts.get(key, 0) + sign

    def take_samples(self) -> list[dict[str, Any]]:
        """This bundle's samples as small JSON-ready records (text truncated here)."""
        out = []
        for key, heap in sorted(self._heaps.items()):
            name = "kept" if key == "" else f"rejected:{key}"
            for neg, _, doc, full_reason in sorted(heap, reverse=True):
                out.append(sample_record(name, -neg, doc, full_reason))
        self._heaps, self._bars = {}, {}
        return out

    def take_counts(self) -> dict[str, int]:
        """This bundle's counter increments by counter name (zeros left out)."""
        counts = dict(self.counts)
        for key in sorted(set(self._lens) | set(self._arrays)):
            lens = self._lens.get(key, [])
            arrays = self._arrays.get(key, [])
            back = self._back if key == "" else []
            if not lens and not arrays and not back:
                continue
            kind = "kept" if key == "" else "rejected"
            got = length_bins(lens) - length_bins(back)
            total = sum(lens) - sum(back)
            for arr in arrays:
                got += length_bins(arr)
                total += int(arr.sum())
            for b in np.flatnonzero(got):
                name = f"hist.length.{kind}.{b}"
                counts[name] = counts.get(name, 0) + int(got[b])
            counts["bytes.kept" if key == "" else f"bytes.rejected.{key}"] = total
        heaps, bars = self._heaps, self._bars
        self._reset()
        self._heaps, self._bars = heaps, bars  # samples are taken separately
        return {k: v for k, v in counts.items() if v}


_NO_BAR = 1 << 32  # above every 32-bit CRC: a key whose pick is not full takes any document


def length_bins(lengths: list[int] | np.ndarray) -> np.ndarray:
    """Counts per `LENGTH` bin of lengths >= 1 (one vectorized pass per bundle)."""
    if len(lengths) == 0:
        return np.zeros(LENGTH.bins, dtype=np.int64)
    b = (np.log10(np.asarray(lengths, dtype=np.float64)) * _LENGTH_SCALE).astype(np.int64)
    return np.bincount(np.clip(b, 0, LENGTH.bins - 1), minlength=LENGTH.bins)


_LENGTH_SCALE = LENGTH.bins / (math.log10(LENGTH.hi) - math.log10(LENGTH.lo))


def sample_record(key: str, h: int, doc: Any, reason: str | None = None) -> dict[str, Any]:
    meta = {str(k)[:40]: clip(v, 120) for k, v in list(doc.meta.items())[:12]}
    return {
        "key": key,
        "hash": h,
        "id": clip(doc.id),
        "reason": clip(reason or key.split(":", 1)[-1] if key != "kept" else ""),
        "chars": len(doc.text),
        "text": clip_text(doc.text),
        "meta": meta,
    }


def merge_samples(records: Iterable[dict[str, Any]], k: int) -> dict[str, list[dict[str, Any]]]:
    """Per key, the `k` records with the smallest (hash, id), each id once: the same pick
    whatever bundles recorded them, and a retried bundle's repeated records count once."""
    by_key: dict[str, dict[str, dict[str, Any]]] = {}
    for rec in records:
        by_key.setdefault(rec["key"], {})[rec["id"]] = rec
    return {
        key: sorted(recs.values(), key=lambda r: (r["hash"], r["id"]))[:k]
        for key, recs in sorted(by_key.items())
    }


def split_counters(
    counters: dict[str, int], spec: RecordSpec
) -> tuple[dict[str, int], dict[str, Any]]:
    """The stage's counters without `hist.`/`cat.` ones, and those as stats.json's `sketches`:
    `{"histograms": {name: {..bins.., "edges": [...], "counts": {group: [n per bin]}}},
    "categories": {name: {kind: {value: n}}}}`."""
    plain: dict[str, int] = {}
    hists = {h.name: h for h in (LENGTH, *spec.histograms)}
    out_h: dict[str, dict[str, Any]] = {}
    out_c: dict[str, dict[str, dict[str, int]]] = {}
    for key, n in counters.items():
        if key.startswith("hist."):
            name, rest = key[5:].split(".", 1)
            group, _, index = rest.rpartition(".")
            h = hists.get(name)
            if h is None or not index.isdigit():
                continue
            entry = out_h.setdefault(name, {**h.describe(), "edges": h.edges(), "counts": {}})
            entry["counts"].setdefault(group, [0] * h.bins)[int(index)] += n
        elif key.startswith("cat."):
            name, rest = key[4:].split(".", 1)
            kind, _, value = rest.partition(".")
            out_c.setdefault(name, {}).setdefault(kind, {})[value] = n
        else:
            plain[key] = n
    for entry in out_h.values():
        entry["counts"] = dict(sorted(entry["counts"].items()))
    for name, kinds in out_c.items():
        out_c[name] = {k: dict(sorted(v.items())) for k, v in sorted(kinds.items())}
    return plain, {"histograms": dict(sorted(out_h.items())), "categories": out_c}
