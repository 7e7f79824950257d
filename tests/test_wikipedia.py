"""Wikipedia: dump reading (bz2, multistream splits, plain XML, UTF-16), cleaning, filters, stage.

Fixtures are MediaWiki export-0.10 dumps written here, in tmp_path, the way Wikimedia writes them
(siteinfo, then pages; multistream = a header stream, streams of pages, a footer stream, and an
`offset:page_id:title` index).
"""

from __future__ import annotations

import bz2
import codecs
import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from html.entities import html5
from pathlib import Path
from xml.sax.saxutils import escape

import pyarrow.parquet as pq
import pytest

from llama_data.pipeline.document import DeadLetter, Document, Rejected
from llama_data.pipeline.io import local_open
from llama_data.pipeline.steps import LocalCounters, run_steps
from llama_data.pipeline.wikipedia import (
    CleanWikitext,
    WikipediaPageFilter,
    WikipediaReader,
    WikitextCleaner,
    is_disambiguation,
    iter_pages,
)
from llama_data.pipeline.wikipedia.reader import (
    group_offsets,
    index_path_for,
    scan_stream_offsets,
)

REPO = Path(__file__).resolve().parents[1]

ARTICLE = """{{Infobox beverage
| name = Mead
| image = Mead.jpg
| abv = 3.5–20%
}}
'''Mead''' ({{IPA|/miːd/}}) is an [[alcoholic drink]] made by [[fermentation|fermenting]] [[honey]]
with water.<ref name="a">{{cite book|title=Honey|year=1999}}</ref> It is one of the oldest drinks.<ref>Smith, p. 4</ref>
<!-- editors: keep this short -->
__NOTOC__
[[File:Mead.jpg|thumb|A glass of [[mead]]]]

== History ==
Mead was drunk in [[Ancient Greece]] and by the [[Vikings]].{{citation needed|date=May 2020}}

=== Types ===
* Sack mead, a sweet variety
* [[Melomel]], made with fruit
# first numbered item

{| class="wikitable"
! Type !! Sweetness
|-
| Sack || high
|}

== References ==
<references />

== External links ==
* [https://example.org/mead The mead page]

[[Category:Fermented drinks]]
[[de:Met (Getränk)]]
[[uk:Медовуха]]
"""

UK_ARTICLE = """'''Київ''' — столиця [[Україна|України]].<ref>Джерело</ref>
[[Файл:Kyiv.jpg|міні|Київ]]
== Історія ==
Місто засноване в V столітті.
[[Категорія:Міста України]]
"""


def page_xml(
    page_id: int,
    title: str,
    text: str,
    ns: int = 0,
    redirect: str | None = None,
    rev_id: int | None = None,
) -> str:
    red = f'    <redirect title="{escape(redirect, {chr(34): "&quot;"})}" />\n' if redirect else ""
    return (
        "  <page>\n"
        f"    <title>{escape(title)}</title>\n"
        f"    <ns>{ns}</ns>\n"
        f"    <id>{page_id}</id>\n"
        f"{red}"
        "    <revision>\n"
        f"      <id>{rev_id or page_id * 100}</id>\n"
        f"      <parentid>{(rev_id or page_id * 100) - 1}</parentid>\n"
        "      <timestamp>2023-05-01T12:00:00Z</timestamp>\n"
        "      <contributor><username>Editor</username><id>7</id></contributor>\n"
        "      <model>wikitext</model>\n"
        "      <format>text/x-wiki</format>\n"
        f'      <text bytes="{len(text.encode())}" xml:space="preserve">{escape(text)}</text>\n'
        "      <sha1>abc</sha1>\n"
        "    </revision>\n"
        "  </page>\n"
    )


EN_NAMESPACES = {1: "Talk", 6: "File", 14: "Category"}


def header(
    dbname: str = "enwiki", lang: str = "en", namespaces: dict[int, str] | None = None
) -> str:
    names = "".join(
        f'      <namespace key="{key}" case="first-letter">{escape(name)}</namespace>\n'
        for key, name in (namespaces or EN_NAMESPACES).items()
    )
    return (
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="0.10" '
        f'xml:lang="{lang}">\n'
        "  <siteinfo>\n"
        "    <sitename>Wikipedia</sitename>\n"
        f"    <dbname>{dbname}</dbname>\n"
        f"    <base>https://{lang}.wikipedia.org/wiki/Main_Page</base>\n"
        "    <generator>MediaWiki 1.41.0-wmf.6</generator>\n"
        "    <case>first-letter</case>\n"
        "    <namespaces>\n"
        '      <namespace key="0" case="first-letter" />\n'
        f"{names}"
        "    </namespaces>\n"
        "  </siteinfo>\n"
    )


FOOTER = "</mediawiki>\n"


def en_pages() -> list[str]:
    return [
        page_xml(
            10,
            "AccessibleComputing",
            "#REDIRECT [[Computer accessibility]]",
            redirect="Computer accessibility",
        ),
        page_xml(12, "Mead", ARTICLE),
        page_xml(
            13, "Mercury", "'''Mercury''' may refer to:\n* [[Mercury (planet)]]\n{{disambiguation}}"
        ),
        page_xml(14, "Talk:Mead", "Is mead beer? ~~~~", ns=1),
        page_xml(
            15, "Honey", "'''Honey''' is a sweet substance made by [[bee]]s.\n\nIt keeps for years."
        ),
        page_xml(
            16,
            "Broken",
            "Start {{unclosed template [[link without end\n\nSecond paragraph survives.",
        ),
    ]


def write_dump(
    path: Path,
    pages: list[str],
    dbname: str = "enwiki",
    lang: str = "en",
    namespaces: dict[int, str] | None = None,
) -> Path:
    xml = header(dbname, lang, namespaces) + "".join(pages) + FOOTER
    data = xml.encode("utf-8")
    if path.name.endswith(".bz2"):
        data = bz2.compress(data)
    path.write_bytes(data)
    return path


