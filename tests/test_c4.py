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


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("porn", True),
        ("(porn)", True),
        ("über-porn-seite", True),
        ("porn2", False),  # a digit is a word character for the reference's \\W
        ("porn_star", False),
        ("pornó", False),  # so is a non-ASCII letter
        ("2pornography", False),
        ("12 girls 1 cup", False),
        ("the 2 girls 1 cup thing", True),
    ],
)
def test_badwords_match_between_non_word_characters_as_the_reference(
    text: str, found: bool
) -> None:
    words = c4.load_badwords(c4.default_badwords_path())
    assert bool(c4.badwords_regex(words).search(text)) is found
    assert c4.BadWordsMatcher(words).search(text) is found


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


def test_citation_markers_are_removed_after_the_strip_as_in_the_reference() -> None:
    # "... end. [1]" loses its marker but keeps the space before it, so it no longer ends in a
    # period and is dropped (the reference does not strip the line again)
    res = clean(page("The river floods every spring and autumn too. [1]"))
    assert res.text == "\n".join(GOOD) and res.line_drops == {"line_no_endmark": 1}
    # a long word is tested before the markers go: "[1]" glued to it still counts
    res = clean(page("A word " + "x" * 998 + "[1] is far too long for any line."))
    assert res.line_drops == {"line_too_long_word": 1}


def test_blank_lines_are_skipped_without_a_counter() -> None:
    res = clean("\n\n".join(GOOD) + "\n   \n")
    assert res.text == "\n".join(GOOD) and res.line_drops == {}


def test_page_length_rule() -> None:
    step = c4.C4LengthStep(max_length=100)
    assert isinstance(step.process(Document("a", "c4", "x" * 100)), Document)
    out = step.process(Document("b", "c4", "x" * 101))
    assert isinstance(out, Rejected) and out.reason == "page_too_long"
    assert c4.MAX_PAGE_LENGTH == 190_000


# --- URL dedup ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("https://www.example.com/a/", "example.com/a"),
        ("http://example.com/a", "example.com/a"),
        ("http://example.com/a?utm_source=x&b=1", "example.com/a"),
        ("http://example.com/a?ref=home", "example.com/a"),
        ("http://example.com/a?feed=rss", "example.com/a"),
        ("http://example.com/a?page=2", "example.com/a?page=2"),
        ("http://example.com/go?to=https://www.other.org/", "example.com/go?to=other.org"),
    ],
)
def test_normalize_url_as_the_reference(url: str, normalized: str) -> None:
    assert c4.normalize_url(url) == normalized


def test_url_dedup_order_is_newest_first_then_smallest_id() -> None:
    def doc(doc_id: str, date: str, url: str = "http://example.com/a") -> Document:
        return Document(doc_id, "c4", "text", {"url": url, "date": date})

    old, new, new2 = (
        doc("a", "2019-04-18T10:00:00Z"),
        doc("z", "2019-04-25T12:57:54Z", "https://www.example.com/a/"),
        doc("y", "2019-04-25T12:57:54Z"),
    )
    assert c4.url_key(old) == c4.url_key(new) == c4.url_key(new2)
    assert min([old, new, new2], key=c4.newest_first) is new2  # newest, then smallest id
    assert min([old, doc("b", "")], key=c4.newest_first) is old
    # pages without a URL are never merged
    assert c4.url_key(doc("p", "", "")) != c4.url_key(doc("q", "", ""))


# --- line dedup ---------------------------------------------------------------------------------
LINE = "This exact sentence appears on more than one page of the crawl."


