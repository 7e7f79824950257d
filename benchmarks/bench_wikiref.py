"""Wikipedia-reference classifier throughput, per core.

    python -m benchmarks.bench_wikiref [--wet PATH] [--wiki PATH] [--repeat N]

Measures, in one process (= one core): scoring documents (LM normalization + fastText predict,
the `wikiref-filter` step), cited-URL extraction from a real Wikipedia dump, and training on the
examples. The model is trained here on the WET sample (its pages against shuffled-word versions
of themselves), since only the throughput matters. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from llama_data.pipeline import wikiref
from llama_data.pipeline.document import Document
from llama_data.pipeline.warc import WetReader

_REPO = Path(__file__).resolve().parents[1]
# ../shared/corpus beside the checkout (or beside the folder of worktrees)
CORPUS = next(
    (
        c
        for c in (_REPO.parent / "shared" / "corpus", _REPO.parent.parent / "shared" / "corpus")
        if c.exists()
    ),
    _REPO.parent / "shared" / "corpus",
)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wet", default=str(CORPUS / "commoncrawl" / "pages.warc.wet.gz"))
    ap.add_argument("--wiki", default=str(CORPUS / "wikipedia" / "enwiki-sample.xml.bz2"))
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args(argv)

    docs = [d for d in WetReader().read_path(args.wet) if isinstance(d, Document)]
    work = [
        Document(f"{d.id}#{r}", d.source, d.text, d.meta) for r in range(args.repeat) for d in docs
    ]
    mb = sum(len(d.text.encode()) for d in work) / 1e6
    result: dict = {"bench": "wikiref", "documents": len(work), "mb": round(mb, 2)}

    rng = random.Random(0)
    pos = [wikiref.Example(d.id, "", wikiref.POSITIVE, wikiref.lm_text(d.text)) for d in docs]
    neg = []
    for d in docs:
        words = wikiref.lm_text(d.text).split()
        rng.shuffle(words)
        neg.append(wikiref.Example(d.id + "/shuffled", "", wikiref.NEGATIVE, " ".join(words)))
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        wikiref.train_and_evaluate(pos, neg, tmp, wikiref.FastTextParams())
        result["train_s_240_examples_default_params"] = round(time.perf_counter() - t, 2)
        step = wikiref.WikirefScoreStep(tmp)
        step.setup()

        t = time.perf_counter()
        texts = [wikiref.lm_text(d.text) for d in work]
        dt_norm = time.perf_counter() - t
        t = time.perf_counter()
        wikiref.positive_probability(step._model, texts)
        dt_pred = time.perf_counter() - t
        t = time.perf_counter()
        for d in work:
            step.process(d)
        dt = time.perf_counter() - t
        t = time.perf_counter()
        for i in range(0, len(work), 256):
            step.process_batch(work[i : i + 256])
        dt_batch = time.perf_counter() - t
    result["score_docs_per_s"] = round(len(work) / dt, 1)
    result["score_mb_per_s"] = round(mb / dt, 2)
    result["score_batched_docs_per_s"] = round(len(work) / dt_batch, 1)
    result["lm_normalize_docs_per_s"] = round(len(work) / dt_norm, 1)
    result["predict_docs_per_s"] = round(len(work) / dt_pred, 1)

    if Path(args.wiki).exists():
        from llama_data.pipeline.wikipedia.reader import WikipediaReader

        pages = [p for p in WikipediaReader().read_path(args.wiki) if isinstance(p, Document)]
        articles = [
            p for p in pages if not p.meta.get("redirect") and p.meta.get("ns") in (0, None)
        ]
        t = time.perf_counter()
        n_urls = sum(len(wikiref.cited_normalized_urls(p.text)) for p in articles)
        dt = time.perf_counter() - t
        wiki_mb = sum(len(p.text.encode()) for p in articles) / 1e6
        result["extract_articles"] = len(articles)
        result["extract_cited_urls"] = n_urls
        result["extract_pages_per_s"] = round(len(articles) / dt, 1)
        result["extract_mb_per_s"] = round(wiki_mb / dt, 2)
    print(json.dumps(result, sort_keys=True))
    return result


if __name__ == "__main__":
    main()