def write_multistream(
    path: Path, pages: list[str], per_stream: int = 2, dbname: str = "enwiki", lang: str = "en"
) -> Path:
    """Header stream, streams of `per_stream` pages, footer stream; plus the -index.txt.bz2."""
    out = [bz2.compress(header(dbname, lang).encode())]
    offset = len(out[0])
    index = []
    for i in range(0, len(pages), per_stream):
        group = pages[i : i + per_stream]
        for p in group:
            pid = p.split("<id>", 1)[1].split("</id>", 1)[0]
            title = p.split("<title>", 1)[1].split("</title>", 1)[0]
            index.append(f"{offset}:{pid}:{title}\n")
        stream = bz2.compress("".join(group).encode())
        out.append(stream)
        offset += len(stream)
    out.append(bz2.compress(FOOTER.encode()))
    path.write_bytes(b"".join(out))
    idx = index_path_for(str(path))
    assert idx is not None
    Path(idx).write_bytes(bz2.compress("".join(index).encode()))
    return path


def all_items(reader: WikipediaReader, path: Path) -> list[Document | DeadLetter]:
    out: list[Document | DeadLetter] = []
    for split in reader.splits(str(path), path.stat().st_size, local_open):
        out.extend(reader.read(split, local_open))
    return out


def clean(text: str, lang: str = "en", title: str = "") -> str:
    return WikitextCleaner(lang).clean(text, title)


# ---------------------------------------------------------------------------------------------
# Dump reading


def test_iter_pages_reads_siteinfo_and_page_fields(tmp_path: Path) -> None:
    # The file name says "jawiki"; the language comes from siteinfo, which says ukwiki.
    path = write_dump(
        tmp_path / "jawiki-latest.xml", [page_xml(7, "Київ", UK_ARTICLE)], "ukwiki", "uk"
    )
    with path.open("rb") as f:
        (page,) = list(iter_pages(f, path=str(path)))
    assert not isinstance(page, DeadLetter)
    assert (page.title, page.ns, page.page_id, page.revision_id) == ("Київ", 0, 7, 700)
    assert page.timestamp == "2023-05-01T12:00:00Z"
    assert page.lang == "uk" and page.dbname == "ukwiki"
    assert page.base_url == "https://uk.wikipedia.org/wiki/Main_Page"
    assert page.url == "https://uk.wikipedia.org/wiki/%D0%9A%D0%B8%D1%97%D0%B2"
    assert page.wikitext == UK_ARTICLE and not page.redirect


def test_redirect_pages_are_marked(tmp_path: Path) -> None:
    path = write_dump(tmp_path / "enwiki.xml.bz2", en_pages())
    pages = [p for p in WikipediaReader().read_path(str(path))]
    assert all(isinstance(p, Document) for p in pages)
    by_id = {p.id: p for p in pages}
    assert by_id["enwiki/10"].meta["redirect"] is True
    assert by_id["enwiki/10"].meta["redirect_target"] == "Computer accessibility"
    assert by_id["enwiki/12"].meta["redirect"] is False
    assert by_id["enwiki/14"].meta["ns"] == 1


def test_multistream_splits_by_index_and_by_scanning_agree(tmp_path: Path) -> None:
    pages = [page_xml(100 + i, f"Page {i}", f"Text of page {i}. " * 40) for i in range(30)]
    path = write_multistream(
        tmp_path / "enwiki-20230501-pages-articles-multistream.xml.bz2", pages, 3
    )
    whole = [d.id for d in WikipediaReader(split_bytes=1 << 30).read_path(str(path))]
    assert len(whole) == 30
    for use_index in (True, False):
        reader = WikipediaReader(split_bytes=400, use_index=use_index)
        splits = reader.splits(str(path), path.stat().st_size, local_open)
        assert len(splits) > 3
        assert splits[0].start == 0 and splits[-1].end is None
        assert all(a.end == b.start for a, b in zip(splits, splits[1:], strict=False))
        items = all_items(reader, path)
        assert all(isinstance(d, Document) for d in items)
        assert sorted(d.id for d in items) == sorted(whole)  # each page exactly once


def test_index_given_explicitly(tmp_path: Path, monkeypatch) -> None:
    from llama_data.pipeline.wikipedia import reader as reader_mod

    pages = [page_xml(100 + i, f"Page {i}", f"Text {i}. " * 40) for i in range(12)]
    path = write_multistream(
        tmp_path / "enwiki-20230501-pages-articles-multistream.xml.bz2", pages, 2
    )
    index = Path(index_path_for(str(path)) or "")
    moved = tmp_path / "indexes" / index.name
    moved.parent.mkdir()
    index.rename(moved)

    def no_scan(stream):
        raise AssertionError("scanned although the index was given")

    monkeypatch.setattr(reader_mod, "scan_stream_offsets", no_scan)
    reader = WikipediaReader(split_bytes=300, index_paths=[str(moved)])
    splits = reader.splits(str(path), path.stat().st_size, local_open)
    assert len(splits) > 2
    assert sorted(d.id for d in all_items(reader, path)) == sorted(
        f"enwiki/{100 + i}" for i in range(12)
    )


def test_streams_cut_mid_page_like_pbzip2(tmp_path: Path) -> None:
    """pbzip2/lbzip2 cut streams at arbitrary bytes: a page may span two splits."""
    pages = [page_xml(i, f"P{i}", f"Text {i} " * 60) for i in range(1, 41)]
    xml = (header() + "".join(pages) + FOOTER).encode()
    cuts = range(0, len(xml), 777)  # not aligned with anything
    path = tmp_path / "enwiki-pbzip2.xml.bz2"
    path.write_bytes(b"".join(bz2.compress(xml[c : c + 777]) for c in cuts))
    reader = WikipediaReader(split_bytes=2000)
    splits = reader.splits(str(path), path.stat().st_size, local_open)
    assert len(splits) > 4
    items = all_items(reader, path)
    assert all(isinstance(i, Document) for i in items), [
        i for i in items if isinstance(i, DeadLetter)
    ]
    assert sorted(int(d.id.split("/")[1]) for d in items) == list(range(1, 41))


