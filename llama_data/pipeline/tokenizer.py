"""The tokenizer: SentencePiece BPE with LLaMA's settings, trained on a seeded mixture sample.


LLaMA's tokenizer (Touvron et al. 2023, §2.1) is BPE in SentencePiece that splits numbers into
single digits and falls back to bytes for unknown UTF-8 characters. Its model file also shows the
rest of the settings we copy: identity normalization (text is not NFKC-folded), no removal of
extra whitespace (indentation and runs of spaces survive), whitespace-only pieces allowed (so code
indentation gets its own tokens), a dummy-prefix space, unk/bos/eos = 0/1/2 and no pad.

With these settings `decode(encode(text)) == text` for any text, with one exception inherited from
SentencePiece itself: a literal U+2581 (the meta-symbol that stands for a space) decodes to a space.

The training sample is drawn from the sources at the mixture proportions: each source gets
`weight * sample_bytes` of its documents, chosen as the documents with the smallest seeded hash of
their id (a bottom-k sample: uniform, reproducible, and independent of file order or worker count).
Documents are split into lines, SentencePiece's unit of training; newlines themselves are then
encoded by byte fallback, as in LLaMA.
"""

from __future__ import annotations

import hashlib
import heapq
import io
import json
import os
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sentencepiece as spm

from llama_data.pipeline.digest import file_sha256
from llama_data.pipeline.doc_batches import doc_units, expand_inputs, iter_documents, read_unit
from llama_data.pipeline.mixture import TABLE1_WEIGHTS, source_sort_key

CARD_FORMAT = "llama-data.tokenizer-card"
CARD_VERSION = 1
MODEL_NAME = "tokenizer.model"
CARD_NAME = "tokenizer.json"
DEFAULT_SAMPLE_BYTES = 100_000_000
# SentencePiece skips sentences longer than max_sentence_length bytes; longer lines (minified code,
# tables) are cut into pieces of at most this many characters (4 bytes each at most) instead.
MAX_LINE_CHARS = 1000

# LLaMA's trainer and normalizer settings (from its tokenizer.model's trainer_spec/normalizer_spec).
LLAMA_SETTINGS: dict[str, Any] = {
    "model_type": "bpe",
    "character_coverage": 0.99995,
    "split_digits": True,
    "byte_fallback": True,
    "normalization_rule_name": "identity",
    "remove_extra_whitespaces": False,
    "add_dummy_prefix": True,
    "allow_whitespace_only_pieces": True,
    "split_by_unicode_script": True,
    "split_by_whitespace": True,
    "split_by_number": True,
    "max_sentencepiece_length": 16,
    "max_sentence_length": 4192,
    "shuffle_input_sentence": True,
    "input_sentence_size": 0,
    "num_sub_iterations": 2,
    "vocabulary_output_piece_score": True,
    "hard_vocab_limit": True,
    "unk_id": 0,
    "bos_id": 1,
    "eos_id": 2,
    "pad_id": -1,
    "unk_piece": "<unk>",
    "bos_piece": "<s>",
    "eos_piece": "</s>",
}


class TokenizerError(ValueError):
    """A tokenizer that cannot be trained or loaded as asked (the user can fix it)."""


