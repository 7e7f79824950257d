"""Per-source token streams: what `tokenize` writes and `mix` reads.

    TOKENIZED/<source>/part-UUUUU.arrow   one Arrow IPC file per input unit and source
    TOKENIZED/sources.json                per source: documents, tokens, text bytes, files
    TOKENIZED/errors/part-UUUUU.jsonl     input units that could not be read (dead letters)

Each file holds the unit's documents of one source, sorted by id: `id`, `key` (8-byte hash of the
id, the unit of seeded ordering), `text_bytes` (UTF-8 size of the cleaned text, for the disk-size
column of Table 1) and `tokens` (BOS + ids + EOS). Files are uncompressed IPC so that `mix` maps
them and copies token ranges straight out of the page cache. Unit numbers come from the sorted list
of (input file, row group), so outputs do not depend on how many workers ran.
"""

from __future__ import annotations

import json
import os
import re
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from llama_data.pipeline.doc_batches import DocUnit, read_unit
from llama_data.pipeline.document import DeadLetter
from llama_data.pipeline.mixture import doc_key, source_sort_key
from llama_data.pipeline.tokenizer import Tokenizer

SUMMARY_NAME = "sources.json"
SUMMARY_FORMAT = "llama-data.tokenized"
ENCODE_BATCH_DOCS = 256
_SAFE_SOURCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class TokenStreamError(ValueError):
    """A tokenized directory that is missing, incomplete or inconsistent."""


def token_file_schema(dtype: np.dtype) -> pa.Schema:
    item = pa.uint16() if np.dtype(dtype) == np.uint16 else pa.uint32()
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("key", pa.uint64(), nullable=False),
            pa.field("text_bytes", pa.int64(), nullable=False),
            pa.field("tokens", pa.list_(pa.field("item", item, nullable=False)), nullable=False),
        ]
    )


def unit_file_name(index: int) -> str:
    return f"part-{index:05d}.arrow"


def tokenize_unit(
    unit: DocUnit, index: int, tokenizer: Tokenizer, out_dir: str | os.PathLike[str]
) -> dict[str, Any]:
    """Encode one input unit, write one token file per source in it; return its counts.

    A unit that cannot be read becomes a dead letter in `errors/`, not a failed job.
    """
    out = Path(out_dir)
    stats: dict[str, Any] = {"unit": index, "sources": {}, "errors": 0, "empty": 0}
    letters: list[DeadLetter] = []
    try:
        table = read_unit(unit)
    except Exception as exc:  # noqa: BLE001 - an unreadable input must not stop the build
        letters.append(
            DeadLetter(
                file=unit.path,
                offset=unit.row_group if unit.row_group >= 0 else None,
                reason="unreadable_unit",
                error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}",
                stage="tokenize",
            )
        )
        _write_letters(out, index, letters)
        stats["errors"] = 1
        return stats
    ids = table.column("id").to_pylist()
    sources = table.column("source").to_pylist()
    texts = table.column("text").to_pylist()
    by_source: dict[str, list[int]] = {}
    for i, source in enumerate(sources):
        if not texts[i]:
            stats["empty"] += 1
            continue
        by_source.setdefault(source, []).append(i)
    schema = token_file_schema(tokenizer.dtype)
    for source in sorted(by_source, key=str):
        if not isinstance(source, str) or not _SAFE_SOURCE.match(source):
            letters += [
                DeadLetter(
                    file=unit.path,
                    offset=unit.row_group if unit.row_group >= 0 else None,
                    record_id=str(ids[i]),
                    reason="bad_source_name",
                    error=f"source {source!r} cannot name a token stream folder",
                    stage="tokenize",
                )
                for i in by_source[source]
            ]
            continue
        rows = sorted(by_source[source], key=lambda i: ids[i])
        doc_ids = [ids[i] for i in rows]
        doc_texts = [texts[i] for i in rows]
        flat_parts: list[np.ndarray] = []
        lengths: list[np.ndarray] = []
        for start in range(0, len(doc_texts), ENCODE_BATCH_DOCS):
            flat, lens = tokenizer.encode_packed(doc_texts[start : start + ENCODE_BATCH_DOCS])
            flat_parts.append(flat)
            lengths.append(lens)
        flat = np.concatenate(flat_parts)
        offsets = np.zeros(len(doc_ids) + 1, dtype=np.int64)
        np.cumsum(np.concatenate(lengths), out=offsets[1:])
        if offsets[-1] >= 2**31:
            raise TokenStreamError(f"{unit.name}: more than 2^31 tokens in one unit")
        text_bytes = np.fromiter(
            (len(t.encode("utf-8", "surrogatepass")) for t in doc_texts),
            dtype=np.int64,
            count=len(doc_texts),
        )
        batch = pa.record_batch(
            [
                pa.array(doc_ids, pa.string()),
                pa.array(np.fromiter((doc_key(d) for d in doc_ids), np.uint64, len(doc_ids))),
                pa.array(text_bytes),
                pa.ListArray.from_arrays(
                    pa.array(offsets.astype(np.int32)),
                    pa.array(flat, schema.field("tokens").type.value_type),
                ),
            ],
            schema=schema,
        )
        counts = {
            "documents": len(doc_ids),
            "tokens": int(offsets[-1]),
            "text_bytes": int(text_bytes.sum()),
        }
        folder = out / source
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / unit_file_name(index)
        meta = {b"llama_data": json.dumps(counts).encode()}
        with (
            pa.OSFile(str(path), "wb") as sink,
            pa.ipc.new_file(sink, schema.with_metadata(meta)) as writer,
        ):
            writer.write_batch(batch)
        stats["sources"][source] = counts
    if letters:
        _write_letters(out, index, letters)
        stats["errors"] = len(letters)
    return stats


