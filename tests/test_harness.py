"""The stage harness on Beam's real local runner: outputs, counters, dead letters, completeness."""

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import write_jsonl
from llama_data.beam_jobs.documents import make_dedup_exact_stage
from llama_data.beam_jobs.harness import (
    ApplySteps,
    ReadDocuments,
    StageOutputs,
    StageSpec,
    TaskSpec,
    run_stage,
    run_task,
)
from llama_data.beam_jobs.runners import RunOptions
from llama_data.pipeline.document import Document, Rejected
from llama_data.pipeline.errors import UserError
from llama_data.pipeline.io import DocumentReader
from llama_data.pipeline.steps import Step

LOCAL = RunOptions(quiet=True)


def _kept(stage_dir: Path) -> list[dict]:
    files = sorted(stage_dir.glob("part-*.parquet"))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


def _rejected(stage_dir: Path) -> list[dict]:
    return [
        r
        for f in sorted((stage_dir / "rejected").glob("*.parquet"))
        for r in pq.read_table(f).to_pylist()
    ]


def _errors(stage_dir: Path) -> list[dict]:
    return [
        json.loads(line)
        for f in sorted((stage_dir / "errors").glob("*.jsonl"))
        for line in f.read_text().splitlines()
    ]


def test_dedup_is_global_and_keeps_the_smallest_id(tmp_path: Path):
    # duplicates spread over two files, the smallest id in the *second* file
    write_jsonl(tmp_path / "in" / "a.jsonl", [
        {"id": "m", "text": "same  text"}, {"id": "u1", "text": "unique one"}, {"id": "z", "text": "same text"},
    ])  # fmt: skip
    write_jsonl(tmp_path / "in" / "b.jsonl.gz", [])
    (tmp_path / "in" / "b.jsonl.gz").write_bytes(
        gzip.compress(b'{"id": "a", "text": "same\\ntext"}\n{"id": "u2", "text": "unique two"}\n')
    )
    spec = make_dedup_exact_stage([str(tmp_path / "in" / "*")])
    result = run_stage(spec, str(tmp_path / "out"), LOCAL)
    stage = tmp_path / "out" / "dedup-exact"
    assert sorted(r["id"] for r in _kept(stage)) == ["a", "u1", "u2"]
    assert sorted((r["id"], r["reason"]) for r in _rejected(stage)) == [
        ("m", "duplicate_of:a"),
        ("z", "duplicate_of:a"),
    ]
    stats = json.loads((stage / "stats.json").read_text())
    assert stats["in"] == 5 and stats["kept"] == 3 and stats["rejected"] == {"duplicate_of": 2}
    assert stats["accounting"]["ok"]
    assert result.stats["kept"] == 3 and not result.skipped
    done = json.loads((stage / "_SUCCESS").read_text())
    assert len(done["fingerprint"]) == 64
    assert not list(stage.glob("_tmp-*"))


def test_dedup_verdicts_do_not_depend_on_the_bloom_filter(tmp_path: Path, monkeypatch):
    """Only contested documents are shuffled; at a 99% false-positive rate nearly every unique
    document goes through the shuffle too, and the kept and rejected sets stay the same."""
    from llama_data.beam_jobs import dedup

    # d000-d079 hold 40 texts twice each, d080-d199 are unique
    rows = [{"id": f"d{i:03d}", "text": f"text {i % 40 if i < 80 else i}"} for i in range(200)]
    write_jsonl(tmp_path / "in" / "a.jsonl", rows)
    results = {}
    for rate in (0.01, 0.99):
        monkeypatch.setattr(dedup, "BLOOM_ERROR_RATE", rate)
        spec = make_dedup_exact_stage([str(tmp_path / "in" / "*")])
        result = run_stage(spec, str(tmp_path / f"out-{rate}"), LOCAL)
        stage = tmp_path / f"out-{rate}" / "dedup-exact"
        rejected = {r["id"]: (r["reason"], r["text"]) for r in _rejected(stage)}
        results[rate] = (sorted(r["id"] for r in _kept(stage)), rejected)
        contested = result.stats["counters"].get("dedup.contested", 0)
        assert contested > 100 if rate == 0.99 else contested < 90  # 80 are true duplicates
    kept, rejected = results[0.01]
    assert results[0.99] == results[0.01]
    assert kept == [f"d{i:03d}" for i in (*range(40), *range(80, 200))]
    assert rejected["d077"] == ("duplicate_of:d037", "")  # the kept copy holds the text


class Shout(Step):
    name = "shout"

    def process(self, doc: Document):
        if "boom" in doc.text:
            raise ValueError("cannot shout this")
        if len(doc.text) < 4:
            self.count("short")
            return Rejected(doc, "too_short")
        return doc.with_text(doc.text.upper())


