"""Tokenization throughput per core vs SentencePiece's own `encode` on the same text, same run.

Text: the shared sample corpus (books, langid sentences, Stack Exchange posts, GitHub files) when
present, else generated text, cut into ~4 KB documents. A tokenizer is trained on it with our
LLaMA settings. Measured on one thread each, best of 5 interleaved rounds:
- `sp_encode`: sentencepiece's `encode(docs, out_type=int)` (the library's own batch call);
- `ours_packed`: `Tokenizer.encode_packed` (BOS/EOS framing + one flat numpy array);
- `ours_unit`: the whole `tokenize_unit` (Parquet read, sort, encode, Arrow write).
Prints one JSON line; target: ours_packed >= 85% of sp_encode.
"""

from __future__ import annotations

import glob
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow.parquet as pq  # noqa: E402

from llama_data.pipeline.doc_batches import DocUnit  # noqa: E402
from llama_data.pipeline.document import Document  # noqa: E402
from llama_data.pipeline.schema import BASE_SCHEMA  # noqa: E402
from llama_data.pipeline.token_streams import tokenize_unit  # noqa: E402
from llama_data.pipeline.tokenizer import Tokenizer, train_tokenizer  # noqa: E402

CORPUS = Path(
    os.environ.get("BENCH_CORPUS", Path(__file__).resolve().parents[1].parent / "shared" / "corpus")
)
DOC_CHARS = 4000
MAX_BYTES = int(os.environ.get("BENCH_TOKENIZE_BYTES", 2_000_000))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 5))


def _texts() -> tuple[str, list[str]]:
    files = []
    for pattern in ("books/*", "langid/*.txt", "github/files.jsonl", "stackexchange/*/Posts.xml"):
        files += sorted(glob.glob(str(CORPUS / pattern)))
    if files:
        raw = [Path(f).read_text(encoding="utf-8", errors="replace") for f in files]
        where = f"{CORPUS} ({len(files)} files)"
    else:
        rng = random.Random(0)
        syllables = ["ka", "to", "ri", "men", "sa", "lo", "ve", "qu", "an", "del", "tra", "is"]
        words = ["".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(5000)]
        raw = [
            "\n".join(
                " ".join(rng.choices(words, k=rng.randint(5, 30))) + "." for _ in range(20_000)
            )
        ]
        where = "generated"
    docs = [t[i : i + DOC_CHARS] for t in raw for i in range(0, len(t), DOC_CHARS)]
    docs = [d for d in docs if d.strip()]
    random.Random(0).shuffle(docs)  # a mix of all kinds, then cut to the size budget
    kept, size = [], 0
    for d in docs:
        size += len(d.encode("utf-8"))
        if size > MAX_BYTES:
            break
        kept.append(d)
    return where, kept


def main() -> dict:
    where, docs = _texts()
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    with tempfile.TemporaryDirectory() as tmp:
        vocab = 4000
        while True:
            try:
                train_tokenizer(
                    (("books", str(i), d) for i, d in enumerate(docs)),
                    tmp,
                    vocab_size=vocab,
                    weights={"books": 1.0},
                    present={"books"},
                    sample_bytes=1_000_000,
                    num_threads=2,
                )
                break
            except ValueError:
                vocab //= 2
        tok = Tokenizer(tmp, num_threads=1)
        sp = tok.sp
        parquet = Path(tmp) / "docs.parquet"
        pq.write_table(
            BASE_SCHEMA.to_table(Document(f"d{i:06d}", "books", d) for i, d in enumerate(docs)),
            parquet,
            row_group_size=len(docs),
        )
        out = Path(tmp) / "tokens"
        variants = {
            "sp": lambda: sp.encode(docs, out_type=int, num_threads=1),
            "packed": lambda: tok.encode_packed(docs),
            "unit": lambda: tokenize_unit(DocUnit(str(parquet), 0), 0, tok, out),
        }
        # Interleaved rounds, best of each: on a shared machine, load hits all variants alike.
        best = dict.fromkeys(variants, float("inf"))
        for _ in range(ROUNDS):
            for name, fn in variants.items():
                start = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - start)
        t_sp, t_ours, t_unit = best["sp"], best["packed"], best["unit"]
        n_tokens = int(tok.encode_packed(docs)[1].sum())
    result = {
        "benchmark": "tokenize",
        "text": where,
        "documents": len(docs),
        "bytes": nbytes,
        "tokens": n_tokens,
        "vocab_size": vocab,
        "sp_encode_MBps": round(nbytes / t_sp / 1e6, 2),
        "ours_packed_MBps": round(nbytes / t_ours / 1e6, 2),
        "ours_unit_MBps": round(nbytes / t_unit / 1e6, 2),
        "ours_packed_vs_sp": round(t_sp / t_ours, 3),
        "ours_unit_vs_sp": round(t_sp / t_unit, 3),
        "tokens_per_s": round(n_tokens / t_ours),
        "target_ratio": 0.85,
    }
    result["meets_target"] = result["ours_packed_vs_sp"] >= 0.85
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
