"""Books benchmark: MinHash signatures/s (vectorised vs a datasketch `update` loop) and dedup recall.

Both MinHash paths run in this process on the same books, one core:
- vectorised: `shingle_hashes` (each distinct word hashed once, n-grams rolled in numpy) +
  `MinHasher.signature` (a shingles x permutations matrix in chunks);
- reference: the plain datasketch way, `MinHash.update(shingle.encode())` per word 5-gram.
Recall: editions of the same book (re-punctuated, re-cased, re-wrapped, typos, a preface) must be
found; distinct books must not be merged (precision). Containment: books inside compilations of
2 to 8 books (an edition of each, so the verified overlap is below 1) and, with the corpus, the
real Frankenstein inside a "Moby-Dick + Frankenstein" compilation must be found too. Times are CPU seconds of this process (per core; the machine may be shared). Prints one JSON line.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sys
import time
from pathlib import Path

from datasketch import MinHash

from llama_data.pipeline.books.dedup import (
    MinHasher,
    MinHashParams,
    candidate_pairs,
    dedup_books,
    shingle_hashes,
    sketch,
    words,
)
from llama_data.pipeline.books.reader import GutenbergReader
from llama_data.pipeline.document import Document, Rejected
from llama_data.pipeline.io import FileSplit, local_open

CORPUS = (
    Path(
        os.environ.get(
            "LLAMA_DATA_CORPUS", Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
        )
    )
    / "books"
)
VOCAB = [f"w{i}" for i in range(20000)]
ZIPF = list(itertools.accumulate(1.0 / (r + 1) for r in range(len(VOCAB))))


def synthetic_book(seed: int, n_words: int) -> str:
    rng = random.Random(seed)
    # Zipf vocabulary, sentences and paragraphs, like prose
    ws = rng.choices(VOCAB, cum_weights=ZIPF, k=n_words)
    sents = [" ".join(ws[i : i + 14]).capitalize() + "." for i in range(0, n_words, 14)]
    return "\n\n".join(" ".join(sents[i : i + 6]) for i in range(0, len(sents), 6))


def edition(text: str, seed: int, typo_rate: float = 0.01) -> str:
    rng = random.Random(seed)
    ws = text.split()
    for _ in range(int(len(ws) * typo_rate)):
        ws[rng.randrange(len(ws))] = rng.choice(VOCAB)
    out = " ".join(w.upper() if rng.random() < 0.03 else w for w in ws)
    out = out.replace(".", rng.choice([";", ".", "!"]))
    lines, line = [], []
    for w in out.split(" "):
        line.append(w)
        if len(line) >= rng.randint(9, 13):
            lines.append(" ".join(line))
            line = []
    lines.append(" ".join(line))
    return "PREFACE TO THIS EDITION.\n\n" + "\n".join(lines)


def books() -> list[tuple[str, str]]:
    out = []
    if CORPUS.is_dir():
        for f in sorted(CORPUS.glob("*.txt")):
            for d in GutenbergReader().read(FileSplit(str(f)), local_open):
                if isinstance(d, Document):
                    out.append((d.id, d.text))
    for i in range(4):
        out.append((f"synthetic/{i}", synthetic_book(i, 60_000)))
    return out


def bench_minhash(docs: list[tuple[str, str]], params: MinHashParams) -> dict:
    hasher = MinHasher(params.num_perm, params.seed)
    mb = sum(len(t.encode()) for _, t in docs) / 1e6
    t0 = time.process_time()
    vec = [hasher.signature_of_shingles(shingle_hashes(t, params.ngram)) for _, t in docs]
    t_vec = time.process_time() - t0

    t0 = time.process_time()
    for _, t in docs:
        m = MinHash(num_perm=params.num_perm, seed=params.seed)
        ws = words(t)
        for i in range(max(1, len(ws) - params.ngram + 1)):
            m.update(" ".join(ws[i : i + params.ngram]).encode())
    t_ref = time.process_time() - t0
    n_shingles = sum(len(shingle_hashes(t, params.ngram)) for _, t in docs)
    assert len(vec) == len(docs)
    return {
        "books": len(docs),
        "mb": round(mb, 2),
        "distinct_shingles": n_shingles,
        "vectorized_signatures_per_s": round(len(docs) / t_vec, 2),
        "vectorized_mb_per_s": round(mb / t_vec, 2),
        "datasketch_loop_signatures_per_s": round(len(docs) / t_ref, 2),
        "datasketch_loop_mb_per_s": round(mb / t_ref, 2),
        "speedup": round(t_ref / t_vec, 2),
    }


def bench_recall(params: MinHashParams, n_books: int = 12, editions: int = 3) -> dict:
    docs, truth = [], {}
    for b in range(n_books):
        base = synthetic_book(1000 + b, 15_000)
        for e in range(editions):
            doc_id = f"book{b:02d}/ed{e}"
            docs.append(Document(doc_id, "books", base if e == 0 else edition(base, 10 * b + e)))
            truth[doc_id] = b
    if CORPUS.is_dir():
        for f in sorted(CORPUS.glob("*alice*")):
            (d,) = list(GutenbergReader().read(FileSplit(str(f)), local_open))
            docs.append(d)
            truth[d.id] = "alice"
    expected = len(docs) - len(set(truth.values()))
    t0 = time.process_time()
    out = list(dedup_books(docs, params))
    elapsed = time.process_time() - t0
    rejected = [o for o in out if isinstance(o, Rejected)]
    correct = sum(truth[r.doc.id] == truth[r.doc.meta["near_duplicate_of"]] for r in rejected)
    return {
        "books": len(docs),
        "duplicates_expected": expected,
        "duplicates_found": len(rejected),
        "recall": round(correct / expected, 4) if expected else 1.0,
        "precision": round(correct / len(rejected), 4) if rejected else 1.0,
        "min_overlap_found": min((r.doc.meta["overlap"] for r in rejected), default=None),
        "dedup_s": round(elapsed, 2),
    }


def bench_containment(params: MinHashParams, words_per_book: int = 8_000) -> dict:
    """Books inside compilations: compilation k concatenates editions of `k` standalone books.

    Expected: every standalone book that is in a compilation is rejected (it is contained in the
    longer book); the compilations and the distractors (in no compilation) are kept.
    """
    docs, truth = [], {}
    seed = 5000
    for k in (2, 3, 4, 6, 8):
        parts = []
        for j in range(k):
            seed += 1
            base = synthetic_book(seed, words_per_book)
            doc_id = f"ratio{k}/book{j}"
            docs.append(Document(doc_id, "books", base))
            truth[doc_id] = f"comp{k}"
            parts.append(edition(base, seed))
        docs.append(Document(f"comp{k}", "books", "\n\n".join(parts)))
        truth[f"comp{k}"] = f"comp{k}"
    for i in range(4):
        docs.append(Document(f"distractor/{i}", "books", synthetic_book(9000 + i, words_per_book)))
        truth[f"distractor/{i}"] = f"distractor/{i}"
    if CORPUS.is_dir():
        real = {}
        for f in sorted(CORPUS.glob("*.txt")):
            if "frankenstein" in f.name or "moby" in f.name:
                (d,) = list(GutenbergReader().read(FileSplit(str(f)), local_open))
                real["moby" if "moby" in f.name else "frankenstein"] = d
        if len(real) == 2:
            docs.append(real["frankenstein"])
            truth[real["frankenstein"].id] = "compilation/moby+frankenstein"
            comp = real["moby"].text + "\n\n" + real["frankenstein"].text
            docs.append(Document("compilation/moby+frankenstein", "books", comp))
            truth["compilation/moby+frankenstein"] = "compilation/moby+frankenstein"
    expected = {d.id for d in docs if truth[d.id] != d.id}
    hasher = MinHasher(params.num_perm, params.seed)
    sketches = [sketch(d.id, d.text, params, hasher) for d in docs]
    t0 = time.process_time()
    candidates = candidate_pairs(sketches, params)
    t_candidates = time.process_time() - t0
    t0 = time.process_time()
    out = list(dedup_books(docs, params))
    elapsed = time.process_time() - t0
    rejected = {o.doc.id: o for o in out if isinstance(o, Rejected)}
    correct = {i for i, r in rejected.items() if truth[i] == r.doc.meta["near_duplicate_of"]}
    by_ratio = {}
    for k in (2, 3, 4, 6, 8):
        ids = [i for i in expected if i.startswith(f"ratio{k}/")]
        by_ratio[str(k)] = round(sum(i in correct for i in ids) / len(ids), 4)
    real_found = None
    if "compilation/moby+frankenstein" in truth:
        real_found = any("frankenstein" in i for i in correct)
    return {
        "books": len(docs),
        "contained_expected": len(expected),
        "contained_found": len(correct),
        "recall": round(len(correct) / len(expected), 4),
        "recall_by_size_ratio": by_ratio,
        "precision": round(len(correct) / len(rejected), 4) if rejected else 1.0,
        "real_frankenstein_in_compilation_found": real_found,
        "candidate_pairs": len(candidates),
        "candidates_s": round(t_candidates, 3),
        "dedup_s": round(elapsed, 2),
    }


def main() -> None:
    params = MinHashParams()
    result = {
        "bench": "books",
        "params": {
            "num_perm": params.num_perm,
            "ngram": params.ngram,
            **{
                k: getattr(params, k)
                for k in ("lsh_threshold", "bands", "rows", "max_size_ratio")
                if hasattr(params, k)
            },
        },
        "minhash": bench_minhash(books(), params),
        "dedup": bench_recall(params),
        "containment": bench_containment(params),
        "python": sys.version.split()[0],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
