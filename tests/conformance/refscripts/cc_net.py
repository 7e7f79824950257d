"""Runs inside the cc_net reference environment: answers with cc_net's own functions.

Request on stdin: {"op": ..., "cases": [...], "params": {...}}; answer: a JSON list.
"""

import json
import sys

from cc_net import dedup, perplexity, text_normalizer


def line_hashes(cases, params):
    """cc_net's `compute_hashes` of each document: the 8 bytes of SHA-1 per line, as hex."""
    out = []
    for text in cases:
        hashes = dedup.compute_hashes(text)
        out.append([] if hashes is None else [h.tobytes().hex() for h in hashes])
    return out


def dedup_two_pass(cases, params):
    """cc_net's paper setting (`deduplicate_two_pass`, mine.py's dedup): collect every line
    hash of the group, then remove lines seen in two documents and repeats inside a page.
    Each case is a list of documents; the answer is the text left of each (None: dropped)."""
    out = []
    for texts in cases:
        collector = dedup.HashesCollector(field="raw_content")
        for text in texts:
            collector.do({"raw_content": text})
        remover = dedup.DuplicatesRemover(field="raw_content", hashes_files=[])
        remover.duplicates = collector.hashes
        kept = []
        for text in texts:
            doc = remover.do({"raw_content": text})
            kept.append(None if doc is None else doc["raw_content"])
        out.append(kept)
    return out


def doc_perplexity(cases, params):
    """mine.py's scoring: MultiSentencePiece(normalize=True) then DocLM(normalize=False)."""
    lang = params["lang"]
    sp = perplexity.MultiSentencePiece(
        {lang: params["sp_model"]}, field="raw_content", output_field="tokenized", normalize=True
    )
    lm = perplexity.DocLM(
        {lang: params["lm_model"]}, field="tokenized", output_field="perplexity", normalize=False
    )
    out = []
    for text in cases:
        doc = lm.do(sp.do({"raw_content": text, "language": lang}))
        out.append(doc.get("perplexity"))
    return out


def bucket(cases, params):
    """cc_net's `PerplexityBucket` with a cutoff.csv whose p30 and p60 rows are the cutoffs."""
    import os
    import tempfile

    lo, hi = params["cutoffs"]
    rows = ["percentile,en"] + [f"{q},{lo if q <= 30 else hi}" for q in range(101)]
    fd, path = tempfile.mkstemp(suffix=".csv")
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(rows) + "\n")
    step = perplexity.PerplexityBucket(path)
    step._prepare()
    os.remove(path)
    return [step.get_bucket({"language": "en", "perplexity": p}) for p in cases]


def language_id(cases, params):
    """mine.py's language id (`split_by_lang.Classifier`, top 1): per page, the label and the
    score its `predict` gives (cc_net's page input: the text with its newlines removed) and what
    `do` writes (`language`, the score rounded to 2 digits), or None for an empty page."""
    from pathlib import Path

    from cc_net import split_by_lang

    clf = split_by_lang.Classifier(
        model=Path(params["model"]), field="raw_content", out_field="language", top=1
    )
    clf._prepare()
    out = []
    for text in cases:
        labels, scores = clf.predict(text)
        doc = clf.do({"raw_content": text})
        out.append(
            {
                "predict": [labels[0], float(scores[0])] if len(labels) else None,
                "language": None if doc is None else doc["language"],
                "language_score": None if doc is None else float(doc["language_score"]),
            }
        )
    return out


OPS = {
    "normalize_for_dedup": lambda cases, params: [
        text_normalizer.normalize_for_dedup(x) for x in cases
    ],
    "normalize": lambda cases, params: [text_normalizer.normalize(x) for x in cases],
    "line_hashes": line_hashes,
    "dedup_two_pass": dedup_two_pass,
    "doc_perplexity": doc_perplexity,
    "bucket": bucket,
    "language_id": language_id,
}

if __name__ == "__main__":
    request = json.load(sys.stdin)
    json.dump(OPS[request["op"]](request["cases"], request.get("params", {})), sys.stdout)
