"""The figures behind docs/scaling.md's cost model, per stage: CPU seconds per GB of input,
shuffle bytes per GB of input, peak memory of the worker, on Beam's local runner with one
in-process worker (so the process's CPU time and peak RSS are the worker's, plus the driver's
small share); and the hot-line case of C4's line dedup before and after the lifted combiner.

Shuffle bytes are Beam's own estimate: for every GroupByKey of the job (and the lifted
combiners' grouping), the elements that went in times their mean sampled encoded size (the
`element_count` and `sampled_byte_size` monitoring infos every runner reports per PCollection).
A runner's shuffle adds its own framing; Dataflow bills the bytes it reads and writes.

Each stage runs in a fresh interpreter (peak RSS is per process). Inputs are made from
`../shared/corpus` (real pages and dumps, repeated; the stage benchmarks' own recipes) and
kept in a temporary folder. Prints one JSON line per stage and one for the hot line;
`--json FILE` also writes them all to FILE.

    python -m benchmarks scale                       # every stage + the hot line
    python benchmarks/bench_scale.py --only ccnet c4 # some of them
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.wet_copies import write_copies

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CORPUS = Path(os.environ.get("LLAMA_DATA_CORPUS", ROOT.parent / "shared" / "corpus"))
STAGES = ("ccnet", "c4-from-cc", "wikipedia", "github", "dedup-exact")


# --------------------------------------------------------------------------------------------
# shuffle bytes from a finished job's monitoring infos


def shuffle_bytes(pipeline_proto: Any, infos: list[Any]) -> dict[str, int]:
    """Estimated bytes into each grouping of the job: GroupByKeys (by their input PCollection)
    and lifted combiners (the runner's `Precombine.out` PCollections, the first of the three it
    adds per combiner)."""
    from apache_beam.metrics import monitoring_infos as mon

    count: dict[str, int] = {}
    mean: dict[str, float] = {}
    for info in infos:
        pcoll = info.labels.get("PCOLLECTION")
        if pcoll is None:
            continue
        value = mon.extract_metric_result_map_value(info)
        if info.urn == mon.ELEMENT_COUNT_URN:
            count[pcoll] = int(value)
        elif info.urn == mon.SAMPLED_BYTE_SIZE_URN and value.count:
            mean[pcoll] = value.sum / value.count
    transforms = pipeline_proto.components.transforms
    combine_gbks: set[str] = set()
    for t in transforms.values():
        if t.spec.urn == "beam:transform:combine_per_key:v1":
            combine_gbks.update(t.subtransforms)
    out: dict[str, int] = {}
    for tid, t in transforms.items():
        if t.spec.urn != "beam:transform:group_by_key:v1" or tid in combine_gbks:
            continue
        pcoll = next(iter(t.inputs.values()))
        out[t.unique_name] = int(count.get(pcoll, 0) * mean.get(pcoll, 0.0))
    # the runner's own PCollections of lifted combiners: pcollection, pcollection_1, ... in
    # threes (Precombine.out, Group.out, Merge.out)
    runner_made = sorted(
        (p for p in count if p == "pcollection" or p.startswith("pcollection_")),
        key=lambda p: int(p.rpartition("_")[2]) if "_" in p else 0,
    )
    for i, pcoll in enumerate(runner_made):
        if i % 3 == 0:
            out[f"combiner:{pcoll}"] = int(count[pcoll] * mean.get(pcoll, 0.0))
    return out


# --------------------------------------------------------------------------------------------
# inputs


def _wet_input(folder: Path, copies: int) -> list[str]:
    """bench_ccnet's recipe (the real WET sample, each copy with a copy-specific word on every
    line, so copies do not dedup each other away) with a URL and record id of its own per copy
    (C4 keeps one page per URL)."""
    from llama_data.pipeline.document import Document
    from llama_data.pipeline.warc import WetReader

    def own_copy(d: Document, k: int, word: str, i: int) -> tuple[str, str]:
        return (
            f"{str(d.meta['url']).rstrip('/')}/{word}",
            f"{str(d.meta['record_id']).rstrip('>')}-{k}>",
        )

    source = CORPUS / "commoncrawl" / "pages.warc.wet.gz"
    base = [d for d in WetReader().read_path(str(source)) if isinstance(d, Document)]
    return [str(p) for p in write_copies(folder, base, copies, rename=own_copy, level=1)]


def _ccnet_input(tmp: Path, copies: int) -> tuple[list[str], Path]:
    """`_wet_input` and a perplexity model trained on the sample's English pages."""
    from llama_data.pipeline.ccnet.langid import LanguageId
    from llama_data.pipeline.ccnet.train_lm import TrainLmSettings, train_lm
    from llama_data.pipeline.document import Document
    from llama_data.pipeline.warc import WetReader

    source = CORPUS / "commoncrawl" / "pages.warc.wet.gz"
    paths = _wet_input(tmp / "wet", copies)
    docs = [d for d in WetReader().read_path(str(source)) if isinstance(d, Document)]
    english = [
        d
        for d in LanguageId(languages=()).process_batch(docs)
        if isinstance(d, Document) and d.meta["language"] == "en"
    ]
    with (tmp / "lm.jsonl").open("w") as f:
        for d in english:
            f.write(json.dumps({"id": d.id, "text": d.text}) + "\n")
    train_lm(str(tmp / "lm.jsonl"), tmp / "lm", TrainLmSettings("en", vocab_size=8000))
    return paths, tmp / "lm"


