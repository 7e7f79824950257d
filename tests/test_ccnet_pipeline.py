"""CCNet end to end: a tiny LM trained here (real SentencePiece + lmplz + build_binary), a WET
fixture written here, the Beam stage on the DirectRunner, the CLI, and the download command."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import run_cli, write_jsonl
from llama_data.beam_jobs.ccnet import ccnet_stage_from_options
from llama_data.beam_jobs.harness import run_stage
from llama_data.beam_jobs.runners import RunOptions
from llama_data.pipeline.ccnet.train_lm import TrainLmError, TrainLmSettings, find_tool, train_lm

LOCAL = RunOptions(quiet=True)

WIKI = [
    "The river flows through the valley and reaches the sea near the old harbour town.",
    "Farmers grow wheat and barley on the fertile plains along its banks.",
    "The town was founded in the twelfth century as a trading post for salt and wool.",
    "The cathedral is a large church built in the gothic style, and its towers can be seen from far away.",
    "A library is a collection of books that people can borrow, and public libraries are open to everyone.",
    "The railway reached the town in the nineteenth century and brought new industry to the region.",
    "Bread is made from flour, water, salt and yeast, and it is baked in an oven until the crust is brown.",
    "The climate of the region is mild, with warm summers and wet winters.",
]

BOILER = [
    "Home",
    "About us",
    "Subscribe to our newsletter for weekly updates.",
    "© 2023 Example Media. All rights reserved.",
]

EN_PAGES = {
    "http://a.test/river": [
        "The river and the harbour town",
        "The river flows through a wide valley and reaches the sea near an old harbour town.",
        "For centuries the town lived from trade in salt, wool and grain, which came down the river on boats.",
        "Today the harbour is used by fishing boats and by visitors who come to see the old warehouses.",
    ],
    "http://b.test/library": [
        "Why public libraries matter",
        "A public library lends books to everyone in the town, and it is funded by the city.",
        "Many libraries now also lend music and films, and they offer computers for people who have none at home.",
        "Children learn to read in the library, and older people meet there to talk about the books they borrow.",
    ],
    "http://c.test/bread": [
        "Baking bread at home",
        "Bread needs only flour, water, salt and yeast, but good bread needs time and patience.",
        "Knead the dough until it is smooth, let it rise in a warm place, and bake it in a hot oven.",
        "The crust should be deep brown, and the loaf should sound hollow when you tap the bottom.",
    ],
}
DE_PAGE = [
    "Der Fluss und die alte Hafenstadt",
    "Der Fluss fließt durch ein breites Tal und erreicht das Meer bei einer alten Hafenstadt.",
    "Jahrhundertelang lebte die Stadt vom Handel mit Salz, Wolle und Getreide, das auf Booten kam.",
    "Heute kommen Besucher, um die alten Lagerhäuser am Hafen zu sehen und am Ufer zu spazieren.",
]


def wet_member(url: str, lines: list[str], i: int) -> bytes:
    body = "\n".join(lines).encode()
    head = (
        "WARC/1.0\r\nWARC-Type: conversion\r\n"
        f"WARC-Target-URI: {url}\r\nWARC-Date: 2023-01-01T00:00:{i:02d}Z\r\n"
        f"WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-{i:012d}>\r\n"
        f"WARC-Block-Digest: sha1:DIGEST{i:02d}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return gzip.compress(head + body + b"\r\n\r\n")


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        find_tool("lmplz"), find_tool("build_binary")
    except TrainLmError as exc:
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("lm")
    docs = [{"id": f"w{i}", "text": "\n".join(WIKI[i:] + WIKI[:i])} for i in range(len(WIKI))]
    docs.append({"id": "other", "text": "Ein deutscher Satz.", "language": "de"})
    write_jsonl(root / "wiki.jsonl", docs)
    card = train_lm(
        str(root / "wiki.jsonl"), root / "models", TrainLmSettings("en", vocab_size=120)
    )
    assert card["training"]["docs"] == len(WIKI)  # the German document is skipped
    assert card["training"]["other_language"] == 1
    return root / "models"


def test_train_lm_writes_models_and_card(lm_dir: Path) -> None:
    card = json.loads((lm_dir / "en.card.json").read_text())
    assert {"en.sp.model", "en.arpa.bin"} == set(card["files"])
    for name, info in card["files"].items():
        assert (lm_dir / name).stat().st_size == info["bytes"] and len(info["sha256"]) == 64
    assert card["settings"]["order"] == 5 and card["training"]["tokens"] > 0
    assert (lm_dir / "en.arpa.bin").read_bytes()[:4] != b"\\dat"  # KenLM binary, not ARPA


def test_train_lm_is_the_same_wherever_it_runs(lm_dir: Path, tmp_path: Path) -> None:
    """Retrained elsewhere (another folder, another temporary directory), the models are the
    same bytes: SentencePiece is given its lines and writes its model through Python, so no
    path is recorded in the model (it once held the random temporary directory's)."""
    again = tmp_path / "elsewhere"
    train_lm(str(lm_dir.parent / "wiki.jsonl"), again, TrainLmSettings("en", vocab_size=120))
    for name in ("en.sp.model", "en.arpa.bin"):
        assert (again / name).read_bytes() == (lm_dir / name).read_bytes(), name
    assert b"/tmp" not in (again / "en.sp.model").read_bytes()


def write_fixture(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    members = [
        wet_member(url, lines + BOILER, i) for i, (url, lines) in enumerate(EN_PAGES.items())
    ]
    members.append(wet_member("http://d.test/fluss", DE_PAGE + BOILER[:2], 10))
    members.append(wet_member("http://e.test/stub", ["Page not found", "Home"], 11))
    one = folder / "seg-00000.warc.wet.gz"
    members.append(gzip.compress(b"WARC/1.0\r\nWARC-Type: conversion\r\nContent-Length: x\r\n\r\n"))
    one.write_bytes(b"".join(members))
    two = folder / "seg-00001.warc.wet.gz"
    # a second segment: the river page again (exact copy, other URL) and one unique page
    two.write_bytes(
        wet_member("http://mirror.test/river", EN_PAGES["http://a.test/river"], 20)
        + wet_member(
            "http://f.test/railway",
            [
                "How the railway changed the region",
                "When the railway reached the valley in the nineteenth century, new factories opened near the station.",
                "Farmers could send wheat and barley to the cities in a single day, and prices for their grain rose.",
                "The old river boats slowly disappeared, and the harbour became quiet for many years.",
            ],
            21,
        )
    )
    return [one, two]


def read_stage(stage: Path) -> tuple[list[dict], list[dict], list[dict]]:
    kept = [r for p in sorted(stage.glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    rejected = [
        r
        for p in sorted((stage / "rejected").glob("*.parquet"))
        for r in pq.read_table(p).to_pylist()
    ]
    errors = [
        json.loads(x)
        for p in sorted((stage / "errors").glob("*.jsonl"))
        for x in p.read_text().splitlines()
    ]
    return kept, rejected, errors


@pytest.mark.slow
def test_ccnet_stage_end_to_end(lm_dir: Path, tmp_path: Path) -> None:
    files = write_fixture(tmp_path / "wet")
    spec = ccnet_stage_from_options(
        [str(tmp_path / "wet" / "*.wet.gz")],
        str(lm_dir),
        keep=("head", "middle", "tail"),
        min_length=200,
    )
    result = run_stage(spec, str(tmp_path / "out"), LOCAL)
    kept, rejected, errors = read_stage(tmp_path / "out" / "ccnet")
    stats = result.stats
    assert stats["accounting"]["ok"] and stats["in"] == 8
    by_url = {r["url"]: r for r in kept}
    # boilerplate in 4 pages: gone from every kept page; content lines stay
    for r in kept:
        assert "Subscribe to our newsletter" not in r["text"] and "Home" not in r["text"].split(
            "\n"
        )
        assert r["language"] == "en" and r["language_score"] >= 0.5
        assert r["perplexity"] > 1 and r["bucket"] in ("head", "middle", "tail")
        assert r["original_nlines"] >= r["nlines"] and r["length"] == len(r["text"])
    assert set(by_url) == {"http://b.test/library", "http://c.test/bread", "http://f.test/railway"}
    assert by_url["http://c.test/bread"]["text"].startswith("Baking bread at home\nBread needs")
    assert by_url["http://c.test/bread"]["title"] == "Baking bread at home"
    assert (
        by_url["http://c.test/bread"]["original_nlines"],
        by_url["http://c.test/bread"]["nlines"],
    ) == (8, 4)
    reasons = {r["url"]: r["reason"] for r in rejected}
    assert reasons["http://d.test/fluss"] == "lang"
    assert reasons["http://e.test/stub"] == "too_short"
    # the river page and its copy in the other segment: every line is duplicated -> nothing left
    assert (
        reasons["http://a.test/river"] == "too_short"
        and reasons["http://mirror.test/river"] == "too_short"
    )
    assert [e["reason"] for e in errors] == ["bad_content_length"]
    assert errors[0]["file"] == str(files[0])
    cut = stats["extra"]["cutoffs"]["en"]
    assert cut["p30"] <= cut["p60"]
    assert (
        json.loads((tmp_path / "out" / "ccnet" / "cutoffs.json").read_text())
        == stats["extra"]["cutoffs"]
    )
    assert stats["counters"]["line_dedup.lines_removed"] > 0

    # dedup scope = groups of 1 file: the river page and its copy are no longer line duplicates
    # (each file holds one copy), so the exact document dedup catches the copy instead
    spec = ccnet_stage_from_options(
        [str(tmp_path / "wet" / "*.wet.gz")],
        str(lm_dir),
        keep=("head", "middle", "tail"),
        min_length=200,
        group_files=1,
        cutoffs_file=str(tmp_path / "out" / "ccnet" / "cutoffs.json"),
    )
    result = run_stage(spec, str(tmp_path / "out2"), LOCAL)
    kept, rejected, _ = read_stage(tmp_path / "out2" / "ccnet")
    reasons = {r["url"]: r["reason"] for r in rejected}
    assert reasons["http://mirror.test/river"] == "duplicate"
    copy = next(r for r in rejected if r["url"] == "http://mirror.test/river")
    assert json.loads(copy["meta"])["duplicate_of"] == "seg-00000.warc.wet.gz:0"
    assert "http://a.test/river" in {r["url"] for r in kept}
    assert result.stats["extra"]["cutoffs_from"] == "cutoff file"


def test_ccnet_cli_errors_are_one_line(lm_dir: Path, tmp_path: Path) -> None:
    r = run_cli(
        "ccnet", "-i", str(tmp_path / "x.wet"), "-o", str(tmp_path), "--lm", str(tmp_path / "nolm")
    )
    assert r.returncode == 2 and "--lm" in r.stderr and "Traceback" not in r.stderr
    r = run_cli(
        "ccnet",
        "-i",
        str(tmp_path / "x.wet"),
        "-o",
        str(tmp_path),
        "--lm",
        str(lm_dir),
        "--languages",
        "fr",
    )
    assert r.returncode == 2 and "no perplexity model for fr" in r.stderr
    r = run_cli(
        "ccnet",
        "-i",
        str(tmp_path / "x.wet"),
        "-o",
        str(tmp_path),
        "--lm",
        str(lm_dir),
        "--keep",
        "top",
    )
    assert r.returncode == 2 and "--keep" in r.stderr
    r = run_cli(
        "train-lm", "-i", str(tmp_path / "none*.jsonl"), "--lang", "en", "-o", str(tmp_path / "m")
    )
    assert r.returncode == 2 and "no input files" in r.stderr


@pytest.mark.slow
def test_ccnet_cli_on_fixture(lm_dir: Path, tmp_path: Path) -> None:
    write_fixture(tmp_path / "wet")
    r = run_cli(
        "ccnet",
        "-i",
        str(tmp_path / "wet" / "*.gz"),
        "-o",
        str(tmp_path / "out"),
        "--lm",
        str(lm_dir),
        "--min-length",
        "200",
        "--keep",
        "head,middle,tail",
    )
    assert r.returncode == 0, r.stderr
    assert "[ccnet] 8 in, 3 kept" in r.stdout


def test_ccnet_takes_cc_nets_published_model_layout_and_cutoff_csv(
    lm_dir: Path, tmp_path: Path
) -> None:
    """cc_net publishes its Wikipedia LMs as `lm_sp/<lang>.arpa.bin` + `<lang>.sp.model` (no card)
    and its cutoffs as `cutoff.csv` (one row per percentile, one column per language): both are
    taken as they are, and a page's bucket follows the csv's p30/p60 rows."""
    import shutil

    lm_sp = tmp_path / "lm_sp"
    lm_sp.mkdir()
    for name in ("en.arpa.bin", "en.sp.model"):
        shutil.copy(lm_dir / name, lm_sp / name)
    rows = [",en,fr", *(f"{q},{1.0 if q <= 30 else 1e9},5.0" for q in range(101))]
    (tmp_path / "cutoff.csv").write_text("\n".join(rows) + "\n")
    write_fixture(tmp_path / "wet")
    r = run_cli(
        "ccnet",
        "-i",
        str(tmp_path / "wet" / "*.gz"),
        "-o",
        str(tmp_path / "out"),
        "--lm",
        str(lm_sp),
        "--cutoffs",
        str(tmp_path / "cutoff.csv"),
        "--min-length",
        "200",
    )
    assert r.returncode == 0, r.stderr
    kept, _, _ = read_stage(tmp_path / "out" / "ccnet")
    assert kept and all(row["bucket"] == "middle" for row in kept)  # 1.0 <= ppl < 1e9
    stats = json.loads((tmp_path / "out" / "ccnet" / "stats.json").read_text())
    assert stats["extra"]["cutoffs"]["en"] == {"p30": 1.0, "p60": 1e9}


def test_download_cc_from_local_server(http_server, tmp_path: Path) -> None:
    base, root = http_server
    crawl = root / "crawl-data" / "CC-MAIN-2023-06"
    seg = root / "crawl-data" / "CC-MAIN-2023-06" / "segments" / "1" / "wet"
    seg.mkdir(parents=True)
    paths = []
    for i in range(3):
        name = f"CC-MAIN-x-{i:05d}.warc.wet.gz"
        (seg / name).write_bytes(wet_member(f"http://{i}.test/", ["hello"], i) * 3)
        paths.append(f"crawl-data/CC-MAIN-2023-06/segments/1/wet/{name}")
    (crawl / "wet.paths.gz").write_bytes(gzip.compress("\n".join(paths).encode()))
    out = tmp_path / "cc"
    # a partial earlier download of the first file is resumed
    out.mkdir()
    first = seg / "CC-MAIN-x-00000.warc.wet.gz"
    (out / (first.name + ".part")).write_bytes(first.read_bytes()[:20])
    r = run_cli(
        "download",
        "cc",
        "--snapshot",
        "CC-MAIN-2023-06",
        "--segments",
        "2",
        "-o",
        str(out),
        "--base-url",
        base,
    )
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / "download-manifest.json").read_text())
    assert sorted(manifest["files"]) == [
        "CC-MAIN-x-00000.warc.wet.gz",
        "CC-MAIN-x-00001.warc.wet.gz",
    ]
    assert (out / first.name).read_bytes() == first.read_bytes()
    assert manifest["snapshot"] == "CC-MAIN-2023-06" and manifest["available_segments"] == 3
    r = run_cli("download", "cc", "--snapshot", "2023-06", "-o", str(out), "--base-url", base)
    assert r.returncode == 2 and "CC-MAIN-YYYY-WW" in r.stderr
    # a file that arrives cut short fails the gzip check
    shutil.copy(first, tmp_path / "keep")
    first.write_bytes(first.read_bytes()[:-7])
    (out / first.name).unlink()
    r = run_cli(
        "download",
        "cc",
        "--snapshot",
        "CC-MAIN-2023-06",
        "--segments",
        "1",
        "-o",
        str(out),
        "--base-url",
        base,
    )
    assert r.returncode == 2 and "not a complete gzip stream" in r.stderr


@pytest.mark.corpus
@pytest.mark.slow
def test_corpus_only_english_survives(lm_dir: Path, corpus: Path, tmp_path: Path) -> None:
    cc = corpus / "commoncrawl"
    spec = ccnet_stage_from_options(
        [str(cc / "pages.warc.wet.gz"), str(cc / "ccnet-sample.warc.wet")],
        str(lm_dir),
        keep=("head", "middle", "tail"),
    )
    result = run_stage(spec, str(tmp_path / "out"), LOCAL)
    kept, rejected, errors = read_stage(tmp_path / "out" / "ccnet")
    assert not errors and result.stats["accounting"]["ok"]
    assert kept and all(r["language"] == "en" for r in kept)
    assert "http://sample_english.com" in {r["url"] for r in kept}
    langs = {json.loads(r["meta"]).get("cc_languages") for r in kept} - {None}
    assert langs <= {"eng"}, langs
    assert {r["reason"] for r in rejected} >= {"lang"}


def test_config_section_and_build_plan(tmp_path: Path) -> None:
    from llama_data.beam_jobs.build import BuildContext, plan_build
    from llama_data.pipeline.config import ConfigError, parse_config
    from llama_data.pipeline.errors import UserError

    wet = {"inputs": ["cc/*.wet.gz"], "languages": ["en"]}
    docs = {"format": "documents", "inputs": ["wiki/*.jsonl"]}
    cfg = parse_config({"sources": {"wikipedia": docs, "commoncrawl": wet}}, tmp_path / "b.toml")
    src = cfg.sources["commoncrawl"]
    assert src.keep == ["head", "middle"] and src.min_length == 300 and src.lm is None
    ctx = BuildContext(config=cfg, output=str(tmp_path / "out"), run=LOCAL)
    ours = ("wikipedia", "commoncrawl-lm", "commoncrawl")  # build-wide steps may follow
    steps = {s.name: s for s in plan_build(ctx) if s.name in ours}
    assert list(steps) == list(ours)
    assert steps["commoncrawl-lm"].deps == ("wikipedia",)
    assert steps["commoncrawl"].deps == ("commoncrawl-lm",)
    # an LM folder given: no training step, no dependency on wikipedia
    cfg = parse_config({"sources": {"commoncrawl": {**wet, "lm": "models"}}}, tmp_path / "b.toml")
    assert cfg.sources["commoncrawl"].lm == str(tmp_path / "models")
    ctx = BuildContext(config=cfg, output=str(tmp_path / "out"), run=LOCAL)
    assert "commoncrawl-lm" not in [s.name for s in plan_build(ctx)]
    # no LM and nothing to train it from: one clear error
    cfg = parse_config({"sources": {"commoncrawl": wet}}, tmp_path / "b.toml")
    with pytest.raises(UserError, match="lm_from"):
        plan_build(BuildContext(config=cfg, output=str(tmp_path / "out"), run=LOCAL))
    for bad, key in (({"keep": ["top"]}, "keep"), ({"min_lang_score": 2}, "min_lang_score")):
        with pytest.raises(ConfigError, match=key):
            parse_config({"sources": {"commoncrawl": {**wet, **bad}}}, tmp_path / "b.toml")