def _steps_stage(inputs: list[str]) -> StageSpec:
    def build(p, ctx):
        read = p | ReadDocuments(inputs, DocumentReader("test"), ctx.name)
        out = read.docs | ApplySteps([Shout()], ctx.name)
        return StageOutputs(
            kept=out.kept, rejected=[out.rejected], errors=[read.errors, out.errors]
        )

    return StageSpec("shout", build, inputs=inputs, config={"v": 1})


def test_steps_route_kept_rejected_and_errors(tmp_path: Path):
    src = tmp_path / "docs.jsonl"
    src.write_text(
        '{"id": "1", "text": "hello"}\n{"id": "2", "text": "hi"}\n{"id": "3", "text": "boom now"}\nnot json\n'
    )
    run_stage(_steps_stage([str(src)]), str(tmp_path / "out"), RunOptions(workers=2, quiet=True))
    stage = tmp_path / "out" / "shout"
    assert [r["text"] for r in _kept(stage)] == ["HELLO"]
    assert [(r["id"], r["reason"]) for r in _rejected(stage)] == [("2", "too_short")]
    errors = sorted(_errors(stage), key=lambda e: e["reason"])
    assert [e["reason"] for e in errors] == ["bad_json", "step_error:shout"]
    assert errors[1]["record_id"] == "3" and "cannot shout" in errors[1]["error"]
    assert all(e["stage"] == "shout" for e in errors)
    stats = json.loads((stage / "stats.json").read_text())
    assert stats["counters"]["shout.short"] == 1
    assert stats["errors"] == {"bad_json": 1, "step_error:shout": 1}
    assert stats["accounting"] == {"ok": True, "in": 4, "out": 4}


def test_complete_stage_is_skipped_and_unchanged_until_inputs_change(tmp_path: Path):
    src = write_jsonl(
        tmp_path / "d.jsonl", [{"id": "1", "text": "a b"}, {"id": "2", "text": "a  b"}]
    )
    out = str(tmp_path / "out")
    spec = make_dedup_exact_stage([str(src)])
    run_stage(spec, out, LOCAL)
    stage = tmp_path / "out" / "dedup-exact"
    before = {p: p.read_bytes() for p in stage.rglob("*") if p.is_file()}
    again = run_stage(make_dedup_exact_stage([str(src)]), out, LOCAL)
    assert again.skipped and again.stats["kept"] == 1
    assert {p: p.read_bytes() for p in stage.rglob("*") if p.is_file()} == before
    forced = run_stage(make_dedup_exact_stage([str(src)]), out, LOCAL, force=True)
    assert not forced.skipped
    write_jsonl(src, [{"id": "1", "text": "a b"}, {"id": "2", "text": "c d"}])
    changed = run_stage(make_dedup_exact_stage([str(src)]), out, LOCAL)
    assert not changed.skipped and changed.stats["kept"] == 2


def test_a_partial_stage_is_redone(tmp_path: Path):
    src = write_jsonl(tmp_path / "d.jsonl", [{"id": "1", "text": "x"}])
    stage = tmp_path / "out" / "dedup-exact"
    stage.mkdir(parents=True)
    (stage / "part-00000-of-00009.parquet").write_bytes(b"left over from a killed run")
    result = run_stage(make_dedup_exact_stage([str(src)]), str(tmp_path / "out"), LOCAL)
    assert not result.skipped
    assert not (stage / "part-00000-of-00009.parquet").exists()
    assert [r["id"] for r in _kept(stage)] == ["1"]


def test_input_matching_nothing_fails_before_work(tmp_path: Path):
    with pytest.raises(UserError, match="matches no file"):
        run_stage(
            make_dedup_exact_stage([str(tmp_path / "none-*.jsonl")]), str(tmp_path / "out"), LOCAL
        )
    assert not (tmp_path / "out").exists()


def test_http_inputs_jsonl_gz_and_parquet(tmp_path: Path, http_server):
    base, root = http_server
    (root / "a.jsonl.gz").write_bytes(gzip.compress(b'{"id": "h1", "text": "over http"}\n'))
    pq.write_table(
        pa.table({"id": ["h2", "h3"], "text": ["parquet over http", "over http"]}),
        root / "b.parquet",
    )
    spec = make_dedup_exact_stage([f"{base}/a.jsonl.gz", f"{base}/b.parquet"])
    run_stage(spec, str(tmp_path / "out"), LOCAL)
    stage = tmp_path / "out" / "dedup-exact"
    assert sorted(r["id"] for r in _kept(stage)) == ["h1", "h2"]
    assert [(r["id"], r["reason"]) for r in _rejected(stage)] == [("h3", "duplicate_of:h1")]