def test_line_dedup_keeps_a_line_on_the_page_with_the_smallest_url_md5() -> None:
    urls = ["http://a.example/1", "http://b.example/2", "http://c.example/3"]
    docs = [
        Document(f"d{i}", "c4", f"{GOOD[i]}\n{LINE.upper() if i == 1 else LINE}", {"url": u})
        for i, u in enumerate(urls)
    ]
    winner = min(range(3), key=lambda i: c4.url_rank(urls[i]))
    cuts = c4.dedup_lines(list(reversed(docs)))  # input order does not matter
    assert set(cuts) == {d.id for i, d in enumerate(docs) if i != winner}
    assert all(keys == {c4.line_key(LINE)} for keys in cuts.values())  # case-insensitive
    for i, d in enumerate(docs):
        out, cut = c4.apply_line_cuts(d, cuts.get(d.id, ()), min_sentences=1)
        assert isinstance(out, Document)
        assert out.text == (d.text if i == winner else GOOD[i])
        assert cut.global_duplicates == (0 if i == winner else 1)


def test_line_repeated_inside_a_page_is_kept_once() -> None:
    cut = c4.remove_lines(f"{GOOD[0]}\n{LINE}\n{GOOD[1]}\n{LINE}\n{GOOD[2]}", ())
    assert cut.text == "\n".join([GOOD[0], LINE, GOOD[1], GOOD[2]])
    assert (cut.global_duplicates, cut.local_duplicates) == (0, 1)


def test_page_emptied_or_short_after_line_dedup_is_rejected() -> None:
    doc = Document("a", "c4", f"{GOOD[0]}\n{LINE}", {"url": "u"})
    out, _ = c4.apply_line_cuts(doc, {c4.line_key(GOOD[0]), c4.line_key(LINE)})
    assert isinstance(out, Rejected) and out.reason == "dedup_empty"
    out, _ = c4.apply_line_cuts(doc, {c4.line_key(LINE)})
    assert isinstance(out, Rejected) and out.reason == "dedup_too_few_sentences"
    assert out.doc.meta["duplicate_lines"] == 1
    # an untouched page is not recounted
    out, _ = c4.apply_line_cuts(doc, ())
    assert out is doc


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
DE = "Der Ausschuss traf sich am Dienstag, um den neuen Haushalt zu besprechen."


def test_langdetect_keeps_english_at_099_and_names_why_it_rejects() -> None:
    step = c4.language_step()  # C4's: langdetect at 0.99
    assert isinstance(step, c4.LangDetectStep) and step.threshold == 0.99
    counters = LocalCounters()
    step.bind_counters(counters)
    step.setup()
    en = step.process(Document("en", "c4", page()))
    assert isinstance(en, Document) and en.meta["language"] == "en"
    assert en.meta["language_score"] >= 0.99
    de = step.process(Document("de", "c4", DE))
    assert isinstance(de, Rejected) and de.reason == "lang" and de.doc.meta["language"] == "de"
    assert de.doc.text == ""  # another language: kept without its text, as the ccnet stage does
    none = step.process(Document("num", "c4", "1234 5678 !!!"))
    assert isinstance(none, Rejected) and none.doc.meta["language"] is None
    assert counters["c4_lang.kept.en"] == 1
    assert counters["c4_lang.ignored_language.de"] == 1
    assert counters["c4_lang.exception"] == 1


def test_langdetect_is_deterministic() -> None:
    mixed = "Hello. Der Ausschuss traf sich am Dienstag. Bonjour à tous. Ciao a tutti."
    first = c4.detect_language(mixed)
    assert all(c4.detect_language(mixed) == first for _ in range(5))
    assert first.why == "low_confidence"


def test_lid176_is_an_option_with_its_calibrated_threshold() -> None:
    step = c4.language_step(model="lid176")
    assert step.min_score == c4.LID176_THRESHOLD
    out = step.process_batch([Document("en", "c4", page()), Document("de", "c4", DE)])
    assert isinstance(out[0], Document) and out[0].meta["language"] == "en"
    assert isinstance(out[1], Rejected) and out[1].reason == "lang"
    # lid.176 is less sure of whole pages than langdetect: the paper's 0.99 is not its scale
    assert out[0].meta["language_score"] < 0.99
    assert c4.language_step(model="lid176", threshold=0.5).min_score == 0.5
    with pytest.raises(ValueError, match="unknown language model"):
        c4.language_step(model="cld3")


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