def test_stream_scan_finds_every_stream(tmp_path: Path) -> None:
    pages = [page_xml(i, f"P{i}", "x " * 50) for i in range(1, 9)]
    path = write_multistream(tmp_path / "x-multistream.xml.bz2", pages, 2)
    with path.open("rb") as f:
        offsets = scan_stream_offsets(f)
    index = bz2.decompress(Path(index_path_for(str(path)) or "").read_bytes()).decode()
    from_index = sorted({int(line.split(":")[0]) for line in index.splitlines()})
    assert offsets[0] == 0
    assert from_index == offsets[1:-1]  # header stream and footer stream are not in the index
    assert group_offsets(offsets, 10**9, 1) == [
        *zip(offsets[:-1], offsets[1:], strict=True),
        (offsets[-1], None),
    ]


def test_plain_xml_byte_ranges_take_each_page_once(tmp_path: Path) -> None:
    pages = [page_xml(i, f"P{i}", "word " * (20 + i)) for i in range(1, 25)]
    path = write_dump(tmp_path / "enwiki.xml", pages)
    path.write_bytes(codecs.BOM_UTF8 + path.read_bytes())  # offsets must count the BOM
    reader = WikipediaReader(split_bytes=700)
    splits = reader.splits(str(path), path.stat().st_size, local_open)
    assert len(splits) > 5
    ids = [d.id for d in all_items(reader, path)]
    assert sorted(ids) == sorted(f"enwiki/{i}" for i in range(1, 25))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be-bom"])
def test_utf16_with_bom(tmp_path: Path, encoding: str) -> None:
    xml = header("ukwiki", "uk") + page_xml(7, "Київ", UK_ARTICLE) + FOOTER
    xml = xml.replace("<mediawiki", '<?xml version="1.0" encoding="UTF-16"?>\n<mediawiki', 1)
    data = xml.encode("utf-16") if encoding == "utf-16" else b"\xfe\xff" + xml.encode("utf-16-be")
    path = tmp_path / "ukwiki.xml"
    path.write_bytes(data)
    reader = WikipediaReader(split_bytes=64)
    assert len(reader.splits(str(path), path.stat().st_size, local_open)) == 1
    (doc,) = list(reader.read_path(str(path)))
    assert isinstance(doc, Document)
    assert doc.meta["title"] == "Київ" and doc.text == UK_ARTICLE


# ---------------------------------------------------------------------------------------------
# Bad input


def test_truncated_bz2_keeps_complete_pages_and_reports(tmp_path: Path) -> None:
    pages = [page_xml(i, f"P{i}", os.urandom(3000).hex()) for i in range(1, 40)]
    # 100 kB bz2 blocks, so that the cut leaves whole blocks (and pages) before it
    data = bz2.compress((header() + "".join(pages) + FOOTER).encode(), 1)
    cut = tmp_path / "enwiki-cut.xml.bz2"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    items = list(WikipediaReader().read_path(str(cut)))
    docs = [d for d in items if isinstance(d, Document)]
    dead = [d for d in items if isinstance(d, DeadLetter)]
    assert 5 < len(docs) < 39
    assert [d.id for d in docs] == [f"enwiki/{i}" for i in range(1, len(docs) + 1)]
    assert [d.reason for d in dead] == ["truncated_stream"]


def test_xml_cut_mid_page(tmp_path: Path) -> None:
    xml = header() + page_xml(1, "A", "alpha") + page_xml(2, "B", "beta")
    path = tmp_path / "enwiki.xml"
    path.write_text(xml[: len(xml) - 60], encoding="utf-8")
    items = list(WikipediaReader().read_path(str(path)))
    assert isinstance(items[0], Document) and items[0].id == "enwiki/1"
    assert isinstance(items[1], DeadLetter) and items[1].reason == "truncated_page"
    assert len(items) == 2


def test_bad_page_xml_costs_that_page_only(tmp_path: Path) -> None:
    bad = page_xml(2, "B", "beta").replace("</title>", "</titel>")
    path = write_dump(
        tmp_path / "enwiki.xml.bz2", [page_xml(1, "A", "a"), bad, page_xml(3, "C", "c")]
    )
    items = list(WikipediaReader().read_path(str(path)))
    assert [getattr(i, "id", None) for i in items] == ["enwiki/1", None, "enwiki/3"]
    assert isinstance(items[1], DeadLetter)
    assert items[1].reason == "bad_page_xml" and items[1].record_id == "2"


@pytest.mark.parametrize("size", [1, 5, 6, 7, 64, 1000])
def test_pages_found_whatever_the_chunk_boundaries(size: int) -> None:
    xml = (header() + "".join(en_pages()) + FOOTER).encode()
    chunks = [xml[i : i + size] for i in range(0, len(xml), size)]
    items = list(iter_pages(chunks))
    assert [getattr(i, "page_id", None) for i in items] == [10, 12, 13, 14, 15, 16]


def test_oversized_page_is_skipped_and_reading_resyncs(monkeypatch) -> None:
    from llama_data.pipeline.wikipedia import dump

    monkeypatch.setattr(dump, "MAX_PAGE_BYTES", 3000)
    xml = (
        header()
        + page_xml(1, "A", "a")
        + page_xml(2, "Big", "b" * 10000)
        + page_xml(3, "C", "c")
        + FOOTER
    ).encode()
    chunks = [xml[i : i + 500] for i in range(0, len(xml), 500)]
    items = list(iter_pages(chunks, path="x.xml"))
    assert [type(i).__name__ for i in items] == ["WikiPage", "DeadLetter", "WikiPage"]
    assert items[1].reason == "page_too_large"
    assert [i.page_id for i in items if not isinstance(i, DeadLetter)] == [1, 3]