def make_stage(name: str, tmp: Path, scale: int):  # noqa: ANN201 - a StageSpec
    if name == "ccnet":
        from llama_data.beam_jobs.ccnet import ccnet_stage_from_options

        paths, lm = _ccnet_input(tmp, 3 * scale)
        return ccnet_stage_from_options(paths, str(lm), languages=["en"])
    if name == "c4-from-cc":
        from llama_data.beam_jobs.c4 import make_c4_stage

        return make_c4_stage(_wet_input(tmp / "wet", 3 * scale), from_cc=True)
    if name == "wikipedia":
        from benchmarks.bench_wikipedia import build_dump
        from llama_data.beam_jobs.wikipedia import make_wikipedia_stage

        dumps = build_dump([CORPUS / "wikipedia" / "enwiki-sample.xml.bz2"], 4 * scale, tmp)
        return make_wikipedia_stage([str(p) for p in dumps])
    if name == "github":
        from benchmarks.bench_github import make_input
        from llama_data.beam_jobs.github import GithubOptions, make_github_stage

        files, licenses, _ = make_input(CORPUS / "github", 2 * scale, tmp, duplicates=0.3)
        return make_github_stage(GithubOptions(inputs=(str(files),), licenses=(str(licenses),)))
    if name == "dedup-exact":
        from benchmarks.bench_harness import _make_input
        from llama_data.beam_jobs.documents import make_dedup_exact_stage

        paths, _ = _make_input(tmp, 10_000 * scale)
        return make_dedup_exact_stage(paths)
    raise SystemExit(f"unknown stage {name!r}; one of {', '.join(STAGES)}")


# --------------------------------------------------------------------------------------------
# one stage, in this (fresh) process


