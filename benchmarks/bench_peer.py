"""Our CommonCrawl stages beside a peer: datatrove 0.10.1, side by side in one run (issue #19).

    python -m benchmarks peer          (BENCH_PEER_COPIES=40, BENCH_PEER_ROUNDS=3)

Input: the corpus sample `../shared/corpus/commoncrawl/pages.warc.wet.gz` (real web pages in ~20
languages; the demo WET when the corpus is absent), written `COPIES` times into one folder of
WET files. Each copy prefixes every line with a word of its own and gets its own URLs and record
ids, so copies neither dedup each other away in ccnet's line dedup nor in C4's URL dedup, while
the boilerplate within a copy still dedups as in the sample.

Three tools, each as a whole process (start-up, imports, reading, writing), in interleaved rounds:

* datatrove 0.10.1: `WarcReader -> LanguageFilter(en) -> JsonlWriter`, installed with what its
  reader and filter need into its own virtual environment under the benchmark's cache (never a
  project dependency); its language filter loads the same lid.176 file our stages load;
* our `ccnet` stage (line dedup, lid.176, SentencePiece + KenLM perplexity and buckets, document
  dedup, length filter), `--workers 1`, with a model trained on the sample's English pages;
* our `c4 --from-cc` (C4's rules, URL and line dedup, langdetect, bad words), `--workers 1`.

The cost is CPU seconds (user + system) of the process and every child it waited for, from
`getrusage(RUSAGE_CHILDREN)`: the machine is shared, and CPU time is what a cluster pays for.
Each tool's figure is its best round (the least disturbed); the ratios are taken from those.
Targets: ccnet >= 2.5x and c4 --from-cc >= 2x datatrove's documents per CPU-second.

Writes `benchmarks/results.json` (key "peer") and `benchmarks/results.md`, and puts that table
between the README's `bench_peer` markers (`tests/test_readme.py` holds the two equal).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import venv
from pathlib import Path
from typing import Any

from benchmarks.wet_copies import write_copies

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
SAMPLE = REPO.parent / "shared" / "corpus" / "commoncrawl" / "pages.warc.wet.gz"
DEMO = REPO / "llama_data" / "demo" / "commoncrawl" / "demo.warc.wet.gz"
CACHE = Path(os.environ.get("LLAMA_DATA_BENCH_CACHE", HERE / ".cache"))
COPIES = int(os.environ.get("BENCH_PEER_COPIES", "40"))
ROUNDS = int(os.environ.get("BENCH_PEER_ROUNDS", "3"))
RESULTS_JSON = HERE / "results.json"
RESULTS_MD = HERE / "results.md"
README = REPO / "README.md"
# the README quotes results.md between these two lines; the benchmark rewrites what is between
README_BEGIN = "<!-- bench_peer: begin (written by `make bench`, benchmarks/bench_peer.py) -->"
README_END = "<!-- bench_peer: end -->"

# datatrove and what its WarcReader (warcio, cchardet, python-magic) and LanguageFilter
# (fastText as the distribution it checks for, fasteners), its filters package (`regex`) and
# JsonlWriter (orjson) import, at the versions measured
DATATROVE = (
    "datatrove==0.10.1",
    "warcio==1.8.1",
    "fasttext-numpy2-wheel==0.9.2",
    "faust-cchardet==3.2.0",
    "python-magic==0.4.27",
    "fasteners==0.20",
    "regex==2026.11.19",
    "orjson==3.13.0",
    "numpy==2.4.6",
)
TARGETS = {"ccnet": 2.5, "c4_from_cc": 2.0}


def datatrove_env() -> Path:
    """The python of datatrove's environment, created on first use (reused after)."""
    digest = hashlib.sha256(json.dumps([DATATROVE, sys.version_info[:2]]).encode()).hexdigest()
    path = CACHE / f"datatrove-{digest[:12]}"
    python = path / "bin" / "python"
    stamp = path / ".installed"
    if stamp.exists():
        return python
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *DATATROVE],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"installing datatrove failed:\n{proc.stderr[-3000:]}")
    stamp.write_text(json.dumps(DATATROVE))
    return python


def _peer_copy(d: Any, k: int, word: str, i: int) -> tuple[str, str]:
    """Each copy of a page a URL and record id of its own."""
    url = f"{d.meta['url']}{'&' if '?' in d.meta['url'] else '?'}copy={word}"
    return url, f"<urn:uuid:{k:08d}-0000-0000-0000-{i:012d}>"