def test_entity_expansion_attack_is_refused(tmp_path: Path) -> None:
    lol = "".join(
        f'  <!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">\n' for i in range(1, 10)
    )
    xml = (
        '<?xml version="1.0"?>\n<!DOCTYPE mediawiki [\n  <!ENTITY lol0 "lol">\n'
        + lol
        + "]>\n"
        + header()
        + page_xml(1, "A", "x").replace(">x<", ">&lol9;<")
        + FOOTER
    )
    path = tmp_path / "enwiki.xml"
    path.write_text(xml, encoding="utf-8")
    started = time.perf_counter()
    items = list(WikipediaReader().read_path(str(path)))
    assert time.perf_counter() - started < 5
    assert len(items) == 1 and isinstance(items[0], DeadLetter)
    assert items[0].reason == "xml_dtd_forbidden"


def test_not_a_dump(tmp_path: Path) -> None:
    path = tmp_path / "x.xml"
    path.write_text("<html><body>hello</body></html>")
    (item,) = list(WikipediaReader().read_path(str(path)))
    assert isinstance(item, DeadLetter) and item.reason == "no_siteinfo"


def test_broken_wikitext_is_a_dead_letter_when_the_parser_fails(monkeypatch) -> None:
    import mwparserfromhell

    docs = [
        Document("enwiki/1", "wikipedia", "'''A''' is fine.", {"title": "A", "lang": "en"}),
        Document("enwiki/2", "wikipedia", "{{boom", {"title": "B", "lang": "en"}),
        Document("enwiki/3", "wikipedia", "'''C''' is fine.", {"title": "C", "lang": "en"}),
    ]
    real = mwparserfromhell.parse

    def parse(text, *a, **kw):
        if text.startswith("{{boom"):
            raise mwparserfromhell.parser.ParserError("internal tokenizer failure")
        return real(text, *a, **kw)

    monkeypatch.setattr(mwparserfromhell, "parse", parse)
    out = list(run_steps([CleanWikitext()], docs))
    assert isinstance(out[0], Document) and out[0].text == "A\n\nA is fine."
    assert isinstance(out[1], DeadLetter) and out[1].reason == "bad_wikitext"
    assert out[1].record_id == "enwiki/2"
    assert isinstance(out[2], Document)


# ---------------------------------------------------------------------------------------------
# Cleaning


def test_cleaner_on_a_full_article() -> None:
    text = clean(ARTICLE, title="Mead")
    lines = text.split("\n")
    assert lines[0] == "Mead" and lines[1] == ""
    assert lines[2].startswith("Mead is an alcoholic drink made by fermenting honey with water. It")
    assert "It is one of the oldest drinks." in text
    for gone in (
        "Infobox", "IPA", "cite", "Smith", "editors", "NOTOC", "Mead.jpg", "A glass of",
        "wikitable", "Sweetness", "Sack ||", "Category", "Fermented drinks", "Met (Getränk)",
        "Медовуха", "citation needed", "[[", "]]", "{{", "}}", "<ref", "'''",
    ):  # fmt: skip
        assert gone not in text, gone
    assert "\n\nHistory\nMead was" in text and "\n\nTypes\nSack" in text  # headings as lines
    assert "Mead was drunk in Ancient Greece and by the Vikings." in text
    assert "\nSack mead, a sweet variety\nMelomel, made with fruit\nfirst numbered item" in text
    assert "References" not in text  # a section left empty is dropped with its heading
    assert text.endswith("External links\nThe mead page")


@pytest.mark.parametrize(
    ("wikitext", "expected"),
    [
        ("[[Paris]] is big.", "Paris is big."),
        ("[[Paris|the capital]] is big.", "the capital is big."),
        ("[[bee]]s fly.", "bees fly."),
        ("[[Paris (band)|]] played.", "Paris played."),
        ("See [[:Category:Drinks|the drinks]].", "See the drinks."),
        ("A {{nowrap|long line}} here.", "A long line here."),
        ("In French {{lang|fr|le miel}}.", "In French le miel."),
        ("Text<ref>note</ref> more<ref name=x/>.", "Text more."),
        ("One<br/>two", "One\ntwo"),
        ("soft\nbreak\n\nnew paragraph", "soft break\n\nnew paragraph"),
        ("Intro:\n* a\n* b\nAfter the list", "Intro:\na\nb\nAfter the list"),
        ("; Term\n: definition", "Term\ndefinition"),
        ("A &amp; B &ndash; C", "A & B – C"),
        ("Before <!-- hidden --> after", "Before after"),
        ("<gallery>\nA.jpg|cap\n</gallery>\nAfter", "After"),
        ("x <math>e^{i\\pi}</math> y", "x y"),
        ("__TOC__\nBody", "Body"),
        ("Link [https://a.org A site] and [https://b.org]", "Link A site and"),
        (
            "<syntaxhighlight lang=c>\n#include <stdio.h>\n  y = a''b;\n</syntaxhighlight>",
            "#include <stdio.h>\n  y = a''b;",
        ),
    ],
)
def test_cleaner_constructs(wikitext: str, expected: str) -> None:
    assert clean(wikitext) == expected


def test_cleaner_localized_namespaces() -> None:
    text = clean(UK_ARTICLE, lang="uk", title="Київ")
    assert text.startswith("Київ\n\nКиїв — столиця України.")
    assert "Файл" not in text and "Категорія" not in text and "Джерело" not in text
    assert "\nІсторія\nМісто засноване в V столітті." in text


def test_cleaner_survives_unbalanced_markup() -> None:
    text = clean("Start {{unclosed template [[link without end\n\nSecond paragraph survives.")
    assert "Second paragraph survives." in text
    assert "{{" not in text and "[[" not in text


# Leftovers of issue #14 (defect 6): entities, URLs, category and interlanguage link text.


