"""Shard format: schema, zero-copy memory-mapped reads, verification and clear errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from _token_fixtures import tokenized_fixture as _tokenized
from _token_fixtures import write_all

from llama_data.pipeline.doc_batches import doc_units
from llama_data.pipeline.mix_shards import prepare_mix, run_mix_local
from llama_data.pipeline.mixture import MixtureError, epoch_order, load_mixture_spec
from llama_data.pipeline.shards import (
    FORMAT_NAME,
    ShardDataset,
    ShardError,
    ShardWriter,
    dtype_for_vocab,
    shard_name,
)
from llama_data.pipeline.token_streams import TokenizedSource, summarize, tokenize_unit

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
    assert not list(tmp_path.glob("tokens.tmp*"))
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
    assert not (tmp_path / "u16").exists() and not list(tmp_path.glob("u16.tmp*"))


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


def test_add_many_with_source_indices(tmp_path: Path) -> None:
    rows = _rows(5, 9)
    with ShardWriter(tmp_path / "s", CTX, "uint16", rows_per_shard=2, sources=["x", "y"]) as w:
        w.add_many(rows, np.array([1, 0, 1, 1, 0]))
        manifest = w.close()
    assert manifest["sources"] == {"x": {"rows": 2}, "y": {"rows": 3}}
    ds = ShardDataset(tmp_path / "s")
    assert [ds.source(i) for i in range(5)] == ["y", "x", "y", "y", "x"]
    np.testing.assert_array_equal(ds.take(range(5)), rows)


# --- shards written by tokenize + mix ------------------------------------------------------------


def test_mix_rows_are_the_seeded_streams_in_schedule_order(tmp_path: Path) -> None:
    tokenized, tok = _tokenized(tmp_path / "docs", tmp_path)
    ctx = 32
    job = prepare_mix(
        tokenized,
        load_mixture_spec(),
        context_length=ctx,
        rows_per_shard=40,
        seed=5,
        output_dir=tmp_path / "shards",
    )
    manifest = run_mix_local(job, tmp_path / "shards")
    ds = ShardDataset(tmp_path / "shards", verify="sha256")
    assert len(ds) == job.plan.total_rows == manifest["total_rows"]
    assert ds.bos_id == 1 and ds.eos_id == 2 and ds.vocab_size == 600
    assert ds.manifest["tokenizer"]["path"] == "../tok/tokenizer.model"
    names = ds.sources
    # Every prefix of the shard sequence holds each source within one row of its weight.
    weights = np.asarray([manifest["weights"][n] for n in names])
    seen = np.zeros(len(names))
    for i in range(len(ds)):
        seen[ds.source_index(i)] += 1
        assert np.all(np.abs(seen - weights * (i + 1)) < 1), i
    # Per-source accounting matches the files.
    counts = ds.source_counts()
    for name, entry in manifest["sources"].items():
        assert counts[name] == entry["rows"]
        assert entry["tokens_used"] == entry["rows"] * ctx
        assert entry["epochs"] == pytest.approx(
            entry["tokens_used"] / entry["tokens_available"], abs=1e-6
        )
        assert entry["proportion"] == pytest.approx(entry["rows"] / len(ds), abs=1e-6)
        assert entry["disk_bytes"] > 0 and entry["documents"] > 0
    # Each source's rows, in order, are its seeded stream: documents in epoch order, BOS..EOS.
    for s, name in enumerate(names):
        rows = [ds.tokens(i) for i in range(len(ds)) if ds.source_index(i) == s]
        for a, b in zip(rows, rows[1:], strict=False):
            assert a[-1] == b[0]  # consecutive rows overlap by one token
        stream = np.concatenate([r[:-1] for r in rows] + [rows[-1][-1:]])
        source = TokenizedSource(tokenized, name)
        epochs = [epoch_order(source.keys, 5, name, e) for e in range(3)]
        expected = np.concatenate([source.doc_tokens(int(j)) for order in epochs for j in order])
        np.testing.assert_array_equal(stream, expected[: stream.shape[0]])
    # CommonCrawl is the scarce source here: used up to (not beyond) its one epoch.
    cc = manifest["sources"]["commoncrawl"]
    assert 1 - ctx / cc["tokens_available"] < cc["epochs"] <= 1.0
    text = tok.decode(ds.tokens(0))
    assert text and "\ufffd" not in text


def test_mix_missing_source_needs_renormalize(tmp_path: Path) -> None:
    tokenized, _ = _tokenized(tmp_path / "docs", tmp_path)
    import shutil

    shutil.rmtree(tokenized / "arxiv")
    summarize(tokenized, json.loads((tokenized / "sources.json").read_text())["tokenizer"])
    with pytest.raises(MixtureError, match="arxiv"):
        prepare_mix(tokenized, load_mixture_spec(), context_length=32)
    job = prepare_mix(tokenized, load_mixture_spec(), context_length=32, renormalize=True)
    manifest = run_mix_local(job, tmp_path / "shards")
    assert manifest["renormalized"] is True and manifest["dropped_sources"] == ["arxiv"]
    assert "arxiv" not in manifest["sources"]
    assert sum(manifest["weights"].values()) == pytest.approx(1.0)


@pytest.mark.slow
def test_byte_identical_across_workers(tmp_path: Path) -> None:
    """tokenize + mix on Beam's DirectRunner with 1 and 2 workers give the same bytes."""
    from llama_data.beam_jobs.runners import RunOptions
    from llama_data.beam_jobs.tokenize import mix_cli, tokenize_cli, train_tokenizer_cli

    docs = write_all(tmp_path / "docs")
    pattern = str(docs / "*" / "*.parquet")
    train_tokenizer_cli([pattern], str(tmp_path / "tok"), 600, "table1", 10**8, 0, 2)
    outputs = {}
    for workers in (1, 2):
        run = RunOptions(workers=workers, quiet=True)
        tokenized = tmp_path / f"tokenized-{workers}"
        tokenize_cli([pattern], str(tmp_path / "tok"), str(tokenized), run)
        out = tmp_path / f"w{workers}" / "shards"
        mix_cli(str(tokenized), str(out), "table1", run, context_length=32, rows_per_shard=30)
        outputs[workers] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert len(outputs[1]) > 2
    assert outputs[1] == outputs[2]