def _write_letters(out: Path, index: int, letters: list[DeadLetter]) -> None:
    (out / "errors").mkdir(parents=True, exist_ok=True)
    text = "".join(letter.to_json() + "\n" for letter in letters)
    (out / "errors" / f"part-{index:05d}.jsonl").write_text(text, encoding="utf-8")


def summarize(out_dir: str | os.PathLike[str], tokenizer_info: dict[str, Any]) -> dict[str, Any]:
    """Write TOKENIZED/sources.json from the files' own footers (so it matches what is there)."""
    out = Path(out_dir)
    sources: dict[str, dict[str, int]] = {}
    for folder in sorted(
        (p for p in out.iterdir() if p.is_dir() and p.name != "errors"),
        key=lambda p: source_sort_key(p.name),
    ):
        total = {"documents": 0, "tokens": 0, "text_bytes": 0, "files": 0}
        for path in sorted(folder.glob("part-*.arrow")):
            counts = _file_counts(path)
            for key in ("documents", "tokens", "text_bytes"):
                total[key] += counts[key]
            total["files"] += 1
        if total["files"]:
            sources[folder.name] = total
    error_files = sorted((out / "errors").glob("*.jsonl")) if (out / "errors").is_dir() else []
    errors = [line for f in error_files for line in f.read_text(encoding="utf-8").splitlines()]
    summary = {
        "format": SUMMARY_FORMAT,
        "version": 1,
        "tokenizer": tokenizer_info,
        "sources": sources,
        "errors": len(errors),
    }
    tmp = out / (SUMMARY_NAME + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out / SUMMARY_NAME)
    return summary


def _file_counts(path: Path) -> dict[str, int]:
    try:
        with pa.memory_map(str(path)) as mm:
            schema = pa.ipc.open_file(mm).schema
    except (pa.ArrowInvalid, OSError) as exc:
        raise TokenStreamError(f"{path}: truncated or corrupt token file ({exc})") from exc
    raw = (schema.metadata or {}).get(b"llama_data")
    if raw is None:
        raise TokenStreamError(f"{path}: not a llama-data token file (no counts in its footer)")
    return json.loads(raw)


def read_summary(tokenized_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(tokenized_dir) / SUMMARY_NAME
    if not path.is_file():
        raise TokenStreamError(
            f"{tokenized_dir}: no {SUMMARY_NAME}; is this the output of `llama-data tokenize`?"
        )
    summary = json.loads(path.read_text(encoding="utf-8"))
    if summary.get("format") != SUMMARY_FORMAT:
        raise TokenStreamError(f"{path}: not a tokenized-streams summary")
    return summary


@dataclass
class _TokenFile:
    mmap: Any
    offsets: np.ndarray  # int32, len n + 1 (absolute positions in values)
    values: np.ndarray


class TokenizedSource:
    """All documents of one source, in canonical order (file name, then id), memory-mapped.

    `keys[j]` and `lengths[j]` describe document j; `doc_tokens(j)` is a view of its tokens.
    """

    def __init__(self, directory: str | os.PathLike[str], name: str) -> None:
        self.name = name
        folder = Path(directory) / name
        paths = sorted(folder.glob("part-*.arrow"))
        if not paths:
            raise TokenStreamError(f"{folder}: no token files")
        self._files: list[_TokenFile] = []
        keys, lengths, file_of, row_of = [], [], [], []
        for path in paths:
            try:
                mm = pa.memory_map(str(path))
                reader = pa.ipc.open_file(mm)
                tables = [reader.get_batch(b) for b in range(reader.num_record_batches)]
            except (pa.ArrowInvalid, OSError) as exc:
                raise TokenStreamError(f"{path}: truncated or corrupt token file ({exc})") from exc
            for batch in tables:
                tokens = batch.column("tokens")
                offsets = np.frombuffer(tokens.buffers()[1], dtype=np.int32)[
                    tokens.offset : tokens.offset + len(tokens) + 1
                ]
                item = np.uint16 if tokens.type.value_type == pa.uint16() else np.uint32
                values = np.frombuffer(tokens.buffers()[3], dtype=item)
                self._files.append(_TokenFile(mm, offsets, values))
                n = len(batch)
                keys.append(batch.column("key").to_numpy())
                lengths.append(np.diff(offsets).astype(np.int64))
                file_of.append(np.full(n, len(self._files) - 1, dtype=np.int32))
                row_of.append(np.arange(n, dtype=np.int32))
        self.keys = np.concatenate(keys)
        self.lengths = np.concatenate(lengths)
        self._file_of = np.concatenate(file_of)
        self._row_of = np.concatenate(row_of)
        self.tokens = int(self.lengths.sum())
        self.dtype = self._files[0].values.dtype

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def doc_tokens(self, j: int) -> np.ndarray:
        f = self._files[self._file_of[j]]
        r = self._row_of[j]
        return f.values[f.offsets[r] : f.offsets[r + 1]]
