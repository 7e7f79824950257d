"""C4: the release reader, each of C4's rules on crafted lines and pages, span dedup, language id."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from llama_data.pipeline import c4
from llama_data.pipeline.document import DeadLetter, Document, Rejected
from llama_data.pipeline.steps import LocalCounters, run_steps

GOOD = [
    "The committee met on Tuesday to discuss the new budget proposal.",
    "Several members raised concerns about the cost of the bridge repairs.",
    "A final vote on the measure is expected later this month.",
]


def page(*extra: str, good: list[str] = GOOD) -> str:
    return "\n".join([*good, *extra])


def clean(text: str) -> c4.CleanResult:
    return c4.clean_page(text)


# --- line rules ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("Home | About us | Contact the team here", "line_no_endmark"),
        ("This line trails off into nothing at all...", "line_no_endmark"),
        ("Too short to keep.", "line_too_few_words"),
        ("Please enable JavaScript in your browser to continue.", "line_javascript"),
        ("This website uses cookies to improve your experience.", "line_policy"),
        ("By using this site you agree to our Terms of Use and more.", "line_policy"),
        ("Read our privacy policy before you sign up for the newsletter.", "line_policy"),
        ("Our cookie policy explains how we track visitors to the site.", "line_policy"),
        ("A word " + "x" * 1001 + " is far too long for any line.", "line_too_long_word"),
    ],
)
def test_each_line_rule_drops_its_line(line: str, reason: str) -> None:
    res = clean(page(line))
    assert res.reason is None
    assert res.text == "\n".join(GOOD)
    assert res.line_drops == {reason: 1}


@pytest.mark.parametrize(
    "line",
    [
        "The results were published in a peer reviewed journal last year.",
        'He told reporters that the plan "would work out fine."',
        "Did the council approve the new parking rules for downtown?",
        "What a remarkable finish to the championship game it was!",
    ],
)
def test_lines_ending_in_terminal_punctuation_with_five_words_are_kept(line: str) -> None:
    res = clean(page(line))
    assert res.text is not None and res.text.endswith(line)
    assert res.line_drops == {}


def test_citation_markers_are_removed_from_lines() -> None:
    res = clean(page("The river floods every spring[1] and autumn[citation needed] too[edit]."))
    assert res.text is not None
    assert (
        "[1]" not in res.text and "[citation needed]" not in res.text and "[edit]" not in res.text
    )


# --- page rules ---------------------------------------------------------------------------------
def test_lorem_ipsum_rejects_the_page() -> None:
    assert (
        clean(page("Lorem ipsum dolor sit amet, consectetur adipiscing elit.")).reason
        == "lorem_ipsum"
    )


def test_curly_bracket_rejects_the_page() -> None:
    assert (
        clean(page("The function body starts with { and ends somewhere below.")).reason
        == "curly_bracket"
    )


def test_curly_bracket_in_a_dropped_line_does_not_reject_the_page() -> None:
    # As in the reference implementation, the page rules look at the lines that survived.
    assert clean(page("var x = {a: 1}")).reason is None


def test_fewer_than_three_sentences_rejects_the_page() -> None:
    res = clean("\n".join(GOOD[:2]))
    assert res.reason == "too_few_sentences"
    assert clean("\n".join(GOOD)).reason is None
    # three sentences on one line count as three
    assert clean(" ".join(GOOD)).reason is None


def test_sentence_splitter_keeps_abbreviations_and_initials() -> None:
    assert c4.split_sentences("Dr. Smith met J. R. Tolkien in St. Louis. They talked. Fine?") == [
        "Dr. Smith met J. R. Tolkien in St. Louis.",
        "They talked.",
        "Fine?",
    ]


def test_badwords_reject_whole_words_only(tmp_path: Path) -> None:
    words = tmp_path / "bad.txt"
    words.write_text("# comment\nbadword\ntwo words\n", encoding="utf-8")
    step = c4.BadWordsStep(str(words))
    step.setup()
    doc = Document("a", "c4", page("This line has a Badword in it, sadly for us."))
    assert isinstance(step.process(doc), Rejected)
    assert step.process(Document("b", "c4", "Badword at the very start.")).reason == "badwords"
    assert isinstance(step.process(Document("c", "c4", "A phrase of two words here.")), Rejected)
    assert isinstance(
        step.process(Document("d", "c4", "No badwordsmith here, two-wordsy.")), Document
    )


def test_default_badwords_list_ships_with_attribution() -> None:
    path = Path(c4.default_badwords_path())
    words = c4.load_badwords(str(path))
    assert len(words) > 300 and "porn" in words
    notice = (path.parent / "NOTICE.md").read_text(encoding="utf-8")
    assert "Creative Commons Attribution 4.0" in notice and "Shutterstock" in notice


def test_clean_step_counts_line_reasons_and_names_page_reasons() -> None:
    step = c4.C4CleanStep()
    counters = LocalCounters()
    step.bind_counters(counters)
    docs = [
        Document("ok", "c4", page("Please enable JavaScript in your browser to continue.", "Menu")),
        Document("lorem", "c4", page("Lorem ipsum dolor sit amet, consectetur adipiscing elit.")),
        Document("short", "c4", GOOD[0]),
    ]
    out = list(run_steps([step], docs))
    kept = [o for o in out if isinstance(o, Document)]
    rejected = {o.doc.id: o.reason for o in out if isinstance(o, Rejected)}
    assert [d.id for d in kept] == ["ok"]
    assert kept[0].meta["nlines"] == 3 and kept[0].meta["original_nlines"] == 5
    assert rejected == {"lorem": "lorem_ipsum", "short": "too_few_sentences"}
    assert counters["c4_clean.line_javascript"] == 1
    assert counters["c4_clean.line_no_endmark"] == 1


# --- three-sentence spans -----------------------------------------------------------------------
SHARED = (
    "Shared sentence one is here. Shared sentence two follows it. Shared sentence three ends it."
)


def test_three_sentence_span_dedup_across_two_documents() -> None:
    a = Document(
        "a", "c4", f"Alpha opens the first page today.\n{SHARED}\nAlpha closes the page now."
    )
    b = Document(
        "b",
        "c4",
        f"Beta opens the second page today. {SHARED}\nBeta adds one. Beta adds two. Beta ends.",
    )
    cuts = c4.dedup_spans([b, a])  # input order does not matter
    assert cuts == {"b": [1]}
    out_b = c4.apply_span_cuts(b, cuts["b"])
    assert isinstance(out_b, Document)
    assert "Shared" not in out_b.text
    assert (
        out_b.text == "Beta opens the second page today.\nBeta adds one. Beta adds two. Beta ends."
    )
    assert out_b.meta["duplicate_spans"] == 1
    # the winner (smallest id) keeps its copy
    assert "a" not in cuts


def test_two_shared_sentences_are_not_a_duplicate_span() -> None:
    two = "Shared sentence one is here. Shared sentence two follows it."
    a = Document("a", "c4", f"Alpha starts here now. {two} Alpha ends here now.")
    b = Document("b", "c4", f"Beta starts here now. {two} Beta ends here now.")
    assert c4.dedup_spans([a, b]) == {}


def test_span_repeated_inside_one_document_keeps_the_first() -> None:
    a = Document("a", "c4", f"{SHARED}\nSomething else entirely happens here.\n{SHARED}")
    cuts = c4.dedup_spans([a])
    assert cuts == {"a": [4]}
    out = c4.apply_span_cuts(a, cuts["a"])
    assert isinstance(out, Document)
    assert out.text == f"{SHARED}\nSomething else entirely happens here."


def test_doc_left_with_too_few_sentences_after_dedup_is_rejected() -> None:
    b = Document("b", "c4", f"{SHARED} One more sentence here.")
    out = c4.apply_span_cuts(b, [0])
    assert isinstance(out, Rejected) and out.reason == "dedup_too_few_sentences"


def test_span_losers_are_independent_of_arrival_order() -> None:
    occ = [("b", 0), ("a", 3), ("c", 1), ("a", 1)]
    assert c4.span_losers(occ) == c4.span_losers(reversed(occ)) == [("a", 3), ("b", 0), ("c", 1)]


# --- language id --------------------------------------------------------------------------------
def test_english_at_099_with_real_lid176() -> None:
    step = c4.language_step()  # the paper's 0.99
    step.setup()
    en = Document("en", "c4", "She said that she would like to have a cup of tea with her friends.")
    de = Document(
        "de", "c4", "Der Ausschuss traf sich am Dienstag, um den neuen Haushalt zu besprechen."
    )
    mixed = Document("mx", "c4", "Hello. Der Ausschuss traf sich am Dienstag. Bonjour à tous.")
    out = step.process_batch([en, de, mixed])
    assert isinstance(out[0], Document) and out[0].meta["language"] == "en"
    assert out[0].meta["language_score"] >= 0.99
    assert isinstance(out[1], Rejected) and out[1].reason == "lang"
    assert out[1].doc.meta["language"] == "de"
    assert isinstance(out[2], Rejected)


def test_lid176_page_scores_sit_below_099_so_the_threshold_is_configurable() -> None:
    # lid.176.ftz is less sure of whole English pages than langdetect was (docs/c4.md has the
    # measurements); the rule keeps the paper's 0.99 by default and takes another threshold.
    strict, loose = c4.language_step(threshold=0.99), c4.language_step(threshold=0.9)
    doc = Document("en", "c4", page())
    score = strict.process(doc).doc.meta["language_score"]
    assert 0.9 <= score < 0.99
    assert isinstance(loose.process(doc), Document)


# --- the public release -------------------------------------------------------------------------
def write_c4_file(path: Path, rows: list[dict | str]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for row in rows:
            fh.write((row if isinstance(row, str) else json.dumps(row)) + "\n")


def test_release_reader_keeps_documents_unchanged(tmp_path: Path) -> None:
    f = tmp_path / "c4-train.00000-of-01024.json.gz"
    text = "First line.\nSecond line with ünïcode."
    write_c4_file(
        f,
        [
            {"text": text, "timestamp": "2019-04-25T12:57:54Z", "url": "https://example.com/a"},
            "{not json",
            {"url": "https://example.com/b"},
        ],
    )
    out = list(c4.C4JsonReader().read_path(str(f)))
    doc = out[0]
    assert isinstance(doc, Document)
    assert doc.text == text and doc.source == "c4"
    assert doc.id == "c4-train.00000-of-01024:1"
    assert doc.meta == {"url": "https://example.com/a", "timestamp": "2019-04-25T12:57:54Z"}
    assert [o.reason for o in out[1:]] == ["bad_json", "missing_text"]
    assert all(isinstance(o, DeadLetter) for o in out[1:])


def test_release_reader_turns_a_truncated_file_into_a_dead_letter(tmp_path: Path) -> None:
    f = tmp_path / "c4-train.00001-of-01024.json.gz"
    write_c4_file(
        f, [{"text": f"doc {i} " * 50, "url": f"u{i}", "timestamp": "t"} for i in range(200)]
    )
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    out = list(c4.C4JsonReader().read_path(str(f)))
    assert isinstance(out[-1], DeadLetter) and out[-1].reason == "corrupt_stream"
    assert all(isinstance(o, Document) for o in out[:-1])


# --- the Beam stages ----------------------------------------------------------------------------
def wet_record(url: str, text: str, date: str = "2019-04-25T12:57:54Z") -> bytes:
    body = text.encode("utf-8")
    head = (
        "WARC/1.0\r\n"
        "WARC-Type: conversion\r\n"
        f"WARC-Target-URI: {url}\r\n"
        f"WARC-Date: {date}\r\n"
        f"WARC-Record-ID: <urn:uuid:{abs(hash(url)):032x}>\r\n"
        "WARC-Block-Digest: sha1:AAAA\r\n"
        "Content-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return gzip.compress(head + body + b"\r\n\r\n")


def write_wet(path: Path, pages: list[tuple[str, str]]) -> None:
    path.write_bytes(b"".join(wet_record(u, t) for u, t in pages))


EN = [
    "She said that she would like to have a cup of tea with her friends.",
    "They walked along the river and talked about the books they had read.",
    "The children played in the garden until their mother called them home.",
]


def read_parquet_rows(folder: Path) -> list[dict]:
    import pyarrow.parquet as pq

    rows: list[dict] = []
    for f in sorted(folder.glob("*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return rows


@pytest.mark.slow
def test_release_stage_writes_documents_unchanged(tmp_path: Path) -> None:
    from llama_data.beam_jobs.c4 import make_c4_stage
    from llama_data.beam_jobs.harness import run_stage
    from llama_data.beam_jobs.runners import RunOptions

    f = tmp_path / "c4-train.00000-of-01024.json.gz"
    write_c4_file(
        f,
        [
            {"text": t, "url": f"https://e.com/{i}", "timestamp": "2019-04-25T12:57:54Z"}
            for i, t in enumerate(EN)
        ]
        + ["{bad"],
    )
    res = run_stage(make_c4_stage([str(f)]), str(tmp_path / "out"), RunOptions(quiet=True))
    rows = read_parquet_rows(tmp_path / "out" / "c4")
    assert sorted(r["text"] for r in rows) == sorted(EN)
    assert {r["url"] for r in rows} == {"https://e.com/0", "https://e.com/1", "https://e.com/2"}
    assert res.stats["kept"] == 3 and res.stats["errors"] == {"bad_json": 1}


@pytest.mark.slow
def test_from_cc_stage_applies_every_rule_and_dedups_spans(tmp_path: Path) -> None:
    from llama_data.beam_jobs.c4 import C4Rules, make_c4_stage
    from llama_data.beam_jobs.harness import run_stage
    from llama_data.beam_jobs.runners import RunOptions

    shared = " ".join(EN)
    pages = [
        (
            "http://a.example/1",
            f"Menu | Home\n{shared}\nPlease enable JavaScript in your browser to continue.",
        ),
        (
            "http://b.example/2",
            f"I have never seen such a beautiful sunset over the sea.\n{shared}\nWe stayed on the beach until it was dark outside.",
        ),
        (
            "http://c.example/3",
            f"{shared}\nLorem ipsum dolor sit amet, consectetur adipiscing elit.",
        ),
        (
            "http://d.example/4",
            f"{shared}\nThe function body starts with {{ and ends somewhere below.",
        ),
        (
            "http://e.example/5",
            "Der Ausschuss traf sich am Dienstag, um den Haushalt zu besprechen. Es gab viel Streit darüber. Am Ende stimmten alle zu.",
        ),
        ("http://f.example/6", "Only one sentence here with enough words."),
        (
            "http://g.example/7",
            f"She said that she would like to watch porn with her friends.\n{shared}",
        ),
    ]
    wet = tmp_path / "CC-MAIN-test.warc.wet.gz"
    write_wet(wet, pages)
    rules = C4Rules(lang_threshold=0.9)
    res = run_stage(
        make_c4_stage([str(wet)], from_cc=True, rules=rules),
        str(tmp_path / "out"),
        RunOptions(quiet=True),
    )
    kept = read_parquet_rows(tmp_path / "out" / "c4")
    rejected = {
        r["url"]: r["reason"] for r in read_parquet_rows(tmp_path / "out" / "c4" / "rejected")
    }
    # a (the smallest id) keeps the shared span; b loses it and is left with two sentences
    assert rejected == {
        "http://b.example/2": "dedup_too_few_sentences",
        "http://c.example/3": "lorem_ipsum",
        "http://d.example/4": "curly_bracket",
        "http://e.example/5": "lang",
        "http://f.example/6": "too_few_sentences",
        "http://g.example/7": "badwords",
    }
    assert [r["url"] for r in kept] == ["http://a.example/1"]
    assert kept[0]["text"] == shared and kept[0]["language"] == "en"
    # the shared three sentences survive exactly once, on the page with the smallest id
    assert sum(r["text"].count(EN[0]) for r in kept) == 1
    counters = res.stats["counters"]
    assert counters["c4_clean.line_javascript"] == 1 and counters["c4_clean.line_no_endmark"] >= 1
    assert counters["span_dedup.spans_cut"] >= 1
    assert res.stats["accounting"]["ok"]


def test_fast_badwords_matcher_agrees_with_the_regex_rule() -> None:
    words = c4.load_badwords(c4.default_badwords_path())
    rx, fast = c4.badwords_regex(words), c4.BadWordsMatcher(words)
    texts = [
        "a plain page about gardens.",
        "porn at the start",
        "ends with s&m",
        "the 2 girls 1 cup thing",
        "pornography-free zone",
        "a g-spot mention",
        "scunthorpe and essex are towns",
        "assessment of the class",
        "sex2 and xxx3",
        "twinkies",
    ]
    for t in texts:
        assert bool(rx.search(t)) == fast.search(t), t


# --- integration on the shared corpus (skipped when absent) -------------------------------------
@pytest.mark.corpus
def test_c4_rules_on_the_wet_sample_keep_only_english(corpus: Path) -> None:
    from llama_data.pipeline.warc import WetReader

    docs = [
        d
        for d in WetReader("c4").read_path(str(corpus / "commoncrawl" / "pages.warc.wet.gz"))
        if isinstance(d, Document)
    ]
    assert len(docs) >= 100
    steps = [c4.C4CleanStep(), c4.language_step(threshold=0.9), c4.BadWordsStep()]
    kept = [o for o in run_steps(steps, docs) if isinstance(o, Document)]
    assert kept and all(d.meta["language"] == "en" for d in kept)
    for d in kept:
        for line in d.text.split("\n"):
            assert line.endswith(c4.END_MARKS) and len(line.split()) >= 5
            assert "javascript" not in line.lower() and "{" not in line


@pytest.mark.corpus
@pytest.mark.slow
def test_from_cc_keeps_the_english_pages_of_the_wet_sample(corpus: Path, tmp_path: Path) -> None:
    """Issue #14 (defect 4): with the defaults, `c4 --from-cc` kept 1 of the sample's English
    pages (every other one failed 0.99 as a lid.176 score; C4's 0.99 is a langdetect
    probability)."""
    from llama_data.beam_jobs.c4 import make_c4_stage
    from llama_data.beam_jobs.harness import run_stage
    from llama_data.beam_jobs.runners import RunOptions

    wet = corpus / "commoncrawl" / "pages.warc.wet.gz"
    res = run_stage(
        make_c4_stage([str(wet)], from_cc=True), str(tmp_path / "out"), RunOptions(quiet=True)
    )
    kept = read_parquet_rows(tmp_path / "out" / "c4")
    assert res.stats["accounting"]["ok"]
    assert all(r["language"] == "en" for r in kept)
    assert len(kept) >= 20, res.stats["rejected"]
