"""Wikitext cleaning alone vs the whole Wikipedia stage on Beam's local runner.

    python -m benchmarks wikipedia      # or, with options:
    python -m benchmarks.bench_wikipedia [--dump PATH ...] [--repeat N] [--workers 1]

Input: the real dumps in ../shared/corpus/wikipedia (enwiki + ukwiki) unless --dump is given,
with their pages repeated `--repeat` times under new page ids (so Beam's fixed start-up cost is
not the whole measurement), written as a multistream dump with its index. Rates are per core:
pages (kept articles) and MB (UTF-8 wikitext of those articles) per CPU-second of this process,
with wall-clock rates alongside (the machine may be shared). The DirectRunner runs in this
process with --workers 1, so its CPU time is comparable to the cleaner's.

Target: the end-to-end rate is at least 70% of the cleaner's own rate. Reported both as measured
(one run, after a warm-up run has paid the runner's imports) and with the fixed cost of a run
(measured on a one-article dump) taken off, which is what a large dump sees.
"""

from __future__ import annotations

import argparse
import bz2
import json
import os
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

from llama_data.pipeline.document import Document
from llama_data.pipeline.steps import run_steps
from llama_data.pipeline.wikipedia import (
    CleanWikitext,
    WikipediaPageFilter,
    WikipediaReader,
)

CORPUS = Path(
    os.environ.get("LLAMA_DATA_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus")
)
PAGE = re.compile(rb"  <page>.*?</page>\n", re.S)


def build_dump(sources: list[Path], repeat: int, folder: Path) -> list[Path]:
    """One multistream dump (+ index) per source dump, pages repeated under fresh ids."""
    out = []
    for src in sources:
        xml = bz2.decompress(src.read_bytes())
        first = xml.index(b"  <page>")
        head = xml[:first]
        pages = PAGE.findall(xml)
        name = src.name.split("-")[0] + "-20990101-pages-articles-multistream.xml.bz2"
        streams = [bz2.compress(head)]
        offset = len(streams[0])
        index = []
        n = 0
        for r in range(repeat):
            for i in range(0, len(pages), 100):
                group = []
                for p in pages[i : i + 100]:
                    n += 1
                    new_id = 10_000_000 * (r + 1) + n
                    p = re.sub(rb"<id>\d+</id>", b"<id>%d</id>" % new_id, p, count=1)
                    index.append(b"%d:%d:x\n" % (offset, new_id))
                    group.append(p)
                data = bz2.compress(b"".join(group))
                streams.append(data)
                offset += len(data)
        streams.append(bz2.compress(b"</mediawiki>\n"))
        path = folder / name
        path.write_bytes(b"".join(streams))
        idx = name.replace("-multistream", "-multistream-index").replace(".xml", ".txt")
        (folder / idx).write_bytes(bz2.compress(b"".join(index)))
        out.append(path)
    return out


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (multi-process workers)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn):
    w0, c0 = time.perf_counter(), _cpu()
    result = fn()
    return result, time.perf_counter() - w0, _cpu() - c0