def run_from_cc(tmp_path: Path, pages: list[tuple[str, str]], **rules) -> tuple[dict, list, dict]:
    from llama_data.beam_jobs.c4 import C4Rules, make_c4_stage
    from llama_data.beam_jobs.harness import run_stage
    from llama_data.beam_jobs.runners import RunOptions

    wet = tmp_path / "CC-MAIN-test.warc.wet.gz"
    write_wet(wet, pages)
    res = run_stage(
        make_c4_stage([str(wet)], from_cc=True, rules=C4Rules(**rules)),
        str(tmp_path / "out"),
        RunOptions(quiet=True),
    )
    kept = read_parquet_rows(tmp_path / "out" / "c4")
    rejected = {
        r["url"]: r["reason"] for r in read_parquet_rows(tmp_path / "out" / "c4" / "rejected")
    }
    assert res.stats["accounting"]["ok"]
    return res.stats, kept, rejected


SHARED_EN = " ".join(EN)
RULE_PAGES = [
    (
        "http://a.example/1",
        f"Menu | Home\n{SHARED_EN}\nPlease enable JavaScript in your browser to continue.\n"
        "We walked home along the old canal as the sun went down.",
    ),
    (
        "http://b.example/2",
        f"I have never seen such a beautiful sunset over the sea.\n{SHARED_EN}\n"
        "We stayed on the beach until it was dark outside.",
    ),
    (
        "http://c.example/3",
        f"{SHARED_EN}\nLorem ipsum dolor sit amet, consectetur adipiscing elit.",
    ),
    (
        "http://d.example/4",
        f"{SHARED_EN}\nThe function body starts with {{ and ends somewhere below.",
    ),
    (
        "http://e.example/5",
        "Der Ausschuss traf sich am Dienstag, um den Haushalt zu besprechen. Es gab viel Streit "
        "darüber. Am Ende stimmten alle zu.",
    ),
    ("http://f.example/6", "Only one sentence here with enough words."),
    (
        "http://g.example/7",
        "She said that she would like to watch porn with her friends.\n"
        "The weather was cold and grey for most of the week.\n"
        "Nobody expected the old bridge to be closed for repairs.",
    ),
    ("http://h.example/8", "A long page of words. " * 50),
]


@pytest.mark.slow
def test_from_cc_stage_applies_every_rule_and_dedups_lines(tmp_path: Path) -> None:
    ranks = {u: c4.url_rank(u) for u, _ in RULE_PAGES[:2]}
    assert ranks["http://a.example/1"] < ranks["http://b.example/2"]  # a keeps the shared line
    stats, kept, rejected = run_from_cc(tmp_path, RULE_PAGES, max_page_length=1000)
    assert rejected == {
        "http://b.example/2": "dedup_too_few_sentences",  # left with two lines, two sentences
        "http://c.example/3": "lorem_ipsum",
        "http://d.example/4": "curly_bracket",
        "http://e.example/5": "lang",
        "http://f.example/6": "too_few_sentences",
        "http://g.example/7": "badwords",
        "http://h.example/8": "page_too_long",
    }
    assert [r["url"] for r in kept] == ["http://a.example/1"]
    assert (
        kept[0]["text"] == f"{SHARED_EN}\nWe walked home along the old canal as the sun went down."
    )
    assert kept[0]["language"] == "en" and kept[0]["language_score"] >= 0.99
    counters = stats["counters"]
    assert counters["c4_clean.line_javascript"] == 1 and counters["c4_clean.line_no_endmark"] >= 1
    assert counters["line_dedup.global_duplicate"] == 1


