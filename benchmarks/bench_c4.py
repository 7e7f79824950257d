"""C4 derivation throughput on the CommonCrawl WET sample, per core.

    python -m benchmarks.bench_c4 [--wet PATH] [--repeat N]

Measures, in one process (= one core): each rule step alone (line/page rules, langdetect and
lid.176 English, bad words), the line keys of the dedup, the engine-free chain, and the whole
`c4 --from-cc` Beam stage on the DirectRunner with one worker. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from llama_data.pipeline import c4
from llama_data.pipeline.document import Document
from llama_data.pipeline.steps import run_steps
from llama_data.pipeline.warc import WetReader

_REPO = Path(__file__).resolve().parents[1]
# ../shared/corpus beside the checkout (or beside the folder of worktrees)
CORPUS = next(
    (
        c
        for c in (_REPO.parent / "shared" / "corpus", _REPO.parent.parent / "shared" / "corpus")
        if c.exists()
    ),
    _REPO.parent / "shared" / "corpus",
)


def _rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else float("inf")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wet", default=str(CORPUS / "commoncrawl" / "pages.warc.wet.gz"))
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args(argv)

    docs = [d for d in WetReader("c4").read_path(args.wet) if isinstance(d, Document)]
    work = [
        Document(f"{d.id}#{r}", d.source, d.text, d.meta) for r in range(args.repeat) for d in docs
    ]
    mb = sum(len(d.text.encode()) for d in work) / 1e6
    result: dict = {"bench": "c4", "input": args.wet, "documents": len(work), "mb": round(mb, 2)}

    clean = c4.C4CleanStep()
    lang = c4.language_step()
    lang.setup()
    lid = c4.language_step(model="lid176")
    lid.setup()
    bad = c4.BadWordsStep()
    bad.setup()
    cleaned = [o for o in run_steps([clean], work) if isinstance(o, Document)]
    result["cleaned_docs"] = len(cleaned)
    # language id runs where C4 runs it, on cleaned pages: measured there
    for name, step, docs in (
        ("clean", clean, work),
        ("lang_langdetect", lang, cleaned),
        ("lang_lid176", lid, cleaned),
        ("badwords", bad, cleaned),
    ):
        cmb = sum(len(d.text.encode()) for d in docs) / 1e6
        t = time.perf_counter()
        for d in docs:
            step.process(d)
        dt = time.perf_counter() - t
        result[f"{name}_docs_per_s"] = _rate(len(docs), dt)
        result[f"{name}_mb_per_s"] = round(cmb / dt, 2)

    t = time.perf_counter()
    kept = [o for o in run_steps([clean, lang, bad], work) if isinstance(o, Document)]
    dt = time.perf_counter() - t
    result["chain_docs_per_s"] = _rate(len(work), dt)
    result["chain_kept"] = len(kept)

    t = time.perf_counter()
    n_lines = sum(len(c4.page_line_keys(d.text)) for d in cleaned)
    dt = time.perf_counter() - t
    result["line_keys_docs_per_s"] = _rate(len(cleaned), dt)
    result["lines_per_doc"] = round(n_lines / max(1, len(cleaned)), 1)
    # key (16) + url rank (32 hex) + id (~40) per distinct line
    result["line_shuffle_bytes_per_doc"] = round(n_lines * (16 + 32 + 40) / max(1, len(cleaned)))

    from llama_data.beam_jobs.c4 import C4Rules, make_c4_stage
    from llama_data.beam_jobs.harness import run_stage
    from llama_data.beam_jobs.runners import RunOptions

    with tempfile.TemporaryDirectory() as tmp:
        copies = []
        for r in range(max(1, args.repeat // 4)):
            p = Path(tmp) / f"in-{r}.warc.wet.gz"
            p.write_bytes(Path(args.wet).read_bytes())
            copies.append(str(p))
        t = time.perf_counter()
        res = run_stage(
            make_c4_stage(copies, from_cc=True, rules=C4Rules()),
            str(Path(tmp) / "out"),
            RunOptions(quiet=True, workers=1),
        )
        dt = time.perf_counter() - t
        result["beam_documents"] = res.stats["in"]
        result["beam_docs_per_s"] = _rate(res.stats["in"], dt)
        result["beam_kept"] = res.stats["kept"]
        result["beam_rejected"] = res.stats["rejected"]
    print(json.dumps(result, sort_keys=True))
    return result


if __name__ == "__main__":
    main()