def test_http_input_that_does_not_exist(tmp_path: Path, http_server):
    base, _ = http_server
    with pytest.raises(UserError, match="matches no file"):
        run_stage(make_dedup_exact_stage([f"{base}/missing.jsonl"]), str(tmp_path / "out"), LOCAL)


def test_task_writes_files_stats_and_success(tmp_path: Path):
    def train(workdir: str, ctx) -> dict:
        Path(workdir, "model.bin").write_bytes(b"weights")
        Path(workdir, "sub").mkdir()
        Path(workdir, "sub", "card.json").write_text("{}")
        return {"trained": True}

    out = str(tmp_path / "out")
    first = run_task(TaskSpec("lm", train, config={"order": 5}), out, LOCAL)
    assert (tmp_path / "out" / "lm" / "model.bin").read_bytes() == b"weights"
    assert (tmp_path / "out" / "lm" / "sub" / "card.json").exists()
    assert first.stats["trained"] and (tmp_path / "out" / "lm" / "_SUCCESS").exists()
    assert run_task(TaskSpec("lm", train, config={"order": 5}), out, LOCAL).skipped
    assert not run_task(TaskSpec("lm", train, config={"order": 4}), out, LOCAL).skipped


def test_dedup_writes_kept_files_before_the_verdict(tmp_path: Path):
    """The exact dedup writes documents to provisional files as they come (the runner holds no
    document until the verdict) and settles each file: moved as it is, or rewritten without its
    contested rows. Two worker processes, so the files come from different processes."""
    rows = [{"id": f"d{i:04d}", "text": f"text {i % 300 if i < 600 else i}"} for i in range(2000)]
    write_jsonl(tmp_path / "in" / "a.jsonl", rows[:1000])
    write_jsonl(tmp_path / "in" / "b.jsonl", rows[1000:])
    spec = make_dedup_exact_stage([str(tmp_path / "in" / "*")])
    result = run_stage(spec, str(tmp_path / "out"), RunOptions(workers=2, quiet=True))
    stage = tmp_path / "out" / "dedup-exact"
    kept = _kept(stage)
    assert sorted(r["id"] for r in kept) == [f"d{i:04d}" for i in (*range(300), *range(600, 2000))]
    assert len(kept) == result.stats["kept"] == 1700
    assert result.stats["rejected"] == {"duplicate_of": 300}
    assert any(f.name.startswith("part-dedup-") for f in stage.glob("*.parquet"))
    assert not list(stage.glob("_tmp-*")) and not list(stage.rglob("*scratch*"))


def test_settling_a_provisional_file_twice_gives_the_same_result(tmp_path: Path):
    """A retried bundle settles a file again: a moved file is found moved, a rewritten one is
    rewritten from the provisional file, which settling never changes."""
    import numpy as np

    from llama_data.beam_jobs.dedup import _SettleFileFn
    from llama_data.beam_jobs.documents import text_key
    from llama_data.beam_jobs.harness import KeptFiles
    from llama_data.pipeline.bloom import BloomFilter
    from llama_data.pipeline.dedup import key64, order_key
    from llama_data.pipeline.schema import BASE_SCHEMA

    files = KeptFiles(BASE_SCHEMA, str(tmp_path / "kept"), str(tmp_path / "scratch"))
    docs = [Document(f"d{i}", "test", f"text {i}") for i in range(4)]
    keys = np.array([key64(text_key(d)) for d in docs], dtype=np.uint64)
    (tmp_path / "scratch").mkdir()
    for name in ("plain", "mixed"):
        pq.write_table(BASE_SCHEMA.to_table(docs), tmp_path / "scratch" / f"{name}.parquet")
    bloom = BloomFilter.for_capacity(1)
    bloom.add(keys[:1])  # d0 is contested
    fn = _SettleFileFn("t", text_key, lambda d: order_key(d.id, d.source), files)
    fn.setup()
    plain = (str(tmp_path / "scratch" / "plain.parquet"), keys.tobytes())
    mixed = (str(tmp_path / "scratch" / "mixed.parquet"), keys.tobytes())
    for _ in range(2):
        assert list(fn.process(plain, None)) == []
        contested = list(fn.process(mixed, bloom))
        assert [c.value[1][1] for c in contested] == ["d0"]
    assert pq.read_table(tmp_path / "kept" / "part-plain.parquet").num_rows == 4
    assert pq.read_table(tmp_path / "kept" / "part-mixed.parquet")["id"].to_pylist() == [
        "d1",
        "d2",
        "d3",
    ]
