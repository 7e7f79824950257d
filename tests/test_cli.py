"""The real command line, run as a user runs it (subprocess), on configs made in tmp_path."""

import json
from pathlib import Path

import pyarrow.parquet as pq

from conftest import run_cli, write_jsonl


def test_version_and_help():
    assert "llama-data" in run_cli("--version").stdout
    out = run_cli("--help").stdout
    for command in ("build", "dedup-exact", "download"):
        assert command in out
    assert run_cli("--help", prog="llama_data.cli").returncode == 0


def test_llama_train_entry_point_exists():
    from llama_data.cli import train_main

    assert train_main.name == "train-main" or callable(train_main)


def test_wrong_arguments_are_one_line_exit_2(tmp_path: Path):
    r = run_cli("dedup-exact", "--output", str(tmp_path))
    assert (
        r.returncode == 2 and "Missing option '--input'" in r.stderr and "Traceback" not in r.stderr
    )
    r = run_cli("dedup-exact", "-i", str(tmp_path / "none*.jsonl"), "-o", str(tmp_path))
    assert r.returncode == 2 and "matches no file" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_cli("build", "--runner", "Nope")
    assert r.returncode == 2
    bad = tmp_path / "bad.toml"
    bad.write_text('[sources.x]\nformat = "documents"\ninputs = ["a"]\nlangs = 1\n')
    r = run_cli("build", "--config", str(bad), "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "sources.x.langs: unknown key" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_build_end_to_end_multiprocess_then_skip(tmp_path: Path):
    data = tmp_path / "data"
    write_jsonl(
        data / "part1.jsonl", [{"id": f"a{i:02d}", "text": f"doc {i % 5}"} for i in range(20)]
    )
    write_jsonl(
        data / "part2.jsonl", [{"id": f"b{i:02d}", "text": f"doc  {i % 7}"} for i in range(10)]
    )
    (data / "part2.jsonl").open("a").write("{broken\n")
    config = tmp_path / "build.toml"
    config.write_text(
        '[build]\nworkers = 2\n\n[sources.mydocs]\nformat = "documents"\ninputs = ["data/*.jsonl"]\n'
    )
    out = tmp_path / "out"
    r = run_cli("build", "--config", str(config), "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert "[mydocs] 31 in, 7 kept" in r.stdout and "errors (bad_json: 1)" in r.stdout
    assert f"Outputs are in {out}" in r.stdout
    stage = out / "mydocs"
    kept = sorted(
        row["id"] for f in stage.glob("part-*.parquet") for row in pq.read_table(f).to_pylist()
    )
    assert kept == ["a00", "a01", "a02", "a03", "a04", "b05", "b06"]
    stats = json.loads((stage / "stats.json").read_text())
    assert stats["workers"] == 2 and stats["accounting"]["ok"]
    files = {p: p.read_bytes() for p in stage.rglob("*") if p.is_file()}

    dry = run_cli("build", "--config", str(config), "--output", str(out), "--dry-run")
    assert (
        dry.returncode == 0
        and "complete (will be skipped)" in dry.stdout
        and "2 files" in dry.stdout
    )

    again = run_cli("build", "--config", str(config), "--output", str(out))
    assert again.returncode == 0 and "complete already, skipped" in again.stdout
    assert {p: p.read_bytes() for p in stage.rglob("*") if p.is_file()} == files


def test_dry_run_of_a_new_build_lists_pending_stages(tmp_path: Path):
    write_jsonl(tmp_path / "d.jsonl", [{"text": "x"}])
    config = tmp_path / "b.toml"
    config.write_text('[sources.a]\nformat = "documents"\ninputs = ["d.jsonl"]\n')
    r = run_cli("build", "-c", str(config), "-o", str(tmp_path / "o"), "--dry-run")
    assert r.returncode == 0 and "1. a" in r.stdout and "pending" in r.stdout
    assert not (tmp_path / "o").exists()


def test_dedup_exact_command_and_passthrough_args(tmp_path: Path):
    write_jsonl(tmp_path / "d.jsonl", [{"id": "2", "text": "same"}, {"id": "1", "text": "same"}])
    r = run_cli(
        "dedup-exact", "-i", str(tmp_path / "d.jsonl"), "-o", str(tmp_path / "o"), "--",
        "--direct_num_workers=1",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = pq.read_table(
        next((tmp_path / "o" / "dedup-exact" / "rejected").glob("*.parquet"))
    ).to_pylist()
    assert [(x["id"], x["reason"]) for x in rows] == [("2", "duplicate_of:1")]


def test_quiet_prints_nothing(tmp_path: Path):
    write_jsonl(tmp_path / "d.jsonl", [{"text": "x"}])
    r = run_cli("dedup-exact", "-q", "-i", str(tmp_path / "d.jsonl"), "-o", str(tmp_path / "o"))
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""
