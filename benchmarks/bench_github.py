"""GitHub stage throughput: the filter functions alone vs the whole stage on Beam's local runner.

Input: the sample corpus (`../shared/corpus/github`) when present, else the bundled demo, copied
`--copies` times under new repository names with one line changed per copy, so that files stay
unique across copies (the dedup shuffles only the files whose content occurs twice, so this
input sends few through it) and the run lasts long enough to measure; `--duplicates 0.3` leaves
30% of the files unchanged in every copy, for an input where the dedup has work, as on real
exports.

"alone" = read rows + licence lookup + all steps + content hash, in one process, no engine.
"end to end" = `make_github_stage` under `run_stage` (DirectRunner, one worker): reading, the
licence table side input, the steps, the dedup (key shuffle, Bloom filter, contested files) and
the Parquet/JSON writers.
Prints one JSON line: files/s and MB/s per core for both, and their ratio (target >= 0.70),
by wall clock and by CPU time (the machine may be shared), in total and in steady state (the
start-up cost, measured on a one-copy run, left out); each the best of `--repeats` interleaved
rounds (the run with the least CPU time). Every run is a fresh interpreter: run one after another
in one process, the filters alone came out anywhere from 0.73 to 1.2 s on the same input, as the
heap the previous run left behind decided.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llama_data.beam_jobs.github import GithubOptions, make_github_stage  # noqa: E402
from llama_data.beam_jobs.harness import run_stage  # noqa: E402
from llama_data.beam_jobs.runners import RunOptions  # noqa: E402
from llama_data.pipeline.document import Document  # noqa: E402
from llama_data.pipeline.github.licenses import resolve_license  # noqa: E402
from llama_data.pipeline.github.quality import content_key, github_steps  # noqa: E402
from llama_data.pipeline.github.reader import GithubRowReader, read_license_rows  # noqa: E402
from llama_data.pipeline.io import local_open  # noqa: E402
from llama_data.pipeline.steps import run_steps  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "github"
DEMO = ROOT / "llama_data" / "demo" / "github"


def make_input(
    src: Path, copies: int, workdir: Path, duplicates: float = 0.0
) -> tuple[Path, Path, int]:
    """`copies` renamed copies of the corpus; in copies after the first, a `duplicates` share
    of the files (the same ones in every copy) keep their content unchanged, so the dedup
    has that share of contested files, as real exports do (vendored code, forks)."""
    rows = [json.loads(line) for line in (src / "files.jsonl").read_text().splitlines() if line]
    licenses = [json.loads(line) for line in (src / "licenses.jsonl").read_text().splitlines()]
    files_out, lic_out = workdir / "files.jsonl", workdir / "licenses.jsonl"
    with files_out.open("w") as f:
        for i in range(copies):
            for j, row in enumerate(rows):
                row = dict(row, repo_name=f"{row['repo_name']}-{i}")
                unchanged = (j * 0.6180339887) % 1.0 < duplicates  # spread over the files
                if isinstance(row.get("content"), str) and not unchanged:
                    row["content"] = row["content"] + f"\n# variant {i}\n"
                f.write(json.dumps(row) + "\n")
    with lic_out.open("w") as f:
        for i in range(copies):
            for lic in licenses:
                f.write(json.dumps(dict(lic, repo_name=f"{lic['repo_name']}-{i}")) + "\n")
    return files_out, lic_out, files_out.stat().st_size


def filters_alone(files: Path, licenses: Path) -> tuple[int, float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    table: dict[str, list[str]] = {}
    for item in read_license_rows(str(licenses), local_open):
        if isinstance(item, tuple):
            table.setdefault(item[0], []).append(item[1])
    docs = []
    for d in GithubRowReader().read_path(str(files)):
        if isinstance(d, Document):
            d.meta["license"] = resolve_license(table.get(d.meta["repo_name"], []), None)
            docs.append(d)
    seen: dict[bytes, str] = {}
    for out in run_steps(github_steps(), docs):
        if isinstance(out, Document):
            seen.setdefault(content_key(out), out.id)
    return len(docs), time.perf_counter() - start, time.process_time() - cpu


def end_to_end(files: Path, licenses: Path, workdir: Path) -> tuple[int, float, float]:
    """The stage on DirectRunner in-memory mode: one process, so process_time is its CPU."""
    spec = make_github_stage(GithubOptions(inputs=(str(files),), licenses=(str(licenses),)))
    start, cpu = time.perf_counter(), time.process_time()
    result = run_stage(spec, str(workdir / "out"), RunOptions(quiet=True), force=True)
    return result.stats["in"], time.perf_counter() - start, time.process_time() - cpu


def _fresh(kind: str, files: Path, licenses: Path, workdir: Path) -> tuple[int, float, float]:
    """One measurement in a new interpreter (`--measure`), so no run inherits another's heap."""
    cmd = [sys.executable, __file__, "--measure", kind, str(files), str(licenses), str(workdir)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} run failed:\n{out.stderr[-2000:]}")
    n, wall, cpu = json.loads(out.stdout.strip().splitlines()[-1])
    return int(n), float(wall), float(cpu)


