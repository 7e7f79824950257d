"""`train-lm`: the perplexity model as cc_net builds it, from any document files.

Normalized lines (`normalize_for_lm`) of the training documents -> a SentencePiece unigram model
trained on that same text -> the text cut into pieces -> `lmplz -o 5 --discount_fallback` ->
`build_binary` (KenLM's probing format). The card records what went in (documents, lines,
tokens), the settings and the sha256 of each file, so that a perplexity can be traced to its model.
"""

from __future__ import annotations

import glob
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from llama_data.pipeline.ccnet.perplexity import card_path, kenlm_path, sp_path
from llama_data.pipeline.config import setting
from llama_data.pipeline.digest import file_sha256
from llama_data.pipeline.document import Document
from llama_data.pipeline.errors import ConfigError, UserError
from llama_data.pipeline.io import DocumentReader
from llama_data.pipeline.normalize import normalize_for_lm


class TrainLmError(UserError):
    """A problem the user can fix (no input, no lmplz, too little text)."""


@dataclass(frozen=True)
class TrainLmSettings:
    """`train-lm` (and a build's `<source>-lm` step): what the model is trained with."""

    lang: str = setting(
        required=True,
        help="Language code of the model (documents that name another language are skipped).",
    )
    order: int = setting(5, help="KenLM n-gram order.")
    vocab_size: int = setting(
        65536, help="SentencePiece vocabulary (an upper bound on small corpora)."
    )
    character_coverage: float = 0.9999
    max_docs: int | None = setting(None, help="Train on at most this many documents.")
    max_sentences: int = 5_000_000  # SentencePiece's input sample
    lmplz_memory: str = setting("20%", help="lmplz -S (memory for sorting).")
    keep_arpa: bool = False

    def validate(self, where: str) -> None:
        if not 2 <= self.order <= 9:
            raise ConfigError(f"{where}.order: must be in [2, 9], got {self.order}")
        if self.vocab_size < 100:
            raise ConfigError(f"{where}.vocab_size: must be >= 100, got {self.vocab_size}")
        if self.max_docs is not None and self.max_docs < 1:
            raise ConfigError(f"{where}.max_docs: must be >= 1")


def find_tool(name: str) -> str:
    """A KenLM binary on PATH, or next to the running Python (a venv's bin/)."""
    found = shutil.which(name)
    if found:
        return found
    candidate = Path(sys.executable).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    raise TrainLmError(
        f"`{name}` not found on PATH or next to {sys.executable}; build KenLM (make kenlm)"
    )


def expand_inputs(patterns: list[str] | str) -> list[str]:
    pats = [patterns] if isinstance(patterns, str) else list(patterns)
    files: list[str] = []
    for pat in pats:
        matches = sorted(glob.glob(pat, recursive=True))
        files.extend(m for m in matches if os.path.isfile(m))
    return sorted(dict.fromkeys(files))


def _doc_lang(doc: Document) -> str | None:
    for key in ("language", "lang", "wiki_lang"):
        value = doc.meta.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def iter_training_docs(files: list[str], lang: str, stats: dict[str, int]) -> Iterator[Document]:
    """Documents of `lang` (documents that do not say their language are taken as they are)."""
    reader = DocumentReader(source="lm")
    for path in files:
        for item in reader.read_path(path):
            if not isinstance(item, Document):
                stats["unreadable"] += 1
                continue
            doc_lang = _doc_lang(item)
            if doc_lang is not None and doc_lang != lang:
                stats["other_language"] += 1
                continue
            yield item