@pytest.mark.slow
def test_from_cc_stage_keeps_the_newest_page_of_a_url(tmp_path: Path) -> None:
    from llama_data.beam_jobs.c4 import C4Rules, make_c4_stage
    from llama_data.beam_jobs.harness import run_stage
    from llama_data.beam_jobs.runners import RunOptions

    wet = tmp_path / "CC-MAIN-test.warc.wet.gz"
    wet.write_bytes(
        wet_record("http://example.com/a", "\n".join(EN), "2019-04-18T10:00:00Z")
        + wet_record("https://www.example.com/a/", "\n".join(GOOD), "2019-04-25T12:57:54Z")
    )
    res = run_stage(
        make_c4_stage([str(wet)], from_cc=True, rules=C4Rules()),
        str(tmp_path / "out"),
        RunOptions(quiet=True),
    )
    kept = read_parquet_rows(tmp_path / "out" / "c4")
    rejected = read_parquet_rows(tmp_path / "out" / "c4" / "rejected")
    assert [r["url"] for r in kept] == ["https://www.example.com/a/"]
    assert [(r["url"], r["reason"]) for r in rejected] == [
        ("http://example.com/a", "duplicate_url")
    ]
    assert res.stats["rejected"] == {"duplicate_url": 1}


@pytest.mark.slow
def test_from_cc_stage_span_dedup_is_an_option(tmp_path: Path) -> None:
    pages = [
        ("http://a.example/1", f"Menu | Home\n{SHARED_EN}"),
        (
            "http://b.example/2",
            f"I have never seen such a beautiful sunset over the sea. {SHARED_EN}\n"
            "We stayed on the beach until it was dark outside.",
        ),
    ]
    stats, kept, rejected = run_from_cc(tmp_path, pages, text_dedup="spans")
    # b's page shares a's three sentences inside a longer line: a line dedup keeps it whole,
    # the span dedup cuts the span from b (the larger id) and leaves it two sentences
    assert rejected == {"http://b.example/2": "dedup_too_few_sentences"}
    assert [r["text"] for r in kept] == [SHARED_EN]
    assert stats["counters"]["span_dedup.spans_cut"] >= 1


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
        "porn_star and porn2 and pornó",
        "(porn)",
        "a\\nporn\\n",
        "über-porn-seite",
        "s&m.",
        "xs&m",
        "2 girls 1 cup!",
        "12 girls 1 cup",
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


@pytest.mark.corpus
def test_lid176_calibrated_threshold_agrees_with_langdetect_on_the_sample(corpus: Path) -> None:
    """The calibration of `LID176_THRESHOLD` (docs/c4.md, "Language"): on every page of the
    Common Crawl sample (WET and WARC) that the rules and the line dedup leave, lid.176 at the
    threshold keeps exactly the pages langdetect keeps at 0.99."""
    from llama_data.pipeline.warc import WarcReader, WetReader

    lid = c4.language_step(model="lid176")
    compared = 0
    for name, reader in (("pages.warc.wet.gz", WetReader), ("pages.warc.gz", WarcReader)):
        docs = [
            d
            for d in reader("c4").read_path(str(corpus / "commoncrawl" / name))
            if isinstance(d, Document)
        ]
        cleaned = [
            o
            for o in run_steps([c4.C4LengthStep(), c4.C4CleanStep()], docs)
            if isinstance(o, Document)
        ]
        cuts = c4.dedup_lines(cleaned)
        pages = [c4.apply_line_cuts(d, cuts.get(d.id, ()))[0] for d in cleaned]
        pages = [p for p in pages if isinstance(p, Document)]
        for p, out in zip(pages, lid.process_batch(pages), strict=True):
            assert (c4.detect_language(p.text).why is None) == isinstance(out, Document), p.id
            compared += 1
    assert compared >= 200


def test_line_keys_of_a_page_are_each_lines_key() -> None:
    """`line_keys_of` hashes a page at a time; it must give `line_key` of each line (final
    sigma at line ends, lengthening case changes, whitespace control characters, CR LF)."""
    from llama_data.pipeline.c4.dedup import line_key, line_keys_of

    texts = [
        "",
        "\n",
        "ΟΔΟΣ\nΣ\nαΣ\nΣα ΑΣ.",
        " \x1c a \x1c\n\x85x\x85 ",
        "İstanbul\nǅ ß ﬃ",
        "\r\n\r\nz\r",
        f"{GOOD[0]}\n  {GOOD[1].upper()}  \n\n{GOOD[2]}",
    ]
    for text in texts:
        assert line_keys_of(text) == [line_key(line) for line in text.split("\n")], repr(text)