def make_input(folder: Path, source: Path, copies: int) -> tuple[int, int, list[dict]]:
    """(documents, bytes) written, and the sample's documents (to train the LM from)."""
    from llama_data.pipeline.document import Document
    from llama_data.pipeline.warc import WetReader

    base = [d for d in WetReader().read_path(str(source)) if isinstance(d, Document)]
    write_copies(folder, base, copies, rename=_peer_copy, level=6)
    size = sum(p.stat().st_size for p in folder.iterdir())
    return len(base) * copies, size, [{"id": d.id, "text": d.text} for d in base]


def train_model(docs: list[dict], source: Path) -> Path:
    """The perplexity model, from the sample's English pages (cached: speed does not depend on
    its quality, and lmplz takes a while)."""
    from llama_data.pipeline.ccnet.langid import LanguageId
    from llama_data.pipeline.ccnet.train_lm import TrainLmSettings, train_lm
    from llama_data.pipeline.document import Document

    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    lm = CACHE / f"lm-{digest}"
    if (lm / "en.arpa.bin").is_file() and (lm / "en.sp.model").is_file():
        return lm
    lid = LanguageId(languages=("en",))
    english = [
        d
        for d in lid.process_batch([Document(x["id"], "cc", x["text"], {}) for x in docs])
        if isinstance(d, Document)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "en.jsonl"
        data.write_text("".join(json.dumps({"id": d.id, "text": d.text}) + "\n" for d in english))
        train_lm(str(data), lm, TrainLmSettings("en", vocab_size=8000))
    return lm


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set so far (VmHWM), in MB; 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """(CPU seconds of the process and the children it waited for, wall seconds, peak RSS MB).

    The peak is the process's VmHWM, read every 20 ms while it runs (a high-water mark, so only
    a peak in its last 20 ms could be missed): `ru_maxrss` cannot be used, since a child started
    by vfork+exec carries the launching process's own peak into it."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = [0.0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], peak_rss_mb(proc.pid))
            done.wait(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        _, stderr = proc.communicate(timeout=3600)
    finally:
        done.set()
        watcher.join()
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed:\n{stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, peak[0]


def count_jsonl_gz(folder: Path) -> int:
    n = 0
    for p in folder.rglob("*.jsonl.gz"):
        with gzip.open(p, "rt", encoding="utf-8") as f:
            n += sum(1 for _ in f)
    return n


def markdown(results: dict) -> str:
    tools = results["tools"]
    lines = [
        f"Documents per CPU-second on {results['docs']:,} WET pages ({results['copies']} copies "
        f"of the {results['input']} sample, {results['wet_gz_mb']} MB gzipped), each tool a "
        f"whole process with one worker, best of {results['rounds']} interleaved rounds "
        "(`make bench`, `benchmarks/bench_peer.py`).",
        "",
        "| tool | steps | CPU s | docs / CPU-s | vs datatrove | target | | peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for key in ("datatrove", "ccnet", "c4_from_cc"):
        t = tools[key]
        target = TARGETS.get(key)
        if target is None:
            ratio_cell, target_cell, verdict = "1.00x", "", ""
        else:
            ratio = results["ratios"][key]
            ratio_cell = f"{ratio:.2f}x"
            target_cell = f">= {target:.1f}x"
            verdict = "pass" if ratio >= target else "**miss**"
        lines.append(
            f"| {t['name']} | {t['steps']} | {t['cpu_s']:.2f} | {t['docs_per_cpu_s']:.0f} "
            f"| {ratio_cell} | {target_cell} | {verdict} | {t.get('peak_rss_mb', 0):.0f} |"
        )
    per_round = [
        f"{tools[k]['name']} "
        + ", ".join(
            f"{d / c:.2f}x"
            for d, c in zip(
                tools["datatrove"]["cpu_s_rounds"], tools[k]["cpu_s_rounds"], strict=True
            )
        )
        for k in TARGETS
    ]
    lines += ["", f"Ratios within each round (the machine is shared): {'; '.join(per_round)}."]
    return "\n".join(lines) + "\n"


def quote_in_readme(table: str) -> None:
    """Put the table between the README's markers (left alone when they are missing)."""
    text = README.read_text(encoding="utf-8")
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        return
    head = text[: start + len(README_BEGIN)]
    README.write_text(f"{head}\n{table}{text[end:]}", encoding="utf-8")


def main() -> None:
    source = SAMPLE if SAMPLE.is_file() else DEMO
    CACHE.mkdir(parents=True, exist_ok=True)
    from llama_data.pipeline.ccnet.langid import lid_model_path

    python = datatrove_env()
    lid = lid_model_path()
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as tmp_name:
        tmp = Path(tmp_name)
        docs, gz_bytes, base = make_input(tmp / "in", source, COPIES)
        lm = train_model(base, source)
        # datatrove's environment: its own python, no PYTHONPATH of ours, its asset cache here
        dt_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        dt_env["HF_HOME"] = str(CACHE / "hf")
        dt_env["DATATROVE_COLORIZE_LOGS"] = "0"
        ours = [sys.executable, "-m", "llama_data"]
        glob = str(tmp / "in" / "*.warc.wet.gz")
        runs = {
            "datatrove": lambda r: (
                [
                    str(python),
                    str(HERE / "datatrove_job.py"),
                    str(tmp / "in"),
                    str(tmp / f"dt{r}"),
                    str(tmp / f"dtlogs{r}"),
                    str(lid),
                ],
                dt_env,
            ),
            "ccnet": lambda r: (
                [*ours, "ccnet", "-i", glob, "--lm", str(lm), "-o", str(tmp / f"cc{r}"), "-q"],
                None,
            ),
            "c4_from_cc": lambda r: (
                [*ours, "c4", "--from-cc", "-i", glob, "-o", str(tmp / f"c4{r}"), "-q"],
                None,
            ),
        }
        cpu: dict[str, list[float]] = {k: [] for k in runs}
        wall: dict[str, list[float]] = {k: [] for k in runs}
        rss: dict[str, list[float]] = {k: [] for k in runs}
        kept: dict[str, int] = {}
        for r in range(ROUNDS):
            for key, make in runs.items():
                cmd, env = make(r)
                c, w, m = cpu_run(cmd, env)
                rss[key].append(m)
                cpu[key].append(c)
                wall[key].append(w)
            kept["datatrove"] = count_jsonl_gz(tmp / f"dt{r}")
            for key, out in (("ccnet", f"cc{r}/ccnet"), ("c4_from_cc", f"c4{r}/c4")):
                stats = json.loads((tmp / out / "stats.json").read_text())
                assert stats["accounting"]["ok"] and stats["in"] == docs, stats
                kept[key] = stats["kept"]
            for name in (f"dt{r}", f"dtlogs{r}", f"cc{r}", f"c4{r}"):
                shutil.rmtree(tmp / name, ignore_errors=True)

    steps = {
        "datatrove": "WarcReader -> LanguageFilter(en) -> JsonlWriter",
        "ccnet": "read -> line dedup -> lid.176 -> KenLM perplexity, buckets -> doc dedup -> "
        "length -> Parquet",
        "c4_from_cc": "read -> page length -> URL dedup -> C4 line/page rules -> line dedup -> "
        "langdetect -> bad words -> Parquet",
    }
    names = {"datatrove": "datatrove 0.10.1", "ccnet": "`ccnet`", "c4_from_cc": "`c4 --from-cc`"}
    tools = {}
    for key in runs:
        best = min(cpu[key])
        tools[key] = {
            "name": names[key],
            "steps": steps[key],
            "cpu_s": round(best, 3),
            "cpu_s_rounds": [round(c, 3) for c in cpu[key]],
            "cpu_s_median": round(statistics.median(cpu[key]), 3),
            "wall_s_rounds": [round(w, 3) for w in wall[key]],
            "peak_rss_mb": round(max(rss[key]), 1),
            "peak_rss_mb_rounds": [round(m, 1) for m in rss[key]],
            "docs_per_cpu_s": round(docs / best, 1),
            "kept": kept[key],
        }
    base_rate = tools["datatrove"]["docs_per_cpu_s"]
    ratios = {k: round(tools[k]["docs_per_cpu_s"] / base_rate, 3) for k in TARGETS}
    results = {
        "benchmark": "peer",
        "input": source.name,
        "copies": COPIES,
        "docs": docs,
        "wet_gz_mb": round(gz_bytes / 1e6, 2),
        "rounds": ROUNDS,
        "tools": tools,
        "ratios": ratios,
        "targets": TARGETS,
        "pass": {k: ratios[k] >= TARGETS[k] for k in TARGETS},
    }
    all_results = {}
    if RESULTS_JSON.is_file():
        try:
            all_results = json.loads(RESULTS_JSON.read_text())
        except ValueError:
            all_results = {}
    all_results["peer"] = results
    RESULTS_JSON.write_text(json.dumps(all_results, indent=2) + "\n")
    table = markdown(results)
    RESULTS_MD.write_text(table)
    quote_in_readme(table)
    print(table, flush=True)
    print(json.dumps({k: v for k, v in results.items() if k != "tools"}), flush=True)


if __name__ == "__main__":
    main()