@pytest.mark.parametrize(
    ("wikitext", "expected"),
    [
        # entities in link targets and labels, named / decimal / hex; no-break space -> " "
        ("the Unix-based [[OS&nbsp;X]] system", "the Unix-based OS X system"),
        ("[[Mac OS X|OS&nbsp;X]] ships", "OS X ships"),
        ("35&#160;mm and 70&#xA0;mm film", "35 mm and 70 mm film"),
        ("The [[Kruskal&ndash;Wallis test]] is", "The Kruskal–Wallis test is"),
        ("Перевірено\u00a0— мін немає", "Перевірено — мін немає"),  # the character itself
        ("and&nbsp;... the first", "and ... the first"),  # an intended space stays one
        ("rock &apos;n&apos; roll&hellip;", "rock 'n' roll…"),  # HTML5-only names too
        ("x&#9;y&#10;z", "x y z"),
        # decoded characters are text, never markup parsed or tidied afterwards
        ("Write &lt;ref&gt;note&lt;/ref&gt; here", "Write <ref>note</ref> here"),
        ("A &lt;br&gt; tag", "A <br> tag"),
        (
            "&#91;&#91;not a link&#93;&#93; and &#123;&#123;x&#125;&#125;",
            "[[not a link]] and {{x}}",
        ),
        ("&#39;&#39;not italic&#39;&#39; &#95;_TOC_&#95;", "''not italic'' __TOC__"),
        ("Eagle{{'}}s ascent", "Eagle's ascent"),
        # decoded once: `&amp;nbsp;` shows "&nbsp;" on the site
        ("write &amp;nbsp; for a space", "write &nbsp; for a space"),
        ("AT&T; &foo; stay", "AT&T; &foo; stay"),  # not entities: shown as written
        ("bad&#0;&#xD800;&#x110000; refs", "bad refs"),  # invalid code points: dropped
        ("x <nowiki>[[a]] &amp; ''b''</nowiki> y", "x [[a]] & ''b'' y"),
        ("<pre>a &amp;&nbsp;b</pre>", "a &\u00a0b"),
        ("<syntaxhighlight lang=html>a &amp; b</syntaxhighlight>", "a &amp; b"),
    ],
)
def test_cleaner_decodes_entities_as_text(wikitext: str, expected: str) -> None:
    assert clean(wikitext) == expected


@pytest.mark.parametrize(
    ("wikitext", "expected"),
    [
        ("Link [https://a.org A site] and [https://b.org].", "Link A site and."),
        ("from the public domain site http://oceanographer.navy.mil/atlantic.html", (
            "from the public domain site")),
        ("Mail mailto:info@example.org or ftp://x.org/f.txt today", "Mail or today"),
        ("* http://example.org\n* https://www.youtube.com/watch?v=Y_AOhcMA4dQ\n* Real item",
         "Real item"),
        ("*http://projekt.ht.lu.se/rwaai RWAAI (Repository)", "RWAAI (Repository)"),
        # MediaWiki ends a bracketed URL at any Unicode space, mwparserfromhell only at ASCII
        ("[https://www.academia.edu/21621713\u00a0Незвичайний позитивіст]",
         "Незвичайний позитивіст"),
        ("[https://hrw.org/report\u3000Human Rights Watch]", "Human Rights Watch"),
        ("С. 863—892. <nowiki>https://www.academia.edu/21621713</nowiki>", "С. 863—892."),
        ("<syntaxhighlight lang=sh>curl https://x.org</syntaxhighlight>", "curl https://x.org"),
        ("See //example.org for more", "See //example.org for more"),  # not a link in MediaWiki
    ],
)  # fmt: skip
def test_cleaner_drops_urls(wikitext: str, expected: str) -> None:
    assert clean(wikitext) == expected


def test_external_links_section_keeps_only_labels() -> None:
    text = clean(
        "Body.\n\n== External links ==\n* http://example.org\n"
        "* [http://x.org/a The A page]\n* [http://x.org/b]\n* https://example.org/c\n"
    )
    assert text == "Body.\n\nExternal links\nThe A page"


@pytest.mark.parametrize(
    ("lang", "wikitext", "expected"),
    [
        # category and file links in the wiki's own language are not text
        ("de", "Text.\n[[Kategorie:Getränk]]\n[[Datei:Met.jpg|mini|Ein Glas]]", "Text."),
        ("fr", "Texte [[Fichier:Mead.jpg|vignette|Un verre]] suite.", "Texte suite."),
        ("uk", "Текст.[[Файл:Kyiv.jpg|міні|Київ]] [[Зображення:K.png]]", "Текст."),
        # an inline (colon) link to a category shows its name, never the namespace
        ("uk", "Дивись також [[:Категорія:Народились 1944]]", "Дивись також Народились 1944"),
        ("ja", "[[:Category:パリを舞台とした作品|カテゴリ:パリを舞台とした作品]]",
         "パリを舞台とした作品"),
        ("en", "See [[:Category:Drinks|the drinks]].", "See the drinks."),
        ("en", "A map: [[:File:Map.png]] and [[:File:Map.png|the map]].", "A map: and the map."),
        ("en", "Hear [[Media:Anthem.ogg|the anthem]][[Media:Other.ogg]].", "Hear the anthem."),
        # interlanguage links: sidebar links, with or without a label, any case
        ("en", "Text.\n[[de:Met (Getränk)]]\n[[uk:Медовуха]]\n[[zh-min-nan:Bit]]", "Text."),
        ("en", "Text.[[fr:Hydromel|Hydromel]][[De:Met]][[simple:Mead]]", "Text."),
        # inline interlanguage links show the page name without the language prefix
        ("ja", "グレイ（[[:en:Louis Herbert Gray]]）は", "グレイ（Louis Herbert Gray）は"),
        ("ja", "[[:de:Kategorie:Österreichische Sprache|Kategorie:Österreichische Sprache]] - 集",
         "Österreichische Sprache - 集"),
        ("ja", "（[[:en:Category:Geography of Oceania]]）", "（Geography of Oceania）"),
        ("ja", "[[:en:Vocative case#English|O]]", "O"),
        # interwiki prefixes that are not languages render as text
        ("en", "[[wikt:mead|mead]] and [[doi:10.1038/8964]]", "mead and doi:10.1038/8964"),
    ],
)  # fmt: skip
def test_cleaner_namespace_and_interlanguage_links(lang: str, wikitext: str, expected: str) -> None:
    assert clean(wikitext, lang=lang) == expected


