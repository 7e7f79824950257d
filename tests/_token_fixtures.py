"""Small stage outputs for the token tests: Parquet files in the real stage schema, per source."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow.parquet as pq

from llama_data.pipeline.doc_batches import doc_units, expand_inputs
from llama_data.pipeline.document import Document
from llama_data.pipeline.schema import BASE_SCHEMA
from llama_data.pipeline.token_streams import summarize, tokenize_unit
from llama_data.pipeline.tokenizer import Tokenizer, train_tokenizer_from_files

WORDS = {
    "commoncrawl": [
        "the",
        "of",
        "and",
        "to",
        "in",
        "is",
        "that",
        "for",
        "it",
        "as",
        "was",
        "with",
        "be",
        "by",
        "on",
        "not",
        "he",
        "this",
        "are",
        "or",
        "his",
        "from",
        "at",
        "which",
        "but",
        "have",
        "an",
        "they",
        "you",
        "were",
        "her",
        "she",
        "there",
        "been",
        "one",
        "all",
        "we",
        "their",
        "has",
        "would",
        "when",
        "city",
        "market",
        "price",
        "free",
        "online",
        "news",
        "weather",
        "travel",
        "hotel",
        "page",
        "contact",
        "home",
    ],
    "c4": [
        "we",
        "our",
        "new",
        "time",
        "people",
        "year",
        "way",
        "day",
        "man",
        "thing",
        "woman",
        "life",
        "child",
        "world",
        "school",
        "state",
        "family",
        "student",
        "group",
        "country",
        "problem",
        "hand",
        "part",
        "place",
        "case",
        "week",
        "company",
        "system",
        "program",
    ],
    "wikipedia": [
        "born",
        "died",
        "history",
        "population",
        "river",
        "district",
        "village",
        "species",
        "album",
        "film",
        "university",
        "season",
        "league",
        "census",
        "municipality",
        "located",
        "century",
        "according",
        "Wien",
        "München",
        "Kraków",
        "São",
        "Paulo",
    ],
    "books": [
        "said",
        "alice",
        "rabbit",
        "queen",
        "looked",
        "little",
        "thought",
        "herself",
        "nothing",
        "very",
        "dear",
        "curious",
        "began",
        "door",
        "garden",
        "moment",
        "again",
    ],
    "arxiv": [
        "we",
        "prove",
        "theorem",
        "lemma",
        "let",
        "denote",
        "equation",
        "model",
        "results",
        "show",
        "section",
        "proposed",
        "method",
        "data",
        "training",
        "convolution",
        "kernel",
        "stride",
        "padding",
    ],
    "stackexchange": [
        "question",
        "answer",
        "beer",
        "brewing",
        "yeast",
        "hops",
        "temperature",
        "bottle",
        "carbonation",
        "recipe",
        "gravity",
        "fermentation",
        "ale",
        "lager",
        "stout",
    ],
}

CODE = [
    "def add(a, b):\n\treturn a + b\n",
    'int main(void) {\n    printf("%d\\n", 42);\n    return 0;\n}\n',
    "for i in range(10):\n        if i % 2:\n            print(i)\n",
    '#include <stdio.h>\n#!/bin/sh\necho "$HOME"  # two  spaces\n',
]


def make_text(source: str, rng: random.Random, words: int) -> str:
    if source == "github":
        return "".join(rng.choice(CODE) for _ in range(max(1, words // 12)))
    vocab = WORDS[source]
    out = []
    for i in range(words):
        w = rng.choice(vocab)
        if rng.random() < 0.05:
            w = str(rng.randint(0, 99999))
        out.append(w)
        if i % 17 == 16:
            out.append(".\n" if rng.random() < 0.3 else ".")
    return " ".join(out).replace(" .", ".")


def write_source(root: Path, source: str, n_docs: int, words: int = 60, files: int = 2) -> Path:
    """OUT/<source>/part-*.parquet as a stage writes them (row groups of 16 documents)."""
    rng = random.Random(f"fixture:{source}")
    out = root / source
    out.mkdir(parents=True, exist_ok=True)
    docs = [
        Document(f"{source}-{i:05d}", source, make_text(source, rng, rng.randint(5, words)))
        for i in range(n_docs)
    ]
    per_file = (n_docs + files - 1) // files
    for f in range(files):
        chunk = docs[f * per_file : (f + 1) * per_file]
        if chunk:
            pq.write_table(
                BASE_SCHEMA.to_table(chunk), out / f"part-{f:05d}.parquet", row_group_size=16
            )
    return out


DEFAULT_SIZES = {
    "commoncrawl": 120,
    "c4": 60,
    "github": 20,
    "wikipedia": 20,
    "books": 12,
    "arxiv": 12,
    "stackexchange": 12,
}


def write_all(root: Path, sizes: dict[str, int] | None = None) -> Path:
    for source, n in (sizes or DEFAULT_SIZES).items():
        write_source(root, source, n)
    return root


def tokenized_fixture(root: Path, tmp_path: Path) -> tuple[Path, Tokenizer]:
    """Stage outputs -> tokenizer -> token streams, engine-free (the Beam job runs the same)."""
    docs = write_all(root)
    card_dir = tmp_path / "tok"
    train_tokenizer_from_files(str(docs / "*" / "*.parquet"), card_dir, vocab_size=600)
    tok = Tokenizer(card_dir)
    units = doc_units(expand_inputs(str(docs / "*" / "*.parquet")))
    out = tmp_path / "tokenized"
    out.mkdir()
    for i, unit in enumerate(units):
        tokenize_unit(unit, i, tok, out)
    summarize(out, {"path": str(tok.path), **tok.describe()})
    return out, tok
