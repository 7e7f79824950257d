"""Write the bundled demo inputs of C4 and the Wikipedia-reference classifier.

    python scripts/make_demo_c4_wikiref.py

All text below was written for this project (no third-party pages): the files only reproduce the
upstream *formats* (C4 release json.gz; a MediaWiki export-0.10 dump; Common Crawl WET with one
gzip member per record), so the demo exercises the real readers. Output is deterministic.
"""

from __future__ import annotations

import bz2
import gzip
import json
import random
from pathlib import Path
from xml.sax.saxutils import escape

DEMO = Path(__file__).resolve().parents[1] / "llama_data" / "demo"

# Prose of the kind Wikipedia cites: reports, histories, explanations.
REFERENCE = [
    "The bridge was completed in 1932 after six years of construction and two changes of design.",
    "According to the census, the population of the district grew by eleven percent in a decade.",
    "The committee published its final report in March, recommending a new system of inspections.",
    "Researchers measured the temperature of the lake every week for more than forty years.",
    "The museum holds a collection of early printed maps, some dating from the fifteenth century.",
    "The river rises in the northern hills and flows south for about two hundred kilometres.",
    "In the second half of the season the team won nine of its last eleven matches.",
    "The species was first described in 1858 from specimens collected on a coastal expedition.",
    "Parliament passed the act by a narrow margin after a debate that lasted three days.",
    "The company moved its headquarters to the city in 1974 and employed about four thousand people.",
    "Historians disagree about the exact date, but most place the founding of the town around 1120.",
    "The observatory was built on the highest point of the island to reduce the effect of haze.",
    "A survey of local farms found that most had switched to drip irrigation within five years.",
    "The novel was translated into twelve languages and adapted for the stage in 1961.",
    "Engineers reinforced the foundations after cracks were found in the eastern tower.",
    "The court ruled that the contract was void because one party had not been properly informed.",
    "The festival began as a small market and now attracts visitors from across the region.",
    "Samples from the cave show that the climate was considerably wetter eight thousand years ago.",
    "The railway line closed to passengers in 1965 but remained open for freight until 1983.",
    "The orchestra gave its first public concert in a converted warehouse near the harbour.",
    "Officials said the new water treatment plant would serve roughly ninety thousand households.",
    "The study followed two thousand patients and found no significant difference between the groups.",
    "The cathedral was damaged by fire in 1711 and rebuilt in a more restrained style.",
    "The election was the first in which women in the province were allowed to vote.",
    "The glacier has retreated by more than a kilometre since measurements began in 1900.",
    "The author spent most of her later life in a small village on the southern coast.",
    "The treaty set the border along the watershed between the two valleys.",
    "Excavations in the 1950s uncovered the remains of a Roman villa beneath the church.",
    "The school was founded by a group of teachers who wanted to offer evening classes to workers.",
    "Rainfall in the region is concentrated in the summer months, when storms arrive from the sea.",
]

# Pages nobody cites: shop fronts, link farms, boilerplate.
RANDOM = [
    "Buy now and get free shipping on all orders over twenty dollars!",
    "Click here to claim your exclusive bonus code before it expires tonight!",
    "Best cheap deals on phone cases, chargers and cables, updated every hour.",
    "Sign up for our newsletter and never miss a flash sale again!",
    "Top ten wallpapers for your desktop, download them all in one click.",
    "Limited offer: save up to seventy percent on selected items this weekend only!",
    "Login or create an account to see member prices and track your order.",
    "Hot coupons for pizza, burgers and more, just print and save today.",
    "Win big with daily spins, no deposit needed, play instantly in your browser!",
    "Share this page with your friends and get extra points for every like.",
    "Add to cart, choose your size and colour, checkout is fast and secure.",
    "You will not believe number seven on this list of amazing gadgets!",
    "Follow us for more funny pictures, memes and videos every single day.",
    "Order before noon for next day delivery, returns are free for thirty days.",
    "Cheap flights and hotel deals, compare prices from hundreds of sites now.",
]


def doc(rng: random.Random, pool: list[str], n: int) -> str:
    picked = rng.sample(pool, n)
    lines, i = [], 0
    while i < len(picked):
        k = rng.randint(1, 3)
        lines.append(" ".join(picked[i : i + k]))
        i += k
    return "\n".join(lines)