def train_lm(inputs: list[str] | str, output: str | Path, settings: TrainLmSettings) -> dict:
    """Train and write `<lang>.sp.model`, `<lang>.arpa.bin`, `<lang>.card.json`; return the card."""
    import sentencepiece as spm

    lmplz, build_binary = find_tool("lmplz"), find_tool("build_binary")
    files = expand_inputs(inputs)
    if not files:
        raise TrainLmError(f"no input files match {inputs!r}")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    lang = settings.lang
    started = time.time()
    stats = {"docs": 0, "lines": 0, "chars": 0, "unreadable": 0, "other_language": 0}
    with tempfile.TemporaryDirectory(prefix=f"train-lm-{lang}-", dir=out) as tmp:
        work = Path(tmp)
        text_file = work / "normalized.txt"
        with open(text_file, "w", encoding="utf-8") as f:
            for doc in iter_training_docs(files, lang, stats):
                if settings.max_docs is not None and stats["docs"] >= settings.max_docs:
                    break
                stats["docs"] += 1
                for line in doc.text.split("\n"):
                    norm = normalize_for_lm(line)
                    if norm:
                        f.write(norm + "\n")
                        stats["lines"] += 1
                        stats["chars"] += len(norm)
        if stats["lines"] == 0:
            raise TrainLmError(f"no {lang!r} text in {len(files)} input file(s)")
        prefix = work / "sp"
        # Lines in and the model out through Python rather than file names: a model trained from
        # files records their (temporary, random) paths, and so differed from run to run.
        model = io.BytesIO()
        with open(text_file, encoding="utf-8") as lines:
            spm.SentencePieceTrainer.train(
                sentence_iterator=(line.rstrip("\n") for line in lines),
                model_writer=model,
                vocab_size=settings.vocab_size,
                hard_vocab_limit=False,  # small corpora get the vocabulary they can support
                character_coverage=settings.character_coverage,
                model_type="unigram",
                input_sentence_size=settings.max_sentences,
                shuffle_input_sentence=True,
                num_threads=min(4, os.cpu_count() or 1),
                minloglevel=2,
            )
        Path(f"{prefix}.model").write_bytes(model.getvalue())
        sp = spm.SentencePieceProcessor(model_file=f"{prefix}.model")
        pieces_file = work / "pieces.txt"
        tokens = 0
        with (
            open(text_file, encoding="utf-8") as src,
            open(pieces_file, "w", encoding="utf-8") as dst,
        ):
            batch: list[str] = []
            for line in src:
                batch.append(line.rstrip("\n"))
                if len(batch) >= 4096:
                    tokens += _write_pieces(sp, batch, dst)
                    batch = []
            tokens += _write_pieces(sp, batch, dst)
        arpa = work / f"{lang}.arpa"
        _run(
            [
                lmplz,
                "-o",
                str(settings.order),
                "--discount_fallback",
                "-S",
                settings.lmplz_memory,
                "-T",
                str(work),
            ],
            stdin=pieces_file,
            stdout=arpa,
        )
        binary = work / f"{lang}.arpa.bin"
        _run([build_binary, str(arpa), str(binary)])
        os.replace(f"{prefix}.model", sp_path(out, lang))
        os.replace(binary, kenlm_path(out, lang))
        if settings.keep_arpa:
            os.replace(arpa, out / f"{lang}.arpa")
    card = {
        "lang": lang,
        "inputs": files,
        "training": {**stats, "tokens": tokens, "vocab_size": sp.get_piece_size()},
        "settings": asdict(settings),
        "method": "cc_net: normalize_for_lm -> sentencepiece unigram -> lmplz -o 5 "
        "--discount_fallback -> build_binary; perplexity = 10^(-sum log10 p / sum tokens)",
        "files": {
            p.name: {"sha256": file_sha256(p), "bytes": p.stat().st_size}
            for p in (sp_path(out, lang), kenlm_path(out, lang))
        },
        "seconds": round(time.time() - started, 2),
    }
    tmp_card = card_path(out, lang).with_suffix(".json.tmp")
    tmp_card.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp_card, card_path(out, lang))
    return card


def _write_pieces(sp, batch: list[str], dst) -> int:  # noqa: ANN001 - sentencepiece has no stubs
    if not batch:
        return 0
    n = 0
    for pieces in sp.encode(batch, out_type=str):
        if pieces:
            dst.write(" ".join(pieces) + "\n")
            n += len(pieces) + 1  # + </s>, as perplexity counts it
    return n


def _run(cmd: list[str], stdin: Path | None = None, stdout: Path | None = None) -> None:
    with (
        open(stdin, "rb") if stdin else open(os.devnull, "rb") as fin,
        open(stdout, "wb") if stdout else open(os.devnull, "wb") as fout,
    ):
        proc = subprocess.run(cmd, stdin=fin, stdout=fout, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace")[-2000:]
        raise TrainLmError(f"{Path(cmd[0]).name} failed (exit {proc.returncode}): {tail}")
