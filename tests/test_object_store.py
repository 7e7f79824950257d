"""Models and inputs from an object store: moto's S3 server on 127.0.0.1 through Beam's S3
filesystem, each run compared with the same run on local paths.

The CCNet LM folder, its cutoffs, lid.176, the Wikipedia-reference classifier and the tokenizer
are uploaded to a bucket; the stages read them as `s3://` URLs, copy each once per machine into
the model cache (`LLAMA_DATA_MODEL_CACHE`) in their `DoFn.setup`, and write what the local run
writes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from test_ccnet_pipeline import WIKI, lm_dir, read_stage, write_fixture  # noqa: F401

from conftest import run_cli, write_jsonl
from llama_data.pipeline import model_files
from llama_data.pipeline.ccnet.langid import lid_model_path

BUCKET = "models"


@pytest.fixture
def s3(s3_server, monkeypatch, tmp_path):
    """(boto3 client, Beam options for it) against a fresh moto S3 server; the model cache in
    tmp_path."""
    boto3 = pytest.importorskip("boto3")
    monkeypatch.setenv(model_files.CACHE_ENV, str(tmp_path / "model-cache"))
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client, ["--", f"--s3_endpoint_url={s3_server}", "--s3_region_name=us-east-1"]


def upload(client, local: Path, key: str) -> str:
    client.put_object(Bucket=BUCKET, Key=key, Body=local.read_bytes())
    return f"s3://{BUCKET}/{key}"


def cached_files(tmp_path: Path) -> list[Path]:
    root = tmp_path / "model-cache"
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != ".lock")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rows(stage: Path, local_prefix: str, url_prefix: str) -> tuple[list[str], ...]:
    """The stage's records as JSON text, with the inputs' location written the same way."""
    return tuple(
        sorted(
            json.dumps(r, sort_keys=True, default=str).replace(url_prefix, local_prefix)
            for r in part
        )
        for part in read_stage(stage)
    )


@pytest.mark.slow
def test_ccnet_with_inputs_lm_cutoffs_and_lid_model_on_s3(lm_dir, tmp_path, s3):  # noqa: F811
    client, beam_args = s3
    wet = write_fixture(tmp_path / "wet")
    cutoffs = tmp_path / "cutoffs.json"
    cutoffs.write_text(json.dumps({"en": [100.0, 1000.0]}))
    lid = lid_model_path()
    for f in wet:
        upload(client, f, f"wet/{f.name}")
    for name in ("en.sp.model", "en.arpa.bin"):
        upload(client, lm_dir / name, f"lm/{name}")
    upload(client, cutoffs, "cutoffs.json")
    upload(client, lid, "lid/lid.176.ftz")
    common = ["--min-length", "200", "--keep", "head,middle,tail", "--workers", "2", "-q"]

    local = run_cli(
        "ccnet", "-i", str(tmp_path / "wet" / "*.gz"), "-o", str(tmp_path / "local"),
        "--lm", str(lm_dir), "--cutoffs", str(cutoffs), "--lid-model", str(lid), *common,
    )  # fmt: skip
    assert local.returncode == 0, local.stderr[-3000:]
    remote = run_cli(
        "ccnet", "-i", f"s3://{BUCKET}/wet/*.gz", "-o", str(tmp_path / "remote"),
        "--lm", f"s3://{BUCKET}/lm", "--cutoffs", f"s3://{BUCKET}/cutoffs.json",
        "--lid-model", f"s3://{BUCKET}/lid/lid.176.ftz", *common, *beam_args,
    )  # fmt: skip
    assert remote.returncode == 0, remote.stderr[-3000:]

    a = _rows(tmp_path / "local" / "ccnet", str(tmp_path / "wet"), f"s3://{BUCKET}/wet")
    b = _rows(tmp_path / "remote" / "ccnet", str(tmp_path / "wet"), f"s3://{BUCKET}/wet")
    assert a == b and len(a[0]) == 3  # kept, rejected, errors: the same records
    stats = [
        json.loads((tmp_path / d / "ccnet" / "stats.json").read_text()) for d in ("local", "remote")
    ]
    assert stats[0]["counters"] == stats[1]["counters"]

    # each model file fetched once into the cache (two worker processes shared it), whole
    cached = cached_files(tmp_path)
    names = ["cutoffs.json", "en.arpa.bin", "en.sp.model", "lid.176.ftz"]
    assert sorted(p.name for p in cached) == names  # the driver read the cutoffs
    originals = dict(
        zip(names, [cutoffs, lm_dir / "en.arpa.bin", lm_dir / "en.sp.model", lid], strict=True)
    )
    assert all(_sha(p) == _sha(originals[p.name]) for p in cached)
    assert not list((tmp_path / "model-cache").rglob("*.part"))


@pytest.mark.slow
def test_a_missing_model_url_is_one_line(lm_dir, tmp_path, s3):  # noqa: F811
    client, beam_args = s3
    wet = write_fixture(tmp_path / "wet")
    r = run_cli(
        "ccnet", "-i", str(wet[0]), "-o", str(tmp_path / "out"), "--lm", f"s3://{BUCKET}/nolm",
        *beam_args,
    )  # fmt: skip
    assert r.returncode == 2 and "no perplexity model for en in 's3://models/nolm'" in r.stderr
    r = run_cli(
        "ccnet", "-i", str(wet[0]), "-o", str(tmp_path / "out"), "--lm", str(lm_dir),
        "--lid-model", f"s3://{BUCKET}/nothing.ftz", *beam_args,
    )  # fmt: skip
    assert r.returncode == 2 and "--lid-model: no file at" in r.stderr


def test_wikiref_classifier_from_s3_scores_as_the_local_file(tmp_path, s3):
    from llama_data.beam_jobs import fs
    from llama_data.pipeline.document import Document
    from llama_data.pipeline.wikiref import WikirefScoreStep

    client, beam_args = s3
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    FileSystems.set_options(PipelineOptions(beam_args[1:]))
    # any fastText model file does: lid.176's (a two-label model trained on a few lines here
    # ends in NaN, fastText's own failure on tiny data)
    upload(client, lid_model_path(), "wikiref/model.ftz")
    docs = [Document(id=str(i), text=t, source="commoncrawl") for i, t in enumerate(WIKI)]
    local = WikirefScoreStep(str(lid_model_path()), 0.5)
    remote = WikirefScoreStep(f"s3://{BUCKET}/wikiref/model.ftz", 0.5, fs.FILE_STORE)
    local.setup()
    remote.setup()
    assert [repr(o) for o in local.process_batch(docs)] == [
        repr(o) for o in remote.process_batch(docs)
    ]
    assert str(local._model.predict(WIKI, k=3)) == str(remote._model.predict(WIKI, k=3))
    assert [p.name for p in cached_files(tmp_path)] == ["model.ftz"]


@pytest.mark.slow
def test_tokenize_with_the_tokenizer_on_s3(tmp_path, s3):
    from llama_data.pipeline.tokenizer import train_tokenizer_from_files

    client, beam_args = s3
    docs = write_jsonl(
        tmp_path / "docs" / "wiki.jsonl",
        [{"id": str(i), "text": t, "source": "wikipedia"} for i, t in enumerate(WIKI * 20)],
    )
    train_tokenizer_from_files(str(docs), tmp_path / "tok", vocab_size=400)
    upload(client, tmp_path / "tok" / "tokenizer.model", "tok/tokenizer.model")
    outs = {}
    for name, tok in (("local", str(tmp_path / "tok")), ("remote", f"s3://{BUCKET}/tok")):
        r = run_cli(
            "tokenize", "--tokenizer", tok, "--input", str(docs), "--output",
            str(tmp_path / name), *beam_args,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr[-3000:]
        outs[name] = {
            p.relative_to(tmp_path / name).as_posix(): p.read_bytes()
            for p in sorted((tmp_path / name).rglob("*.arrow"))
        }
    assert outs["local"] and outs["local"] == outs["remote"]
    assert [p.name for p in cached_files(tmp_path)] == ["tokenizer.model"]


def test_processes_of_one_machine_fetch_a_model_once(tmp_path, monkeypatch):
    """Four worker processes asking for the same model URL at once: one download (the others
    wait on the lock and take the renamed file), the same whole file for all."""
    import http.server
    import os
    import subprocess
    import sys
    import threading

    from conftest import _RangeHandler

    root = tmp_path / "www"
    root.mkdir()
    data = os.urandom(3 << 20)
    (root / "model.bin").write_bytes(data)
    gets: list[str] = []

    class Counting(_RangeHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            gets.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a, **kw: Counting(*a, directory=str(root), **kw)
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/model.bin"
        env = dict(os.environ, **{model_files.CACHE_ENV: str(tmp_path / "model-cache")})
        code = "import sys; from llama_data.beam_jobs import fs; print(fs.model_file(sys.argv[1]))"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, url], env=env, stdout=subprocess.PIPE, text=True
            )
            for _ in range(4)
        ]
        paths = {p.communicate(timeout=120)[0].strip() for p in procs}
        assert all(p.returncode == 0 for p in procs)
    finally:
        server.shutdown()
        server.server_close()
    assert len(paths) == 1 and Path(paths.pop()).read_bytes() == data
    assert len(gets) == 1, gets
    assert [p.name for p in cached_files(tmp_path)] == ["model.bin"]