def c4_release() -> None:
    rng = random.Random(4)
    out = DEMO / "c4" / "c4-train.00000-of-01024.json.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(40):
        rows.append(
            {
                "text": doc(rng, REFERENCE, rng.randint(3, 7)),
                "timestamp": f"2019-04-{10 + i % 15:02d}T{i % 24:02d}:{(7 * i) % 60:02d}:00Z",
                "url": f"https://demo-{i % 9}.example.org/articles/{1000 + i}",
            }
        )
    with gzip.GzipFile(out, "wb", mtime=0) as fh:
        for row in rows:
            fh.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))


def mediawiki_dump(pages: list[tuple[int, str, str]]) -> bytes:
    out = [
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="en">',
        "  <siteinfo>",
        "    <sitename>Wikipedia</sitename>",
        "    <dbname>enwiki</dbname>",
        "    <base>https://en.wikipedia.org/wiki/Main_Page</base>",
        "    <generator>MediaWiki 1.41.0</generator>",
        "    <case>first-letter</case>",
        "    <namespaces>",
        '      <namespace key="0" case="first-letter" />',
        '      <namespace key="1" case="first-letter">Talk</namespace>',
        "    </namespaces>",
        "  </siteinfo>",
    ]
    for pid, title, text in pages:
        out += [
            "  <page>",
            f"    <title>{escape(title)}</title>",
            "    <ns>0</ns>",
            f"    <id>{pid}</id>",
            "    <revision>",
            f"      <id>{pid * 100 + 1}</id>",
            "      <timestamp>2023-05-01T00:00:00Z</timestamp>",
            "      <model>wikitext</model>",
            "      <format>text/x-wiki</format>",
            f'      <text bytes="{len(text.encode())}" xml:space="preserve">{escape(text)}</text>',
            "    </revision>",
            "  </page>",
        ]
    out.append("</mediawiki>\n")
    return "\n".join(out).encode("utf-8")


def wet_record(i: int, url: str, text: str) -> bytes:
    body = text.encode("utf-8")
    head = (
        "WARC/1.0\r\n"
        "WARC-Type: conversion\r\n"
        f"WARC-Target-URI: {url}\r\n"
        "WARC-Date: 2023-06-01T12:00:00Z\r\n"
        f"WARC-Record-ID: <urn:uuid:5eed0000-0000-4000-8000-{i:012d}>\r\n"
        f"WARC-Refers-To: <urn:uuid:5eed0000-0000-4000-9000-{i:012d}>\r\n"
        "Content-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    ).encode()
    return gzip.compress(head + body + b"\r\n\r\n", mtime=0)


def wikiref() -> None:
    rng = random.Random(5)
    folder = DEMO / "wikiref"
    folder.mkdir(parents=True, exist_ok=True)
    cited, pages = [], []
    for i in range(40):
        url = f"https://www.history-{i}.example.org/reports/{i}/"
        pages.append((url, doc(rng, REFERENCE, rng.randint(4, 8))))
        # Citations name the page as editors do: other scheme, no www., tracking parameters.
        style = i % 3
        if style == 0:
            cited.append(
                f"<ref>{{{{cite web |url=http://history-{i}.example.org/reports/{i} |title=Report {i}}}}}</ref>"
            )
        elif style == 1:
            cited.append(
                f"<ref>[https://history-{i}.example.org/reports/{i}?utm_source=wikipedia Report {i}]</ref>"
            )
        else:
            cited.append(f"<ref>https://www.history-{i}.example.org/reports/{i}/#summary</ref>")
    for j in range(80):
        pages.append(
            (f"http://shop-{j}.example.com/p/{j}?ref=home", doc(rng, RANDOM, rng.randint(3, 6)))
        )
    articles = []
    for a in range(4):
        body = [f"'''Demo topic {a}''' is an article written for the llama-data demo."]
        for k, ref in enumerate(cited[a * 10 : (a + 1) * 10]):
            body.append(f"Statement {k} about the topic.{ref}")
        body += ["", "== References ==", "{{reflist}}"]
        articles.append((100 + a, f"Demo topic {a}", "\n".join(body)))
    (folder / "enwiki-20230501-pages-articles-demo.xml.bz2").write_bytes(
        bz2.compress(mediawiki_dump(articles), 9)
    )
    order = list(range(len(pages)))
    rng.shuffle(order)
    wet = b"".join(wet_record(n, *pages[i]) for n, i in enumerate(order))
    (folder / "CC-MAIN-2023-23-demo-00000.warc.wet.gz").write_bytes(wet)


if __name__ == "__main__":
    c4_release()
    wikiref()