def run_one(name: str, scale: int) -> dict[str, Any]:
    from llama_data.beam_jobs import fs
    from llama_data.beam_jobs.harness import (
        StageContext,
        _counters,
        _write_stage_outputs,
        run_pipeline,
        stats_from_counters,
    )
    from llama_data.beam_jobs.runners import RunOptions

    with tempfile.TemporaryDirectory(prefix=f"bench-scale-{name}-") as tmp_name:
        tmp = Path(tmp_name)
        spec = make_stage(name, tmp, scale)
        files = fs.match_inputs(spec.inputs)
        in_bytes = sum(f.size for f in files)
        run = RunOptions(workers=1, quiet=True)
        out = tmp / "out"
        stage_dir = str(out / spec.name)
        work = fs.join(stage_dir, "_tmp-bench")
        ctx = StageContext(spec.name, str(out), stage_dir, run, None, tmp_dir=work)
        held: dict[str, Any] = {}

        def build(p) -> None:  # noqa: ANN001
            held["p"] = p
            _write_stage_outputs(p, spec, spec.build(p, ctx), work)

        cpu0 = _cpu()
        wall0 = time.perf_counter()
        result = run_pipeline(run, spec.name, build)
        wall = time.perf_counter() - wall0
        cpu = _cpu() - cpu0
        stats = stats_from_counters(_counters(result, spec.name))
        groups = shuffle_bytes(held["p"].to_runner_api(), result.monitoring_infos())
    total = sum(groups.values())
    gb = in_bytes / 1e9
    return {
        "benchmark": "scale",
        "stage": name,
        "input_bytes": in_bytes,
        "docs_in": stats["in"],
        "kept": stats["kept"],
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "cpu_s_per_gb": round(cpu / gb, 1),
        "cpu_ms_per_doc": round(1000 * cpu / max(stats["in"], 1), 3),
        "shuffle_bytes": total,
        "shuffle_bytes_per_gb": int(total / gb),
        "shuffle_bytes_per_doc": round(total / max(stats["in"], 1), 1),
        "shuffle_by_group": groups,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


# --------------------------------------------------------------------------------------------
# the hot line: one boilerplate line on N pages, through C4's line-dedup losers


def hot_line(n: int, variant: str) -> dict[str, Any]:
    """`before`: one GroupByKey per line key (every occurrence of the hot line in one group);
    `after`: hot keys salted per bundle (`beam_jobs.c4._Losers`); `after-sizes`: the same
    with each group's size tapped, for the largest group (its CPU time includes the tap).
    Besides the hot line, one line seen once per page (most lines are)."""
    import apache_beam as beam
    from apache_beam.metrics import Metrics
    from apache_beam.options.pipeline_options import PipelineOptions

    from llama_data.beam_jobs import c4 as c4_job
    from llama_data.pipeline import c4

    chunks = 64

    def occurrences(chunk: int):
        rng = random.Random(chunk)
        for i in range(chunk, n, chunks):
            yield b"hot", (f"{rng.getrandbits(64):016x}", f"doc{i}")
            yield b"cold%d" % i, (f"{rng.getrandbits(64):016x}", f"doc{i}")

    def old_losers(kv):
        return ((doc_id, kv[0]) for _, doc_id in c4.iter_losers(kv[1]))

    class _Given(beam.DoFn):
        def process(self, kv):  # noqa: ANN001, ANN202
            yield kv

    opts = PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=in_memory"])
    p = beam.Pipeline(options=opts)
    occ = p | beam.Create(list(range(chunks))) | beam.FlatMap(occurrences)
    if variant == "before":
        losers = occ | "GroupLines" >> beam.GroupByKey() | "Losers" >> beam.FlatMap(old_losers)
    elif variant == "after":
        losers = occ | c4_job._Losers("Line", _Given(), c4_job._line_doc, c4_job._line_cut)
    else:  # "after-sizes": the same steps, with the size of each (line, salt) group tapped
        grouped = (
            occ
            | "LineKeys" >> beam.ParDo(c4_job._SaltHotKeys(_Given(), c4_job._line_doc))
            | "GroupLines" >> beam.GroupByKey()
        )
        _ = (
            grouped
            | "Size" >> beam.Map(lambda kv: sum(1 for _ in kv[1]))
            | "Largest" >> beam.CombineGlobally(max)
            | "Report"
            >> beam.Map(lambda m: Metrics.distribution("bench", "largest_group").update(m))
        )
        local = grouped | "Losers" >> beam.FlatMap(
            c4_job._local_losers, c4_job._line_doc, c4_job._line_cut
        ).with_outputs("winners", main="losers")
        salted = (
            local.winners
            | "SaltedLines" >> beam.GroupByKey()
            | "SaltedLosers"
            >> beam.FlatMap(c4_job._global_losers, c4_job._line_doc, c4_job._line_cut)
        )
        losers = (local.losers, salted) | beam.Flatten()
    _ = losers | beam.combiners.Count.Globally() | beam.Map(lambda c: c)
    cpu0, wall0 = _cpu(), time.perf_counter()
    result = p.run()
    result.wait_until_finish()
    wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
    groups = shuffle_bytes(p.to_runner_api(), result.monitoring_infos())
    largest = {"before": n, "after": None}.get(variant, 0)
    if variant == "after-sizes":
        largest = result_largest(result)
    return {
        "benchmark": "scale-hot-line",
        "variant": variant,
        "copies": n,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "shuffle_bytes": sum(groups.values()),
        "shuffle_by_group": groups,
        "largest_group": largest,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def result_largest(result: Any) -> int:
    """The largest (line, salt) group, from the job's `largest_group` distribution."""
    from apache_beam.metrics.metric import MetricsFilter

    dists = result.metrics().query(MetricsFilter().with_name("largest_group"))["distributions"]
    return max((d.committed.max for d in dists if d.committed), default=0)


# --------------------------------------------------------------------------------------------


def _child(args: list[str]) -> dict[str, Any]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": proc.stderr.strip()[-2000:], "args": args}
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", default=None, help="stages (and/or 'hot-line')")
    ap.add_argument("--scale", type=int, default=int(os.environ.get("BENCH_SCALE", "6")))
    ap.add_argument("--hot-copies", type=int, default=int(os.environ.get("BENCH_HOT", "1000000")))
    ap.add_argument("--json", default=None, help="also write every result to this file")
    ap.add_argument("--child-stage", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-hot", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv if argv is not None else [])
    if a.child_stage:
        print(json.dumps(run_one(a.child_stage, a.scale)))
        return []
    if a.child_hot:
        print(json.dumps(hot_line(a.hot_copies, a.child_hot)))
        return []
    if not (CORPUS / "commoncrawl").is_dir():
        print(json.dumps({"benchmark": "scale", "skipped": f"{CORPUS} is absent"}))
        return []
    wanted = a.only or [*STAGES, "hot-line"]
    results = []
    for name in wanted:
        if name == "hot-line":
            for variant in ("before", "after", "after-sizes"):
                results.append(_child(["--child-hot", variant, "--hot-copies", str(a.hot_copies)]))
                print(json.dumps(results[-1]), flush=True)
            continue
        results.append(_child(["--child-stage", name, "--scale", str(a.scale)]))
        print(json.dumps(results[-1]), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