def main(argv: list[str] | None = None) -> None:
    argv = list(argv or [])
    if argv[:1] == ["--measure"]:
        kind, files, licenses, workdir = argv[1], *map(Path, argv[2:5])
        if kind == "alone":
            print(json.dumps(filters_alone(files, licenses)))
        else:
            print(json.dumps(end_to_end(files, licenses, workdir)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument(
        "--repeats", type=int, default=5, help="interleaved rounds; the best of each is kept"
    )
    parser.add_argument(
        "--source", type=Path, default=None, help="folder with files.jsonl + licenses.jsonl"
    )
    parser.add_argument(
        "--duplicates",
        type=float,
        default=0.0,
        help="share of files whose copies keep their content (exact duplicates for the dedup)",
    )
    args = parser.parse_args(argv)
    src = args.source or (CORPUS if CORPUS.exists() else DEMO)
    with tempfile.TemporaryDirectory(prefix="bench-github-") as tmp:
        work = Path(tmp)
        (work / "small").mkdir()
        files, licenses, nbytes = make_input(src, args.copies, work, args.duplicates)
        small_files, small_lic, small_bytes = make_input(src, 1, work / "small", args.duplicates)
        best: dict[str, tuple[int, float, float]] = {}

        def keep_best(name: str, run: tuple[int, float, float]) -> None:
            if name not in best or run[2] < best[name][2]:
                best[name] = run

        # interleaved rounds, so that load from other processes hits every contender alike
        for _ in range(max(1, args.repeats)):
            keep_best("alone", _fresh("alone", files, licenses, work))
            keep_best("small", _fresh("e2e", small_files, small_lic, work / "small"))
            keep_best("e2e", _fresh("e2e", files, licenses, work))
        n_alone, t_alone, c_alone = best["alone"]
        n_small, t_small, c_small = best["small"]
        n_e2e, t_e2e, c_e2e = best["e2e"]
    mb = nbytes / 1e6
    # Beam's start-up (graph, workers, output commit) measured on one copy, then left out
    marginal_t = max(t_e2e - t_small, 1e-9) * n_e2e / max(n_e2e - n_small, 1)
    marginal_c = max(c_e2e - c_small, 1e-9) * n_e2e / max(n_e2e - n_small, 1)
    result = {
        "bench": "github",
        "input": str(src),
        "copies": args.copies,
        "duplicates": args.duplicates,
        "repeats": args.repeats,
        "files": n_alone,
        "mb": round(mb, 2),
        "cores": 1,
        "load_avg_1m": round(os.getloadavg()[0], 1),
        "alone_files_per_s": round(n_alone / t_alone, 1),
        "alone_mb_per_s": round(mb / t_alone, 2),
        "alone_mb_per_cpu_s": round(mb / c_alone, 2),
        "e2e_files_per_s": round(n_e2e / t_e2e, 1),
        "e2e_mb_per_s": round(mb / t_e2e, 2),
        "e2e_mb_per_cpu_s": round(mb / c_e2e, 2),
        "e2e_startup_s": round(t_small, 2),
        "e2e_steady_mb_per_cpu_s": round(mb / marginal_c, 2),
        "e2e_over_alone_wall": round(t_alone / t_e2e, 3),
        "e2e_over_alone_cpu": round(c_alone / c_e2e, 3),
        "e2e_over_alone_steady_cpu": round(c_alone / marginal_c, 3),
        "e2e_over_alone_steady_wall": round(t_alone / marginal_t, 3),
        "target": 0.70,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