def sample_key(seed: int, source: str, doc_id: str) -> int:
    digest = hashlib.blake2b(f"{seed}\x00{source}\x00{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@dataclass
class SourceSample:
    """The bottom-k-by-hash documents of one source whose text adds up to its byte target."""

    target_bytes: int
    available_documents: int = 0
    available_bytes: int = 0
    _heap: list[tuple[int, str, int, str]] = field(default_factory=list)  # (-key, id, bytes, text)
    _bytes: int = 0

    def offer(self, key: int, doc_id: str, text: str) -> None:
        size = len(text.encode("utf-8"))
        self.available_documents += 1
        self.available_bytes += size
        if self._bytes >= self.target_bytes and self._heap and -self._heap[0][0] < key:
            return  # already covered by documents with smaller keys
        heapq.heappush(self._heap, (-key, doc_id, size, text))
        self._bytes += size
        # Drop the largest keys while the rest still covers the target.
        while self._heap and self._bytes - self._heap[0][2] >= self.target_bytes:
            self._bytes -= heapq.heappop(self._heap)[2]

    def documents(self) -> list[tuple[str, str]]:
        """(id, text) in key order: the order the trainer sees them, reproducible."""
        return [(d, t) for _, d, _, t in sorted(self._heap, key=lambda e: (-e[0], e[1]))]

    @property
    def sampled_bytes(self) -> int:
        return self._bytes


def sample_targets(
    weights: Mapping[str, float], present: Collection[str], sample_bytes: int
) -> dict[str, int]:
    """Bytes to sample per source: the weights renormalized over the weighted sources present."""
    active = {s: w for s, w in weights.items() if w > 0 and s in present}
    total = sum(active.values())
    return {s: int(sample_bytes * w / total) for s, w in active.items()} if total else {}


def draw_sample(
    documents: Iterable[tuple[str, str, str]], targets: Mapping[str, int], seed: int
) -> dict[str, SourceSample]:
    """Per source, a seeded sample of about its target bytes, from (source, id, text) triples.

    The input order does not matter. Sources without a target are not sampled; a source with less
    text than its target gives all of it (the card records both numbers).
    """
    samples = {s: SourceSample(t) for s, t in targets.items()}
    for source, doc_id, text in documents:
        sample = samples.get(source)
        if sample is not None:
            sample.offer(sample_key(seed, source, doc_id), doc_id, text)
    return dict(sorted(samples.items(), key=lambda kv: source_sort_key(kv[0])))


def training_sentences(texts: Iterable[str]) -> Iterator[str]:
    """Lines of the documents (SentencePiece's training unit), long lines cut into pieces."""
    for text in texts:
        for line in text.split("\n"):
            if not line:
                continue
            for start in range(0, len(line), MAX_LINE_CHARS):
                yield line[start : start + MAX_LINE_CHARS]


def train_tokenizer(
    documents: Iterable[tuple[str, str, str]],
    output_dir: str | os.PathLike[str],
    vocab_size: int = 32000,
    weights: Mapping[str, float] | None = None,
    sample_bytes: int = DEFAULT_SAMPLE_BYTES,
    seed: int = 0,
    num_threads: int = 4,
    settings: Mapping[str, Any] | None = None,
    present: Collection[str] | None = None,
) -> dict[str, Any]:
    """Train on a mixture sample; write tokenizer.model and tokenizer.json (the card); return the card.

    `present` names the sources in `documents` (so targets are known before streaming them);
    without it the documents are materialized to find out.

    `num_threads` is recorded in the model file, so it is a fixed setting (not the machine's core
    count) to keep the model byte-identical across machines.
    """
    weights = dict(TABLE1_WEIGHTS if weights is None else weights)
    if present is None:
        documents = list(documents)
        present = {source for source, _, _ in documents}
    targets = sample_targets(weights, present, sample_bytes)
    samples = draw_sample(documents, targets, seed)
    if not samples:
        raise TokenizerError(
            f"no documents of the weighted sources ({', '.join(sorted(weights))}) in the input "
            f"(sources present: {', '.join(sorted(present)) or 'none'}); give weights that name "
            "your sources (--weights FILE, or [mixture] weights in a build config)"
        )
    texts = [text for sample in samples.values() for _, text in sample.documents()]
    sentences = list(training_sentences(texts))
    if not sentences:
        raise TokenizerError("the sampled documents hold no text")
    options = {**LLAMA_SETTINGS, **(settings or {}), "vocab_size": int(vocab_size)}
    options["num_threads"] = int(num_threads)
    model = io.BytesIO()
    spm.set_random_generator_seed(seed)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences), model_writer=model, minloglevel=2, **options
        )
    except RuntimeError as exc:
        raise TokenizerError(f"SentencePiece training failed: {exc}") from exc
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / MODEL_NAME
    tmp = out / (MODEL_NAME + ".tmp")
    tmp.write_bytes(model.getvalue())
    os.replace(tmp, model_path)
    tok = Tokenizer(model_path)
    card = {
        "format": CARD_FORMAT,
        "version": CARD_VERSION,
        "model": MODEL_NAME,
        "sha256": file_sha256(model_path),
        "vocab_size": tok.vocab_size,
        "bos_id": tok.bos_id,
        "eos_id": tok.eos_id,
        "unk_id": tok.unk_id,
        "pad_id": tok.pad_id,
        "sentencepiece_version": spm.__version__,
        "settings": options,
        "seed": seed,
        "weights": weights,
        "sample_bytes": sample_bytes,
        "sentences": len(sentences),
        "sample": {
            source: {
                "target_bytes": s.target_bytes,
                "documents": len(s._heap),
                "bytes": s.sampled_bytes,
                "available_documents": s.available_documents,
                "available_bytes": s.available_bytes,
            }
            for source, s in samples.items()
        },
    }
    tmp = out / (CARD_NAME + ".tmp")
    tmp.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out / CARD_NAME)
    return card


