"""Head / middle / tail by perplexity: the 30th and 60th percentiles of each language's
distribution (cc_net's cutoffs). Lower perplexity = closer to Wikipedia = `head`.

Cutoffs are computed from the input itself (the Beam job uses a mergeable quantile sketch; the
exact version here is for tests and small inputs) or read from a file: our JSON
(`{"en": [p30, p60]}`) or cc_net's `cutoff.csv` (one row per percentile 0..100, one column per
language).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from llama_data.pipeline.document import Document, Outcome, Rejected
from llama_data.pipeline.steps import Step

PERCENTILES = (30, 60)
BUCKETS = ("head", "middle", "tail")
Cutoffs = Mapping[str, tuple[float, float]]


def exact_cutoffs(
    values: Iterable[float], percentiles: Sequence[int] = PERCENTILES
) -> tuple[float, float]:
    """Percentiles as observed values (nearest rank). Infinite
    perplexities (documents without tokens) count as the largest values."""
    arr = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    if arr.size == 0:
        raise ValueError("no perplexity values to take percentiles of")
    arr = np.where(np.isinf(arr), np.finfo(np.float64).max, arr)
    # inverted_cdf: an observed value at rank ceil(q*n), which is what the Beam job's quantile
    # sketch returns, so cutoffs computed here and there agree on the same data.
    lo, hi = np.percentile(arr, list(percentiles), method="inverted_cdf")
    return float(lo), float(hi)


def cutoffs_from_values(by_lang: Mapping[str, Iterable[float]]) -> dict[str, tuple[float, float]]:
    return {lang: exact_cutoffs(vals) for lang, vals in sorted(by_lang.items())}


def bucket_of(ppl: float, cutoffs: tuple[float, float]) -> str:
    """cc_net's `PerplexityBucket`: below p30 -> head, below p60 -> middle, otherwise tail (a
    page exactly at p60 is tail)."""
    lo, hi = cutoffs
    if ppl < lo:
        return "head"
    if ppl < hi:
        return "middle"
    return "tail"


def load_cutoffs(path: str | Path) -> dict[str, tuple[float, float]]:
    """Read a cutoff file (our JSON, or cc_net's cutoff.csv)."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        raw = json.loads(text)
        out: dict[str, tuple[float, float]] = {}
        for lang, value in raw.items():
            if isinstance(value, Mapping):
                value = (value["p30"], value["p60"])
            lo, hi = (float(v) for v in value)
            if lo > hi:
                raise ValueError(f"cutoffs for {lang!r} are not increasing: {lo} > {hi}")
            out[lang] = (lo, hi)
        return out
    rows = list(csv.reader(text.splitlines()))
    header, body = rows[0], rows[1:]
    table = {int(float(r[0])): r for r in body if r}
    missing = [q for q in PERCENTILES if q not in table]
    if missing:
        raise ValueError(f"{path}: cutoff.csv lacks the rows for percentiles {missing}")
    return {
        lang: (float(table[PERCENTILES[0]][i]), float(table[PERCENTILES[1]][i]))
        for i, lang in enumerate(header)
        if i > 0 and lang
    }


def dump_cutoffs(cutoffs: Cutoffs) -> dict[str, dict[str, float]]:
    """The JSON form written to stats.json and accepted back by `load_cutoffs`."""
    return {lang: {"p30": lo, "p60": hi} for lang, (lo, hi) in sorted(cutoffs.items())}


class Bucket(Step):
    """Adds `bucket`; rejects documents whose bucket is not kept as `perplexity_<bucket>`."""

    name = "bucket"

    def __init__(self, cutoffs: Cutoffs, keep: Sequence[str] = ("head", "middle")) -> None:
        unknown = set(keep) - set(BUCKETS)
        if unknown:
            raise ValueError(f"unknown buckets {sorted(unknown)}; choose from {BUCKETS}")
        self.cutoffs = {k: (float(v[0]), float(v[1])) for k, v in cutoffs.items()}
        self.keep = tuple(keep)

    def process(self, doc: Document) -> Outcome:
        lang = str(doc.meta.get("language"))
        cut = self.cutoffs.get(lang)
        if cut is None:
            self.count("no_cutoffs")
            return Rejected(doc, "lang:no_cutoffs")
        bucket = bucket_of(float(doc.meta["perplexity"]), cut)
        self.count(f"{lang}.{bucket}")
        doc = doc.with_text(doc.text, bucket=bucket)
        return doc if bucket in self.keep else Rejected(doc, f"perplexity_{bucket}")