KO_NAMESPACES = {-2: "미디어", 1: "토론", 4: "위키백과", 6: "파일", 14: "분류", 100: "포털"}
KO_ARTICLE = """'''서울'''은 [[대한민국]]의 수도이다.
[[파일:Seoul.jpg|섬네일|서울의 야경]]
== 역사 ==
서울은 오래된 도시이다. [[:분류:대한민국의 도시]]도 보라.
[[분류:대한민국의 도시]]
[[en:Seoul]]
"""


def test_cleaner_takes_namespace_names_from_siteinfo() -> None:
    # Korean is in no built-in table: only the dump's <siteinfo> knows 분류 (14) and 파일 (6).
    text = WikitextCleaner("ko", KO_NAMESPACES).clean(KO_ARTICLE, "서울")
    assert (
        text
        == "서울\n\n서울은 대한민국의 수도이다.\n\n역사\n서울은 오래된 도시이다. 대한민국의 도시도 보라."
    )
    without = WikitextCleaner("ko").clean(KO_ARTICLE, "서울")
    assert "분류:대한민국의 도시" in without and "서울의 야경" in without
    # keys as JSON strings (meta that went through a file) work the same
    as_json = {str(k): v for k, v in KO_NAMESPACES.items()}
    assert WikitextCleaner("ko", as_json).clean(KO_ARTICLE, "서울") == text


def test_language_code_that_names_a_namespace_is_not_interlanguage() -> None:
    # `[[xx:...]]` is interlanguage only when xx is no namespace of this wiki.
    assert clean("See [[Es:Foo]].") == "See."
    assert WikitextCleaner("en", {100: "Es"}).clean("See [[Es:Foo]].") == "See Es:Foo."


def test_siteinfo_namespaces_flow_from_dump_to_cleaner(tmp_path: Path) -> None:
    dump = write_dump(
        tmp_path / "kowiki.xml.bz2",
        [
            page_xml(3, "서울", KO_ARTICLE),
            page_xml(4, "토론:서울", "토론 문서", ns=1),
            page_xml(5, "분류:대한민국의 도시", "분류 문서", ns=14),
        ],
        dbname="kowiki",
        lang="ko",
        namespaces=KO_NAMESPACES,
    )
    docs = list(WikipediaReader().read_path(str(dump)))
    assert all(isinstance(d, Document) for d in docs)
    assert docs[0].meta["namespaces"] == {0: "", **KO_NAMESPACES}
    out = list(run_steps([WikipediaPageFilter(languages=None), CleanWikitext()], docs))
    kept = [o for o in out if isinstance(o, Document)]
    rejected = [o for o in out if isinstance(o, Rejected)]
    assert [d.id for d in kept] == ["kowiki/3"]
    assert (
        "분류" not in kept[0].text and "섬네일" not in kept[0].text and "Seoul" not in kept[0].text
    )
    assert kept[0].text.endswith("서울은 오래된 도시이다. 대한민국의 도시도 보라.")
    # the namespace table is for the cleaner: neither kept nor rejected rows store it
    assert "namespaces" not in kept[0].meta
    assert {r.reason for r in rejected} == {"namespace:1", "namespace:14"}
    assert all("namespaces" not in r.doc.meta for r in rejected)


def test_disambiguation_detection() -> None:
    assert is_disambiguation("Mercury", "'''Mercury''' may be:\n{{disambiguation}}")
    assert is_disambiguation("Merkur", "{{Begriffsklärung}}")
    assert is_disambiguation("Меркурій", "{{неоднозначність}}")
    assert is_disambiguation("Mercury (disambiguation)", "")
    assert is_disambiguation("X", "{{Hndis|name=X}}")
    assert not is_disambiguation("Mead", ARTICLE)


def test_page_filter_reasons(tmp_path: Path) -> None:
    en = write_dump(tmp_path / "enwiki.xml.bz2", en_pages())
    ja = write_dump(
        tmp_path / "jawiki.xml.bz2", [page_xml(5, "東京", "'''東京'''は都市。")], "jawiki", "ja"
    )
    docs = [*WikipediaReader().read_path(str(en)), *WikipediaReader().read_path(str(ja))]
    counters = LocalCounters()
    steps = [WikipediaPageFilter(), CleanWikitext()]
    for s in steps:
        s.bind_counters(counters)
    out = list(run_steps(steps, docs))
    reasons = {o.doc.id: o.reason for o in out if isinstance(o, Rejected)}
    assert reasons == {
        "enwiki/10": "redirect",
        "enwiki/13": "disambiguation",
        "enwiki/14": "namespace:1",
        "jawiki/5": "lang:ja",
    }
    assert all(o.doc.text == "" for o in out if isinstance(o, Rejected))
    kept = {o.id: o for o in out if isinstance(o, Document)}
    assert sorted(kept) == ["enwiki/12", "enwiki/15", "enwiki/16"]
    honey = kept["enwiki/15"]
    assert honey.text == "Honey\n\nHoney is a sweet substance made by bees.\n\nIt keeps for years."
    assert honey.meta["url"] == "https://en.wikipedia.org/wiki/Honey"
    assert honey.meta["revision_id"] == 1500 and honey.meta["lang"] == "en"
    assert counters["wikipedia_filter.lang"] == 1
    # `languages=None` keeps every language
    out_all = list(run_steps([WikipediaPageFilter(languages=None)], docs))
    assert any(isinstance(o, Document) and o.id == "jawiki/5" for o in out_all)


