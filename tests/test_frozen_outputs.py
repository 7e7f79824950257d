"""The outputs of `ccnet` and `c4 --from-cc`, frozen before their speed work (issue #19).

The speed work reorders and batches the steps of both stages; the documents they keep, their
buckets and scores, and the reason of every rejection must not move. Each case runs the real
stage (DirectRunner) on the bundled demo WET or on the corpus sample (written twice, the second
copy with a marker word on every line and another URL, so that lines are shared between pages and
copies do not dedup each other away) and compares a SHA-256 of its sorted output rows with the
digest recorded from the code before the speed work. The perplexity model is trained here, from
the demo pages (train-lm is deterministic: `test_train_lm_is_the_same_wherever_it_runs`).

On a difference the test prints the rows' digest and counts, so the change can be looked at; a
digest is only updated when an output is meant to change.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from benchmarks.wet_copies import marked, wet_record
from conftest import CORPUS, REPO, write_jsonl
from llama_data.beam_jobs.c4 import C4Rules, make_c4_stage
from llama_data.beam_jobs.ccnet import ccnet_stage_from_options
from llama_data.beam_jobs.harness import run_stage
from llama_data.beam_jobs.runners import RunOptions
from llama_data.pipeline.ccnet.train_lm import TrainLmError, TrainLmSettings, find_tool, train_lm
from llama_data.pipeline.document import Document
from llama_data.pipeline.warc import WetReader

DEMO_WET = REPO / "llama_data" / "demo" / "commoncrawl" / "demo.warc.wet.gz"
CORPUS_WET = CORPUS / "commoncrawl" / "pages.warc.wet.gz"

# (input, stage) -> sha256 of the sorted rows, recorded from the code before the speed work
FROZEN = {
    ("demo", "ccnet"): "3a19d93f46dffa10c440eee01d080cb1ca61198227eac12833bd44fe3365a154",
    ("demo", "c4"): "d221cdbe26b45d92430078236b781e75b14f9dccbb0b3e0fddfac5178e4dcfb7",
    ("corpus", "ccnet"): "b210ba784c38982be1d22fa7f2957f09bf05d125f0cd3e81dcb2d9a70b598ed9",
    ("corpus", "c4"): "043b0d7a402f213e1ae2e961cba6b78f2d73d1a084c378d457e05bc744fbc24e",
}


def write_input(source: Path, folder: Path) -> list[str]:
    """The source as it is, and a second copy with a marker word and other URLs and ids."""
    folder.mkdir(parents=True, exist_ok=True)
    docs = [d for d in WetReader().read_path(str(source)) if isinstance(d, Document)]
    first = folder / "a.warc.wet.gz"
    first.write_bytes(source.read_bytes())
    second = folder / "b.warc.wet.gz"
    with second.open("wb") as f:
        for i, d in enumerate(docs):
            rid = f"<urn:uuid:00000000-0000-0000-0000-{i:012d}>"
            body = marked(d.text, "qcopy")
            f.write(wet_record(f"{d.meta['url']}?copy=b", rid, d.meta["date"], body, level=6))
    return [str(first), str(second)]


def rows_digest(stage_dir: Path) -> tuple[str, dict[str, int]]:
    """SHA-256 of every kept row (all columns; the input file by name) and every rejection
    (id, reason and, in ccnet, language, perplexity and bucket), sorted."""

    def read(folder: Path) -> list[dict]:
        return [r for p in sorted(folder.glob("*.parquet")) for r in pq.read_table(p).to_pylist()]

    def norm(v):  # noqa: ANN001, ANN202
        if isinstance(v, float) and math.isinf(v):
            return "inf"
        return v

    def row(r: dict) -> dict:
        meta = json.loads(r["meta"])
        meta["file"] = Path(meta.get("file", "")).name  # the folder is tmp_path's
        return {**{k: norm(v) for k, v in r.items()}, "meta": meta}

    kept = sorted(json.dumps(row(r), sort_keys=True, ensure_ascii=False) for r in read(stage_dir))
    rejected = sorted(
        json.dumps(
            [r[k] for k in ("id", "reason", "language", "perplexity", "bucket") if k in r],
            ensure_ascii=False,
        )
        for r in read(stage_dir / "rejected")
    )
    h = hashlib.sha256()
    for line in ["kept", *kept, "rejected", *rejected]:
        h.update(line.encode("utf-8", "surrogatepass") + b"\n")
    return h.hexdigest(), {"kept": len(kept), "rejected": len(rejected)}


@pytest.fixture(scope="module")
def demo_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        find_tool("lmplz"), find_tool("build_binary")
    except TrainLmError as exc:
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("frozen-lm")
    docs = [
        {"id": d.id, "text": d.text}
        for d in WetReader().read_path(str(DEMO_WET))
        if isinstance(d, Document)
    ]
    write_jsonl(root / "lm.jsonl", docs)
    train_lm(str(root / "lm.jsonl"), root / "lm", TrainLmSettings("en", vocab_size=400))
    return root / "lm"


def run_case(which: str, stage: str, lm: Path, tmp: Path) -> tuple[str, dict[str, int]]:
    source = DEMO_WET if which == "demo" else CORPUS_WET
    paths = write_input(source, tmp / "in")
    if stage == "ccnet":
        spec = ccnet_stage_from_options(
            paths, str(lm), languages=["en"], min_length=200 if which == "demo" else 300
        )
    else:
        spec = make_c4_stage(paths, from_cc=True, rules=C4Rules())
    result = run_stage(spec, str(tmp / "out"), RunOptions(quiet=True))
    assert result.stats["accounting"]["ok"]
    return rows_digest(tmp / "out" / spec.name)


@pytest.mark.slow
@pytest.mark.parametrize(
    "which,stage", [("demo", "ccnet"), ("demo", "c4"), ("corpus", "ccnet"), ("corpus", "c4")]
)
def test_outputs_unchanged(which: str, stage: str, demo_lm: Path, tmp_path: Path) -> None:
    if which == "corpus" and not CORPUS_WET.is_file():
        pytest.skip("../shared/corpus is absent")
    digest, counts = run_case(which, stage, demo_lm, tmp_path)
    assert digest == FROZEN[(which, stage)], f"{which} {stage}: {digest} {counts}"