@pytest.mark.slow
def test_build_runs_token_stages_after_sources(tmp_path: Path) -> None:
    """`build`: sources -> tokenizer -> tokenized -> tokens, Table 1 printed, reruns skipped."""
    import pyarrow.parquet as pq

    from conftest import write_jsonl
    from llama_data.beam_jobs.build import run_build
    from llama_data.beam_jobs.runners import RunOptions
    from llama_data.pipeline.config import load_config

    write_all(tmp_path / "stage", {"commoncrawl": 40, "wikipedia": 20})
    rows = {}
    for source in ("commoncrawl", "wikipedia"):
        table = pq.read_table(tmp_path / "stage" / source)
        rows[source] = [{"id": r["id"], "text": r["text"]} for r in table.to_pylist()]
        write_jsonl(tmp_path / "in" / f"{source}.jsonl", rows[source])
    config = tmp_path / "build.toml"
    config.write_text(
        "\n".join(
            [
                "[build]",
                "workers = 1",
                *(f'[sources.{s}]\nformat = "documents"\ninputs = ["in/{s}.jsonl"]' for s in rows),
                "[tokenizer]\nvocab_size = 400",
                "[mixture]\nrenormalize = true\ncontext_length = 32",
            ]
        )
    )
    printed: list[str] = []
    out = tmp_path / "out"
    results = run_build(load_config(config), str(out), RunOptions(quiet=False), echo=printed.append)
    assert [r.name for r in results] == [
        "commoncrawl",
        "wikipedia",
        "tokenizer",
        "tokenized",
        "tokens",
    ]
    table1 = printed[-1]
    assert "Table 1 of this build" in table1 and "CommonCrawl" in table1
    assert "missing: c4, github, books, arxiv, stackexchange" in table1
    ds = ShardDataset(out / "tokens", verify="sha256")
    assert set(ds.sources) == {"commoncrawl", "wikipedia"} and len(ds) > 0
    assert ds.manifest["tokenizer"]["path"] == "../tokenizer/tokenizer.model"
    assert (out / "tokens" / ds.manifest["tokenizer"]["path"]).resolve().is_file()
    before = (out / "tokens" / "manifest.json").read_bytes()
    again = run_build(load_config(config), str(out), RunOptions(quiet=True), echo=printed.append)
    assert all(r.skipped for r in again)
    assert (out / "tokens" / "manifest.json").read_bytes() == before


def test_tokenize_bad_input_becomes_dead_letters(tmp_path: Path) -> None:
    from conftest import write_jsonl

    tokenized, tok = _tokenized(tmp_path / "docs", tmp_path)
    good = write_jsonl(
        tmp_path / "in" / "a.jsonl",
        [
            {"id": "x1", "source": "books", "text": "Alice was beginning to get very tired."},
            {"id": "x2", "source": "../escape", "text": "a source name that is a path"},
            {"id": "x3", "source": "books", "text": ""},
        ],
    )
    bad = tmp_path / "in" / "b.jsonl"
    bad.write_text('{"id": "y1", "source": "books", "text": "fine"}\n{broken\n')
    out = tmp_path / "tok-out"
    out.mkdir()
    units = doc_units([str(good), str(bad)])
    stats = [tokenize_unit(u, i, tok, out) for i, u in enumerate(units)]
    assert stats[0]["sources"]["books"]["documents"] == 1 and stats[0]["empty"] == 1
    assert stats[0]["errors"] == 1 and stats[1]["errors"] == 1
    letters = [
        json.loads(line)
        for f in sorted((out / "errors").glob("*.jsonl"))
        for line in f.read_text().splitlines()
    ]
    assert [(e["reason"], e["record_id"]) for e in letters] == [
        ("bad_source_name", "x2"),
        ("unreadable_unit", None),
    ]
    summary = summarize(out, {"path": str(tok.path), **tok.describe()})
    assert summary["errors"] == 2 and list(summary["sources"]) == ["books"]
    assert not (out / ".." / "escape").exists()