# ---------------------------------------------------------------------------------------------
# The Beam stage and the command line


@pytest.mark.slow
def test_wikipedia_stage_on_direct_runner(tmp_path: Path) -> None:
    from llama_data.beam_jobs.harness import RunOptions, run_stage
    from llama_data.beam_jobs.wikipedia import make_wikipedia_stage

    dumps = tmp_path / "dumps"
    dumps.mkdir()
    pages = en_pages() + [
        page_xml(100 + i, f"Filler {i}", f"Filler text {i}. " * 30) for i in range(12)
    ]
    write_multistream(dumps / "enwiki-20230501-pages-articles-multistream.xml.bz2", pages, 3)
    good = write_dump(tmp_path / "ok.xml.bz2", [page_xml(7, "Київ", UK_ARTICLE)], "ukwiki", "uk")
    (dumps / "ukwiki-cut.xml.bz2").write_bytes(good.read_bytes()[:-30])  # truncated bz2
    spec = make_wikipedia_stage(
        [str(dumps / "*-multistream.xml.bz2"), str(dumps / "ukwiki-cut.xml.bz2")], split_bytes=2000
    )
    result = run_stage(spec, str(tmp_path / "out"), RunOptions(quiet=True))
    stats = result.stats
    assert stats["accounting"]["ok"]
    assert stats["rejected"] == {"disambiguation": 1, "namespace:1": 1, "redirect": 1}
    table = pq.read_table(sorted((tmp_path / "out" / "wikipedia").glob("*.parquet")))
    rows = {r["id"]: r for r in table.to_pylist()}
    assert "enwiki/12" in rows and len(rows) == stats["kept"] == 15
    mead = rows["enwiki/12"]
    assert mead["title"] == "Mead" and mead["lang"] == "en" and mead["revision_id"] == 1200
    assert mead["url"] == "https://en.wikipedia.org/wiki/Mead"
    assert mead["timestamp"] == "2023-05-01T12:00:00Z"
    assert mead["text"].startswith("Mead\n\nMead is an alcoholic drink")
    errors = [
        json.loads(line)
        for f in (tmp_path / "out" / "wikipedia" / "errors").glob("*.jsonl")
        for line in f.read_text().splitlines()
    ]
    assert [e["reason"] for e in errors] == ["truncated_stream"]
    assert (tmp_path / "out" / "wikipedia" / "_SUCCESS").exists()


def _serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    def handler(*a, **kw):
        return http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **kw)

    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def dump_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    server, url = _serve(root)
    try:
        yield url, root
    finally:
        server.shutdown()
        server.server_close()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "llama_data.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_download_wikipedia_verifies_sha1(tmp_path: Path, dump_server: tuple[str, Path]) -> None:
    url, root = dump_server
    d = root / "ukwiki" / "20230501"
    d.mkdir(parents=True)
    dump = write_multistream(
        d / "ukwiki-20230501-pages-articles-multistream.xml.bz2",
        [page_xml(7, "Київ", UK_ARTICLE)],
        dbname="ukwiki",
        lang="uk",
    )
    index = Path(index_path_for(str(dump)) or "")
    sums = "".join(f"{hashlib.sha1(p.read_bytes()).hexdigest()}  {p.name}\n" for p in (dump, index))
    (d / "ukwiki-20230501-sha1sums.txt").write_text(sums)
    out = tmp_path / "dl"
    res = _cli("download", "wikipedia", "--languages", "uk", "--date", "20230501",
               "--output", str(out), "--base-url", url)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (out / "ukwiki" / dump.name).read_bytes() == dump.read_bytes()
    assert (out / "ukwiki" / index.name).exists()
    manifest = json.loads((out / "download-manifest.json").read_text())
    assert set(manifest["files"]) == {dump.name, index.name}
    # a corrupted publication fails with a one-line error and exit code 2
    (d / "ukwiki-20230501-sha1sums.txt").write_text(sums.replace(sums[:8], "00000000", 1))
    res = _cli("download", "wikipedia", "--languages", "uk", "--date", "20230501",
               "--output", str(tmp_path / "dl2"), "--base-url", url)  # fmt: skip
    assert res.returncode == 2 and "does not match" in res.stderr


def test_cli_rejects_bad_language_codes(tmp_path: Path) -> None:
    res = _cli("wikipedia", "-i", str(tmp_path / "*.bz2"), "-o", str(tmp_path), "--languages", "EN")
    assert res.returncode == 2 and "--languages" in res.stderr


# ---------------------------------------------------------------------------------------------
# Real dumps (../shared/corpus)


@pytest.mark.corpus
def test_corpus_enwiki_and_ukwiki_kept_jawiki_skipped(corpus: Path) -> None:
    results: dict[str, list] = {}
    for name in ("enwiki-sample", "ukwiki-20230501", "jawiki-20230501"):
        docs = list(WikipediaReader().read_path(str(corpus / "wikipedia" / f"{name}.xml.bz2")))
        assert all(isinstance(d, Document) for d in docs)
        results[name] = list(run_steps([WikipediaPageFilter(), CleanWikitext()], docs))
    en, uk, ja = results.values()
    en_kept = [d for d in en if isinstance(d, Document)]
    uk_kept = [d for d in uk if isinstance(d, Document)]
    assert len(en_kept) > 80 and len(uk_kept) > 50
    assert not any(isinstance(d, Document) for d in ja)
    assert {r.reason for r in ja if isinstance(r, Rejected)} == {"lang:ja"}
    assert all(d.id.startswith("enwiki/") and d.meta["lang"] == "en" for d in en_kept)
    assert all(d.id.startswith("ukwiki/") and d.meta["lang"] == "uk" for d in uk_kept)
    assert sum(isinstance(r, Rejected) and r.reason == "redirect" for r in en) > 90
    for d in en_kept + uk_kept:
        assert d.text.split("\n", 1)[0] == d.meta["title"]
        assert "[[" not in d.text and "{{" not in d.text and "<ref" not in d.text
    algo = next(d for d in en_kept if d.meta["title"] == "Algorithm")
    assert "In mathematics and computer science, an algorithm" in algo.text