def resolve_model_path(path: str | os.PathLike[str]) -> Path:
    """A model file, or a directory written by train-tokenizer."""
    p = Path(path)
    if p.is_dir():
        p = p / MODEL_NAME
    if not p.is_file():
        raise TokenizerError(f"{path}: no SentencePiece model found")
    return p


class Tokenizer:
    """A loaded SentencePiece model with document framing (BOS ... EOS) and batched encoding.

    Picklable: only the path travels, the processor is loaded on first use in each worker.
    """

    _sp: spm.SentencePieceProcessor | None = None

    def __init__(self, model_path: str | os.PathLike[str], num_threads: int = 1) -> None:
        self.path = resolve_model_path(model_path)
        self.num_threads = num_threads

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "num_threads": self.num_threads}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def sp(self) -> spm.SentencePieceProcessor:
        if self._sp is None:
            try:
                self._sp = spm.SentencePieceProcessor(model_file=str(self.path))
            except (OSError, RuntimeError) as exc:
                raise TokenizerError(f"{self.path}: not a SentencePiece model ({exc})") from exc
        return self._sp

    @property
    def vocab_size(self) -> int:
        return int(self.sp.get_piece_size())

    @property
    def bos_id(self) -> int:
        return int(self.sp.bos_id())

    @property
    def eos_id(self) -> int:
        return int(self.sp.eos_id())

    @property
    def unk_id(self) -> int:
        return int(self.sp.unk_id())

    @property
    def pad_id(self) -> int:
        return int(self.sp.pad_id())

    @property
    def sha256(self) -> str:
        return file_sha256(self.path)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint16 if self.vocab_size <= 1 << 16 else np.uint32)

    def describe(self) -> dict[str, Any]:
        """What a manifest records about the tokenizer."""
        return {
            "sha256": self.sha256,
            "vocab_size": self.vocab_size,
            "bos_id": self.bos_id,
            "eos_id": self.eos_id,
        }

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text, out_type=int)

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        return self.sp.decode([int(i) for i in ids])

    def encode_framed(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Each text as BOS + ids + EOS (one C++ call for the batch, threads inside)."""
        return self.sp.encode(
            list(texts),
            return_type="numpy",
            add_bos=True,
            add_eos=True,
            num_threads=self.num_threads,
        )

    def encode_packed(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The batch as one flat array of framed documents plus each document's length."""
        arrays = self.encode_framed(texts)
        lengths = np.fromiter((a.shape[0] for a in arrays), dtype=np.int64, count=len(arrays))
        flat = (
            np.concatenate(arrays).astype(self.dtype, copy=False)
            if arrays
            else np.empty(0, self.dtype)
        )
        return flat, lengths


def train_tokenizer_from_files(
    patterns: str | Sequence[str],
    output_dir: str | os.PathLike[str],
    **options: Any,
) -> dict[str, Any]:
    """train_tokenizer over stage outputs (Parquet/JSONL documents) matching the glob(s)."""
    paths = expand_inputs(patterns)
    if not paths:
        raise TokenizerError(f"no input files match {patterns!r}")
    units = doc_units(paths)
    present: set[str] = set()
    for unit in units:
        present.update(read_unit(unit, ("source",)).column("source").unique().to_pylist())
    card = train_tokenizer(iter_documents(units), output_dir, present=present, **options)
    return card