def main(argv: list[str] | None = None) -> dict:
    """`python -m benchmarks wikipedia` calls this with no arguments (the defaults)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dump", action="append", type=Path, help="MediaWiki dump(s) (.xml.bz2)")
    ap.add_argument("--repeat", type=int, default=4)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--split-mb", type=int, default=64, help="the stage's split size (its default)")
    args = ap.parse_args([] if argv is None else argv)
    sources = args.dump or [
        CORPUS / "wikipedia" / "enwiki-sample.xml.bz2",
        CORPUS / "wikipedia" / "ukwiki-20230501.xml.bz2",
    ]
    missing = [str(s) for s in sources if not s.exists()]
    if missing:
        raise SystemExit(f"missing input dumps: {missing} (pass --dump)")

    with tempfile.TemporaryDirectory(prefix="bench-wiki-") as tmp:
        dumps = build_dump(sources, args.repeat, Path(tmp))
        reader = WikipediaReader(split_bytes=1 << 20)

        # 1. Read + filter (not timed as the cleaner): the pages the cleaner will see.
        def read_all() -> list[Document]:
            docs = [d for p in dumps for d in reader.read_path(str(p)) if isinstance(d, Document)]
            return [d for d in run_steps([WikipediaPageFilter()], docs) if isinstance(d, Document)]

        articles, read_wall, read_cpu = timed(read_all)
        mb = sum(len(d.text.encode()) for d in articles) / 1e6

        # 2. The cleaning function alone.
        def clean_all() -> int:
            return sum(isinstance(o, Document) for o in run_steps([CleanWikitext()], articles))

        kept, clean_wall, clean_cpu = timed(clean_all)

        # 3. End to end on the local runner: read, split, filter, clean, write Parquet + stats.
        from llama_data.beam_jobs.harness import RunOptions, run_stage
        from llama_data.beam_jobs.wikipedia import make_wikipedia_stage

        run = RunOptions(workers=args.workers, quiet=True)
        # A one-article dump, run twice: the first run pays the runner's imports (once per worker
        # process in a real job), the second measures the fixed cost of any run (pipeline
        # construction, start-up, output commit), which a large input amortizes.
        tiny_dir = Path(tmp) / "tiny"
        tiny_dir.mkdir()
        tiny = tiny_dir / "enwiki-20990101-pages-articles.xml.bz2"
        xml = bz2.decompress(sources[0].read_bytes())
        first = xml.index(b"  <page>")
        pages = [p for p in PAGE.findall(xml) if b"<redirect" not in p and b"<ns>0</ns>" in p]
        tiny.write_bytes(bz2.compress(xml[:first] + pages[0] + b"</mediawiki>\n"))
        tiny_spec = make_wikipedia_stage([str(tiny)])
        timed(lambda: run_stage(tiny_spec, str(Path(tmp) / "tiny-out"), run, force=True))
        _, fixed_wall, fixed_cpu = timed(
            lambda: run_stage(tiny_spec, str(Path(tmp) / "tiny-out"), run, force=True)
        )

        spec = make_wikipedia_stage([str(p) for p in dumps], split_bytes=args.split_mb << 20)
        result, e2e_wall, e2e_cpu = timed(lambda: run_stage(spec, str(Path(tmp) / "out"), run))
        assert result.stats["kept"] == kept, (result.stats["kept"], kept)

    def rates(wall: float, cpu: float) -> dict:
        return {
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "pages_per_cpu_s": round(kept / cpu, 1),
            "mb_per_cpu_s": round(mb / cpu, 3),
            "pages_per_wall_s": round(kept / wall, 1),
            "mb_per_wall_s": round(mb / wall, 3),
        }

    clean_r, e2e_r = rates(clean_wall, clean_cpu), rates(e2e_wall, e2e_cpu)
    steady_r = rates(e2e_wall - fixed_wall, e2e_cpu - fixed_cpu)
    out = {
        "bench": "wikipedia",
        "inputs": [s.name for s in sources],
        "repeat": args.repeat,
        "articles": kept,
        "wikitext_mb": round(mb, 2),
        "read_filter": {"wall_s": round(read_wall, 2), "cpu_s": round(read_cpu, 2)},
        "cleaner": clean_r,
        "end_to_end": {
            **e2e_r,
            "runner": "DirectRunner",
            "workers": args.workers,
            "split_mb": args.split_mb,
        },
        "fixed_cost_per_run": {"wall_s": round(fixed_wall, 2), "cpu_s": round(fixed_cpu, 2)},
        "end_to_end_minus_fixed": steady_r,
        "e2e_over_cleaner_cpu": round(e2e_r["pages_per_cpu_s"] / clean_r["pages_per_cpu_s"], 3),
        "e2e_over_cleaner_wall": round(e2e_r["pages_per_wall_s"] / clean_r["pages_per_wall_s"], 3),
        "steady_over_cleaner_cpu": round(
            steady_r["pages_per_cpu_s"] / clean_r["pages_per_cpu_s"], 3
        ),
        "target": 0.7,
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
