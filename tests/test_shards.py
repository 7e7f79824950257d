"""Shard format: schema, zero-copy memory-mapped reads, verification and clear errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from llama_data.pipeline.shards import (
    FORMAT_NAME,
    ShardDataset,
    ShardError,
    ShardWriter,
    dtype_for_vocab,
    shard_name,
)

CTX = 16


def _rows(n: int, seed: int, vocab: int = 32000) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab, size=(n, CTX + 1), dtype=np.uint16)


def _write(directory: Path, rows_per_shard: int = 7) -> tuple[np.ndarray, list[str]]:
    a, b = _rows(10, 1), _rows(6, 2)
    order = ["a"] * 4 + ["b"] * 3 + ["a"] * 6 + ["b"] * 3
    data, sources, ia, ib = [], [], 0, 0
    with ShardWriter(directory, CTX, "uint16", rows_per_shard=rows_per_shard) as w:
        for s in order:
            row = a[ia] if s == "a" else b[ib]
            ia, ib = ia + (s == "a"), ib + (s == "b")
            w.add(row, s)
            data.append(row)
            sources.append(s)
        w.close(
            {
                "tokenizer": {
                    "path": "tok.model",
                    "sha256": "0" * 64,
                    "vocab_size": 32000,
                    "bos_id": 1,
                    "eos_id": 2,
                },
                "sources": {
                    "a": {"tokens_used": 170},
                    "b": {"tokens_used": 102},
                    "empty": {"tokens_used": 0},
                },
            }
        )
    return np.stack(data), sources


def test_schema_and_manifest(tmp_path: Path) -> None:
    out = tmp_path / "tokens"
    _write(out)
    files = sorted(p.name for p in out.iterdir())
    assert files == ["manifest.json", shard_name(0), shard_name(1), shard_name(2)]
    assert not (tmp_path / "tokens.tmp").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == FORMAT_NAME
    assert manifest["context_length"] == CTX and manifest["dtype"] == "uint16"
    assert [s["rows"] for s in manifest["shards"]] == [7, 7, 2]
    assert manifest["total_rows"] == 16
    assert list(manifest["sources"]) == ["a", "b", "empty"]
    assert manifest["sources"]["a"] == {"tokens_used": 170, "rows": 10}
    assert manifest["sources"]["empty"]["rows"] == 0
    with pa.memory_map(str(out / shard_name(0))) as mm:
        schema = pa.ipc.open_file(mm).schema
    assert schema.field("tokens").type == pa.list_(
        pa.field("item", pa.uint16(), nullable=False), CTX + 1
    )
    assert schema.field("source").type == pa.dictionary(pa.int32(), pa.string())


def test_zero_copy_random_access_and_iteration(tmp_path: Path) -> None:
    out = tmp_path / "tokens"
    data, sources = _write(out)
    ds = ShardDataset(out, verify="sha256")
    assert len(ds) == 16 and ds.context_length == CTX
    assert (ds.vocab_size, ds.bos_id, ds.eos_id) == (32000, 1, 2)
    assert ds.sources == ["a", "b", "empty"]
    for i in range(len(ds)):
        row = ds.tokens(i)
        assert row.shape == (CTX + 1,) and row.dtype == np.uint16
        np.testing.assert_array_equal(row, data[i])
        assert ds.source(i) == sources[i]
        assert ds.sources[ds.source_index(i)] == sources[i]
    row = ds.tokens(8)
    # A view over the mapped file: no owned memory, not writable, not a copy.
    assert not row.flags.owndata and not row.flags.writeable
    assert row.base is not None
    np.testing.assert_array_equal(np.stack(list(ds.iter_rows())), data)
    np.testing.assert_array_equal(np.stack(list(ds.iter_rows(start=5, step=3))), data[5::3])
    np.testing.assert_array_equal(ds.take([15, 0, 7]), data[[15, 0, 7]])
    assert ds.source_counts() == {"a": 10, "b": 6, "empty": 0}
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone.tokens(9), data[9])


def test_uint32_and_range_checks(tmp_path: Path) -> None:
    assert dtype_for_vocab(32000) == "uint16" and dtype_for_vocab(65536) == "uint16"
    assert dtype_for_vocab(65537) == "uint32"
    rows = np.arange(3 * (CTX + 1), dtype=np.int64).reshape(3, CTX + 1) + 70000
    with ShardWriter(tmp_path / "u32", CTX, "uint32", target_bytes=1 << 20) as w:
        w.add_many(rows, "x")
        w.close()
    ds = ShardDataset(tmp_path / "u32")
    assert ds.dtype == np.uint32
    np.testing.assert_array_equal(ds.tokens(2), rows[2])
    w = ShardWriter(tmp_path / "u16", CTX, "uint16")
    with pytest.raises(ValueError, match="out of range"):
        w.add(rows[0], "x")
    with pytest.raises(ValueError, match="shape"):
        w.add(np.zeros(CTX, dtype=np.uint16), "x")
    w.abort()
    assert not (tmp_path / "u16").exists() and not (tmp_path / "u16.tmp").exists()


def test_sha256_mismatch_detected(tmp_path: Path) -> None:
    out = tmp_path / "tokens"
    data, _ = _write(out)
    path = out / shard_name(1)
    raw = bytearray(path.read_bytes())
    # Flip one token byte inside row 8's data (same size: only sha256 can tell).
    at = bytes(raw).index(data[8].tobytes()) + 3
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    ShardDataset(out, verify="size")  # sizes still agree
    with pytest.raises(ShardError, match="sha256"):
        ShardDataset(out, verify="sha256")


def test_truncated_shard_clear_error(tmp_path: Path) -> None:
    out = tmp_path / "tokens"
    _write(out)
    path = out / shard_name(0)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ShardError, match="truncated"):
        ShardDataset(out, verify="size")
    with pytest.raises(ShardError, match="truncated or corrupt"):
        ShardDataset(out, verify="none")


def test_manifest_mismatch_errors(tmp_path: Path) -> None:
    out = tmp_path / "tokens"
    _write(out)
    manifest_path = out / "manifest.json"
    original = manifest_path.read_text()

    manifest = json.loads(original)
    manifest["context_length"] = CTX + 1
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ShardError, match="schema"):
        ShardDataset(out, verify="none")

    manifest = json.loads(original)
    manifest["shards"][0]["rows"] += 1
    manifest["total_rows"] += 1
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ShardError, match="rows"):
        ShardDataset(out, verify="none")

    manifest = json.loads(original)
    manifest["total_rows"] = 3
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ShardError, match="total_rows"):
        ShardDataset(out)

    manifest_path.unlink()
    with pytest.raises(ShardError, match="manifest"):
        ShardDataset(out)
    with pytest.raises(ShardError, match="missing"):
        manifest_path.write_text(original)
        (out / shard_name(2)).unlink()
        ShardDataset(out)


def test_writer_is_deterministic(tmp_path: Path) -> None:
    _write(tmp_path / "one")
    _write(tmp_path / "two")
    for name in ["manifest.json", shard_name(0), shard_name(1), shard_name(2)]:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