_ENTITY_LEFT = re.compile(
    r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|(?:" + "|".join(
        re.escape(name[:-1]) for name in html5 if name.endswith(";")
    ) + r"));"
)  # fmt: skip


@pytest.fixture(scope="module")
def corpus_cleaned() -> dict[str, dict[str, Document]]:
    """Kept articles of the three real dumps, every language kept (jawiki too), by title."""
    root = REPO.parent / "shared" / "corpus" / "wikipedia"
    if not root.is_dir():
        pytest.skip("../shared/corpus is absent")
    out: dict[str, dict[str, Document]] = {}
    for name in ("enwiki-sample", "ukwiki-20230501", "jawiki-20230501"):
        docs = WikipediaReader().read_path(str(root / f"{name}.xml.bz2"))
        steps = [WikipediaPageFilter(languages=None), CleanWikitext()]
        kept = [d for d in run_steps(steps, docs) if isinstance(d, Document)]
        out[name.split("-")[0]] = {d.meta["title"]: d for d in kept}
    return out


@pytest.mark.corpus
def test_corpus_entities_are_decoded(corpus_cleaned: dict[str, dict[str, Document]]) -> None:
    en, uk = corpus_cleaned["enwiki"], corpus_cleaned["ukwiki"]
    assert "the Unix-based OS X operating system" in en["ASCII"].text  # [[OS&nbsp;X]]
    assert "traditional 35 mm film" in en["Animation"].text  # [[35&nbsp;mm film]]
    assert "The Kruskal–Wallis test" in en["Analysis of variance"].text  # [[Kruskal&ndash;...]]
    assert "«Перевірено — мін немає»" in uk["Загребельний Павло Архипович"].text
    for wiki, docs in corpus_cleaned.items():
        for d in docs.values():
            m = _ENTITY_LEFT.search(d.text)
            assert m is None, (wiki, d.meta["title"], d.text[m.start() - 60 : m.end() + 20])
            assert "\u00a0" not in d.text, (wiki, d.meta["title"])


@pytest.mark.corpus
def test_corpus_urls_are_removed(corpus_cleaned: dict[str, dict[str, Document]]) -> None:
    en, uk, ja = corpus_cleaned["enwiki"], corpus_cleaned["ukwiki"], corpus_cleaned["jawiki"]
    # * [http://sealang.net/monkhmer/ Mon–Khmer ...] / *http://projekt.ht.lu.se/rwaai RWAAI (...)
    assert "\nRWAAI (Repository and Workspace for Austroasiatic Intangible Heritage)\n" in (
        en["Austroasiatic languages"].text
    )
    assert "originated from the public domain site\n" in en["Atlantic Ocean"].text
    # External links ending in bare YouTube URLs: only the labelled line stays
    assert uk["Глазовий Павло Прокопович"].text.endswith(
        "\nОсновний сайт з гуморесками Павла Глазового"
    )
    # [https://www.academia.edu/21621713<U+00A0>Незвичайний позитивіст ...]: the label survives
    assert "Ясь О. В. Незвичайний позитивіст Володимир Антонович" in (
        uk["Антонович Володимир Боніфатійович"].text
    )
    assert "Amnesty International、Human Rights Watch" in ja["インドネシア"].text  # U+3000
    for wiki, docs in corpus_cleaned.items():
        for d in docs.values():
            m = re.search(r"(?i)\b(?:https?|ftp)://", d.text)
            assert m is None, (wiki, d.meta["title"], d.text[m.start() - 60 : m.end() + 40])


@pytest.mark.corpus
def test_corpus_category_file_and_interlanguage_text_is_gone(
    corpus_cleaned: dict[str, dict[str, Document]],
) -> None:
    uk, ja = corpus_cleaned["ukwiki"], corpus_cleaned["jawiki"]
    # ''Дивись також [[:Категорія:Народились 1944]]''
    assert "\nДивись також Народились 1944\n" in uk["1944"].text
    assert "（Louis Herbert Gray）" in ja["言語"].text  # [[:en:Louis Herbert Gray]]
    assert "\nÖsterreichische Sprache - " in ja["オーストリア"].text  # [[:de:Kategorie:...|...]]
    prefixes = re.compile(
        r"(?i)(?:Категорія|Файл|Зображення|Медіа|Category|File|Image|Media|Kategorie|"
        r"カテゴリ|ファイル|画像|メディア)\s*:(?!\s)"
    )
    language = re.compile(r"(?<![\w.-])(?:en|de|fr|zh|uk|ru|ja|es|it):(?=\w)")
    for wiki, docs in corpus_cleaned.items():
        for d in docs.values():
            for pattern in (prefixes, language):
                m = pattern.search(d.text)
                assert m is None, (wiki, d.meta["title"], d.text[m.start() - 60 : m.end() + 40])


def test_config_section(tmp_path: Path) -> None:
    from llama_data.pipeline.config import ConfigError, parse_config

    cfg = parse_config(
        {
            "sources": {
                "wikipedia": {"inputs": ["d/*.bz2"], "languages": ["en", "uk"], "split_mb": 8}
            }
        },
        tmp_path / "build.toml",
    )
    src = cfg.sources["wikipedia"]
    assert src.languages == ["en", "uk"] and src.split_mb == 8 and src.dedup is False
    assert src.inputs == [str(tmp_path / "d" / "*.bz2")]
    with pytest.raises(ConfigError, match="languages"):
        parse_config({"sources": {"wikipedia": {"inputs": ["x"], "languages": ["English"]}}})
    with pytest.raises(ConfigError, match="langauges"):
        parse_config({"sources": {"wikipedia": {"inputs": ["x"], "langauges": ["en"]}}})
