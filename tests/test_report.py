"""The build report: the demo's page in a real headless Chromium (plots drawn, no network, Table 1
equal to report.json), deterministic samples, and hostile text escaped and truncated."""

from __future__ import annotations

import html.parser
import json
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import run_cli
from llama_data.beam_jobs.harness import (
    ApplySteps,
    ReadDocuments,
    StageOutputs,
    StageSpec,
    run_stage,
)
from llama_data.beam_jobs.runners import RunOptions
from llama_data.pipeline.build_report import collect, write_report
from llama_data.pipeline.document import Document, Rejected
from llama_data.pipeline.io import DocumentReader
from llama_data.pipeline.report import human_bytes, human_count
from llama_data.pipeline.sketches import (
    SAMPLE_TEXT_CHARS,
    Histogram,
    Recorder,
    RecordSpec,
    merge_samples,
    sample_hash,
    split_counters,
)
from llama_data.pipeline.steps import Step


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def _run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium on a fresh profile; its own background services are switched off as
    far as flags allow (the net log check below tells them from the page's requests)."""
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run(
        [binary, *flags, *args], capture_output=True, text=True, timeout=120, check=False
    )


def _page_requests(net_log: Path) -> list[str]:
    """URLs the page asked for, from Chromium's net log: requests with a real initiator (the
    browser's own update/time checks say "not an origin")."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start
        and "url" in e.get("params", {})
        and e["params"].get("initiator") != "not an origin"
    ]


MEASURE = """<script>
const out = [];
for (const f of document.querySelectorAll('figure.plot')) {
  const svg = f.querySelector('svg');
  const r = (svg || f).getBoundingClientRect();
  out.push({id: f.dataset.plot, svg: !!svg, w: r.width, h: r.height,
            marks: svg ? svg.querySelectorAll('path, use, rect').length : 0});
}
const pre = document.createElement('pre');
pre.id = 'measured';
pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>"""


class _Table1Parser(html.parser.HTMLParser):
    """The cells of the page's `table.table1` rows."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_table = self._in_cell = False

    def handle_starttag(self, tag, attrs):
        if tag == "table" and ("class", "table1") in attrs:
            self._in_table = True
        elif self._in_table and tag == "tr":
            self.rows.append([])
        elif self._in_table and tag == "td":
            self._in_cell = True
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_table = False
        elif tag == "td":
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.rows[-1][-1] += data


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "demo-out"
    done = run_cli("build", "--output", str(out), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    page = out / "report" / "index.html"
    # `make demo` ends with the report's path
    assert done.stdout.strip().splitlines()[-1] == f"Report: {page}"
    return out


def test_demo_report_in_headless_chromium(demo: Path, tmp_path: Path) -> None:
    page = demo / "report" / "index.html"
    data = json.loads((demo / "report" / "report.json").read_text())
    first = page.read_bytes()
    # a second report of the same build is the same page and data
    done = run_cli("report", str(demo))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"Report: {page}"
    assert page.read_bytes() == first
    assert json.loads((demo / "report" / "report.json").read_text()) == data

    # every plot the data allows is on the page, and what users look at first is there
    ids = {p["id"] for p in data["plots"]}
    expected = {"table1", "tokens", "lengths", "languages-commoncrawl", "perplexity-commoncrawl-en"}
    expected |= {"wikiref-commoncrawl-wikiref", "license-github", "extension-github"}
    expected |= {"near-dup-books", "reasons-github", "reasons-commoncrawl"}
    assert expected <= ids
    text = first.decode()
    # nothing on the page points to a remote resource (URLs in samples are text)
    remote = r"""\s(src|href|action)\s*=\s*["']?\s*(https?:|//)|url\(\s*["']?\s*(https?:|//)"""
    assert not re.search(remote, text, re.I)
    assert all(st["samples"] for st in data["stages"].values() if st["kind"] == "stage")

    # Table 1 on the page equals report.json's, which equals the shard manifest
    manifest = json.loads((demo / "tokens" / "manifest.json").read_text())
    parser = _Table1Parser()
    parser.feed(text)
    rows = [r for r in parser.rows if r]
    assert len(rows) == len(data["table1"]["rows"]) == len(manifest["sources"])
    for cells, r in zip(rows, data["table1"]["rows"], strict=True):
        assert cells[:5] == [
            r["label"],
            f"{100 * r['proportion']:.1f}%",
            f"{r['epochs']:.2f}",
            human_bytes(r["disk_bytes"]),
            human_count(r["tokens_used"]),
        ]
        assert cells[5] == f"{100 * r['paper_proportion']:.1f}%"
        src = manifest["sources"][r["source"]]
        assert (r["tokens_used"], r["disk_bytes"]) == (src["tokens_used"], src["disk_bytes"])

    binary = _chromium()
    if binary is None:
        pytest.skip("chromium is not installed (make test installs Debian's chromium with apt)")

    # the page as it is: a screenshot, and Chromium's net log of what it loaded
    shot, net_log = tmp_path / "report.png", tmp_path / "net.json"
    done = _run_chromium(
        binary,
        tmp_path / "profile1",
        "--window-size=1200,2000",
        f"--screenshot={shot}",
        f"--log-net-log={net_log}",
        page.as_uri(),
    )
    assert shot.is_file() and shot.stat().st_size > 10_000, done.stderr[-2000:]
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (2000, 1200) and float(pixels.std()) > 0.05  # not blank
    assert _page_requests(net_log) == []

    # the same check sees a page that does load something (so the empty list above means it)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    control = tmp_path / "control.html"
    control.write_text(f'<!DOCTYPE html><img src="http://127.0.0.1:{port}/pixel.png">')
    _run_chromium(
        binary, tmp_path / "profile2", f"--log-net-log={net_log}", "--dump-dom", control.as_uri()
    )
    assert _page_requests(net_log) == [f"http://127.0.0.1:{port}/pixel.png"]

    # every plot laid out with a real size: a copy of the page measuring each in the DOM
    measure = tmp_path / "measure.html"
    measure.write_text(
        text.replace(
            "default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';"
        ).replace("</body>", MEASURE + "</body>")
    )
    done = _run_chromium(
        binary, tmp_path / "profile3", "--window-size=1200,2000", "--dump-dom", measure.as_uri()
    )
    dom = done.stdout
    start = dom.index('<pre id="measured">') + len('<pre id="measured">')
    measured = json.loads(html.unescape(dom[start : dom.index("</pre>", start)]))
    assert {m["id"] for m in measured} == ids
    for m in measured:
        assert m["svg"] and m["w"] > 200 and m["h"] > 60 and m["marks"] > 5, m


class _Hostile(Step):
    """Rejects what says so, with the rest of the text as the reason."""

    name = "hostile"

    def process(self, doc: Document):
        return Rejected(doc, "marked") if "REJECT" in doc.text else doc


def _hostile_stage(inputs: list[str]) -> StageSpec:
    def build(p, ctx):
        read = p | ReadDocuments(inputs, DocumentReader("hostile"), ctx.name)
        out = read.docs | ApplySteps([_Hostile()], ctx.name)
        return StageOutputs(
            kept=out.kept, rejected=[out.rejected], errors=[read.errors, out.errors]
        )

    return StageSpec("hostile", build, inputs=inputs, record=RecordSpec(samples=10))


def test_hostile_samples_are_escaped_and_truncated(tmp_path: Path) -> None:
    huge = "A" * 2_000_000  # one 2 MB line
    rows = [
        {"id": "s1", "text": "REJECT <script>alert('x')</script> and more"},
        {"id": "s2", "text": "REJECT </textarea><img src=x onerror=alert(1)>"},
        {"id": "s3", "text": "REJECT " + huge},
        {"id": "<b>id</b>", "text": "kept </pre><script>alert(2)</script>", "meta": {"m": "<i>"}},
        {"id": "s5", "text": "kept " + "\n".join(f"line {i}" for i in range(500))},
        {"id": "s6", "text": "kept \udfff lone surrogate"},
    ]
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    run_stage(_hostile_stage([str(src)]), str(out), RunOptions(quiet=True))

    samples = json.loads((out / "hostile" / "samples.json").read_text())["samples"]
    assert sorted(samples) == ["kept", "rejected:marked"]
    assert len(samples["kept"]) == 3 and len(samples["rejected:marked"]) == 3
    for recs in samples.values():
        for r in recs:  # truncated when recorded: a 2 MB line never reaches the report
            assert len(r["text"]) <= SAMPLE_TEXT_CHARS + 4 and r["text"].count("\n") <= 31
    big = next(r for r in samples["rejected:marked"] if r["id"] == "s3")
    assert big["chars"] == len(rows[2]["text"]) and big["text"].endswith("[…]")

    page = write_report(out).read_text()
    assert len(page) < 400_000
    body = page.split("<body>", 1)[1]
    assert "<script" not in body and "</textarea>" not in body and "<img" not in body
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in body
    assert "&lt;/textarea&gt;&lt;img src=x onerror=alert(1)&gt;" in body
    assert "&lt;b&gt;id&lt;/b&gt;" in body and "&lt;/pre&gt;&lt;script&gt;" in body
    assert "A" * (SAMPLE_TEXT_CHARS + 1) not in body
    assert "\ufffd lone surrogate" in body


def test_samples_do_not_depend_on_bundling() -> None:
    """The k smallest hashes of the union, whatever the split into bundles (and retries)."""
    docs = [Document(f"d{i}", "t", f"text {i}", {"score": i / 100}) for i in range(100)]
    spec = RecordSpec(histograms=(Histogram("score", "score", 0.0, 1.0, 10),), samples=4)

    def pick(parts: list[list[Document]]) -> tuple[dict, dict]:
        records, counts = [], {}
        for part in parts:
            rec = Recorder(spec)
            for d in part:
                rec.observe(d, "kept")
            records += rec.take_samples()
            for k, n in rec.take_counts().items():
                counts[k] = counts.get(k, 0) + n
        return merge_samples(records, 4), split_counters(counts, spec)[1]

    one = pick([docs])
    assert all(r["hash"] == sample_hash(r["id"], 0) for r in one[0]["kept"])
    assert [r["hash"] for r in one[0]["kept"]] == sorted(sample_hash(d.id, 0) for d in docs)[:4]
    assert pick([docs[i::7] for i in range(7)]) == one
    assert pick([docs[:60], docs[40:]])[0] == one[0]  # a retried bundle's repeats count once
    assert one[1]["histograms"]["score"]["counts"]["kept"] == [10] * 10
    assert [r["id"] for r in one[0]["kept"]] == [r["id"] for r in pick([docs[::-1]])[0]["kept"]]


def test_report_json_lists_reasons_with_shares(demo: Path) -> None:
    data = collect(demo)
    gh = data["stages"]["github"]
    assert gh["rejected"] == sum(r["count"] for r in gh["reasons"]) == 10
    assert [r["count"] for r in gh["reasons"]] == sorted(
        (r["count"] for r in gh["reasons"]), reverse=True
    )
    assert all(abs(r["share"] - r["count"] / gh["in"]) < 1e-6 for r in gh["reasons"])
    assert gh["doc"] == "github.md" and gh["cpu_s"] > 0 and gh["wall_s"] > 0
    assert sum(gh["categories"]["license"]["kept"].values()) == gh["kept"]
    cc = data["stages"]["commoncrawl"]
    assert sum(sum(c) for c in cc["histograms"]["perplexity"]["counts"].values()) > 0
    assert set(cc["extra"]["cutoffs"]) <= set(cc["histograms"]["perplexity"]["counts"])
    # lengths and bytes as recorded equal the documents written (read here, never by the report),
    # through the harness's writer and the exact dedup's own kept files alike
    import pyarrow.parquet as pq

    for name in ("github", "commoncrawl", "c4", "books", "wikipedia"):
        st = data["stages"][name]
        texts = [
            t
            for f in sorted((demo / name).glob("part-*.parquet"))
            for t in pq.read_table(f, columns=["text"]).column("text").to_pylist()
        ]
        assert st["bytes_kept"] == sum(len(t.encode()) for t in texts), name
        assert sum(st["histograms"]["length"]["counts"]["kept"]) == sum(1 for t in texts if t)
    assert len(data["models"]) >= 3 and all(len(v) for v in data["models"].values())
    assert data["versions"]["apache-beam"] and data["versions"]["matplotlib"]
