"""Books: Gutenberg header/footer per marker style, Books3 reader, MinHash, verified near-dedup."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import zstandard

from llama_data.pipeline.books.dedup import (
    MinHasher,
    MinHashParams,
    VerifiedPair,
    band_keys,
    candidate_pairs,
    cluster_verdicts,
    dedup_books,
    measure_overlap,
    shingle_hashes,
    sketch,
)
from llama_data.pipeline.books.reader import BooksReader, strip_gutenberg
from llama_data.pipeline.books.steps import BookFilter
from llama_data.pipeline.document import DeadLetter, Document, Rejected
from llama_data.pipeline.io import FileSplit, local_open
from llama_data.pipeline.steps import run_steps

BODY = "It was a bright cold day in the lane, and the lamps were not yet lit.\n\nThe End.\n"

NEW_HEADER = """\ufeffThe Project Gutenberg eBook of Lamps, by Ann Author

This eBook is for the use of anyone anywhere in the United States.

Title: Lamps

Author: Ann Author

Release date: May 1, 2030 [eBook #12345]

Language: English

*** START OF THE PROJECT GUTENBERG EBOOK LAMPS ***

"""
NEW_FOOTER = """
*** END OF THE PROJECT GUTENBERG EBOOK LAMPS ***

Section 1. General Terms of Use and Redistributing Project Gutenberg
"""
STYLES = {
    "2020s THE": (NEW_HEADER, NEW_FOOTER),
    "2000s THIS": (
        "The Project Gutenberg EBook of Lamps, by Ann Author\n\nTitle: Lamps\nAuthor: Ann Author\n\n"
        "*** START OF THIS PROJECT GUTENBERG EBOOK LAMPS ***\n\nProduced by Volunteers\nat DP\n\n",
        "\nEnd of the Project Gutenberg EBook of Lamps, by Ann Author\n\n"
        "*** END OF THIS PROJECT GUTENBERG EBOOK LAMPS ***\n\nlicence...\n",
    ),
    "no space ***START": (
        "Title: Lamps\n\n***START OF THE PROJECT GUTENBERG EBOOK LAMPS***\n",
        "\n***END OF THE PROJECT GUTENBERG EBOOK LAMPS***\nlicence\n",
    ),
    "1990s small print": (
        "**The Project Gutenberg Etext of Lamps, by Ann Author**\n\n*****SMALL PRINT!*****\nwarranty\n"
        "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\n",
        "\nEnd of The Project Gutenberg Etext of Lamps\n",
    ),
    "1990s *END THE SMALL PRINT": (
        "Project Gutenberg's Etext of Lamps\n*END THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.12.14.93*END*\n",
        "\nEnd of Project Gutenberg's Lamps, by Ann Author\n",
    ),
    "copyrighted": (
        "*** START OF THE COPYRIGHTED PROJECT GUTENBERG EBOOK LAMPS ***\n",
        "\n*** END OF THE COPYRIGHTED PROJECT GUTENBERG EBOOK LAMPS ***\n",
    ),
    "full licence only": (
        "",
        "\n*** START: FULL LICENSE ***\nTHE FULL PROJECT GUTENBERG LICENSE\n",
    ),
    "no header": ("", ""),
}


@pytest.mark.parametrize("style", list(STYLES))
def test_header_footer_stripped(style):
    header, footer = STYLES[style]
    g = strip_gutenberg(header + BODY + footer)
    assert g.text.strip() == BODY.strip(), (style, g.text)
    assert "Gutenberg" not in g.text and "licence" not in g.text.lower()


def test_header_fields_and_crlf():
    g = strip_gutenberg((NEW_HEADER + BODY + NEW_FOOTER).replace("\n", "\r\n"))
    assert (g.title, g.author, g.language, g.ebook_id) == (
        "Lamps",
        "Ann Author",
        "English",
        "12345",
    )
    assert g.header_found and g.footer_found and g.text.startswith("It was")
    old = strip_gutenberg(STYLES["1990s small print"][0] + BODY)
    assert old.title == "Lamps" and old.author == "Ann Author"


def test_reader_empty_header_only_and_latin1(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "header-only.txt").write_text(NEW_HEADER + NEW_FOOTER)
    (tmp_path / "latin1.txt").write_bytes(
        (
            "Title: Caf\xe9\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\nUn caf\xe9 cr\xe8me.\n"
        ).encode("latin-1")
    )
    docs = []
    for name in ("empty.txt", "header-only.txt", "latin1.txt"):
        docs += list(BooksReader().read(FileSplit(str(tmp_path / name)), local_open))
    out = list(run_steps([BookFilter()], docs))
    reasons = {o.doc.id: o.reason for o in out if isinstance(o, Rejected)}
    assert reasons == {"gutenberg/empty": "empty", "gutenberg/header-only": "header_only"}
    (tmp_path / "pg1.zip").write_bytes(b"PK\x03\x04\x00\x00binary")
    (dead,) = list(BooksReader().read(FileSplit(str(tmp_path / "pg1.zip")), local_open))
    assert isinstance(dead, DeadLetter) and dead.reason == "not_text"
    (kept,) = [o for o in out if isinstance(o, Document)]
    assert (
        kept.text == "Un café crème."
        and kept.meta["encoding"] == "cp1252"
        and kept.meta["title"] == "Café"
    )


def test_books3_jsonl_zst(tmp_path):
    lines = [
        {"text": "A whole book.", "meta": {"title": "B1", "pile_set_name": "Books3"}},
        {"text": 42},
        "not json",
    ]
    raw = "\n".join(json.dumps(x) if not isinstance(x, str) else x for x in lines).encode()
    path = tmp_path / "books3.jsonl.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(raw))
    out = list(BooksReader().read(FileSplit(str(path)), local_open))
    docs = [o for o in out if isinstance(o, Document)]
    dead = [o for o in out if isinstance(o, DeadLetter)]
    assert [d.id for d in docs] == ["books3/books3.jsonl.zst:1"]
    assert docs[0].meta["title"] == "B1" and docs[0].source == "books"
    assert sorted(d.reason for d in dead) == ["bad_json", "missing_text"]


# ---------------------------------------------------------------------------------------------
# MinHash and dedup

WORDS = [
    "lamp",
    "river",
    "baker",
    "chandler",
    "crooked",
    "corner",
    "evening",
    "bells",
    "children",
    "letter",
    "council",
    "winter",
]


def make_book(seed: int, n_words: int = 3000) -> str:
    rng = random.Random(seed)
    words = [rng.choice(WORDS) + str(rng.randint(0, 300)) for _ in range(n_words)]
    return "\n".join(" ".join(words[i : i + 12]) + "." for i in range(0, n_words, 12))


def edition(text: str, seed: int) -> str:
    """Another edition: different punctuation, case, line breaks, a preface and a few changed words."""
    rng = random.Random(seed)
    words = text.split()
    for _ in range(len(words) // 200):
        words[rng.randrange(len(words))] = "typo"
    out = " ".join(w.upper() if rng.random() < 0.05 else w for w in words)
    return "PREFACE TO THE NEW EDITION.\n\n" + out.replace(".", ";").replace(" ", "\n", 50)


def test_signature_equals_datasketch():
    from datasketch import MinHash

    sh = shingle_hashes(make_book(1, 400), 5)
    hasher = MinHasher(128, seed=1)
    ours = hasher.signature_of_shingles(sh)
    ref = MinHash(num_perm=128, seed=1, hashfunc=lambda v: v)
    for v in (sh & np.uint64(0xFFFFFFFF)).astype(np.uint32):
        ref.update(int(v))
    assert np.array_equal(ours, ref.hashvalues)


def test_shingles_ignore_edition_noise():
    a = shingle_hashes("\u2018Oh dear!\u2019 said the _White_ Rabbit--late.", 3)
    b = shingle_hashes("\u201coh dear!\u201d said the WHITE rabbit\u2014late.", 3)
    assert np.array_equal(a, b)
    assert len(shingle_hashes("two words", 5)) == 1 and len(shingle_hashes("", 5)) == 0


def test_two_editions_deduplicated_different_books_not():
    base = make_book(7)
    docs = [
        Document("gutenberg/ed-1", "books", base),
        Document("gutenberg/ed-2", "books", edition(base, 1)),
        Document("gutenberg/other", "books", make_book(8)),
        Document(
            "gutenberg/other-sequel", "books", make_book(8)[:20000] + make_book(9)
        ),  # ~50% shared
    ]
    out = list(dedup_books(docs))
    rejected = {o.doc.id: o for o in out if isinstance(o, Rejected)}
    kept = {o.id for o in out if isinstance(o, Document)}
    longer, shorter = sorted(docs[:2], key=lambda d: -len(d.text))
    assert kept == {longer.id, "gutenberg/other", "gutenberg/other-sequel"}
    r = rejected[shorter.id]
    assert r.reason == f"near_duplicate_of:{longer.id}"  # the longer edition is kept
    assert 0.9 <= r.doc.meta["overlap"] <= 1.0 and r.doc.meta["near_duplicate_of"] == longer.id
    # same length: the smaller id wins
    same = [Document("b/2", "books", base), Document("b/1", "books", base)]
    assert [type(o).__name__ for o in dedup_books(same)] == ["Rejected", "Document"]


def test_lsh_false_positive_is_caught_by_verification():
    """Force every book into the same buckets (all-equal signatures): no false rejection."""
    params = MinHashParams(num_perm=16)
    hasher = MinHasher(16)
    sketches = [sketch(f"b{i}", make_book(i, 500), params, hasher) for i in range(3)]
    for s in sketches:
        s.signature[:] = 7  # a collision in every band
    assert len(candidate_pairs(sketches, params)) == 3
    docs = [Document(f"b{i}", "books", make_book(i, 500)) for i in range(3)]
    assert all(isinstance(o, Document) for o in dedup_books(docs, params))


def test_keeper_rule_and_clusters_deterministic():
    pairs = [
        VerifiedPair("a", "b", 0.95, 0.9),
        VerifiedPair("b", "c", 0.97, 0.94),
        VerifiedPair("x", "y", 1.0, 1.0),
    ]
    lengths = {"a": 10, "b": 10, "c": 5, "x": 3, "y": 3}
    v1 = cluster_verdicts(pairs, lengths)
    v2 = cluster_verdicts(list(reversed(pairs)), lengths)
    assert v1 == v2
    assert set(v1) == {"b", "c", "y"}  # keepers: a (longest, then smallest id) and x
    assert v1["c"].keeper == "a" and v1["c"].partner == "b" and v1["c"].overlap == 0.97
    assert v1["b"].keeper == "a" and v1["b"].overlap == 0.95


def test_band_keys_compact_and_stable():
    sig = np.arange(128, dtype=np.uint32)
    keys = band_keys(sig, 14, 9)
    assert len(keys) == 14 and all(len(k) == 10 for k in keys)
    assert keys == band_keys(sig.copy(), 14, 9)
    assert keys == band_keys(sig, 14, 9, prefix=b"")
    assert measure_overlap(np.array([1, 2, 3], np.uint64), np.array([2, 3, 4, 5], np.uint64)) == (
        2 / 3,
        2 / 5,
    )


@pytest.mark.slow
def test_books_stage_end_to_end(tmp_path):
    """The Beam path (band-key shuffle) agrees with the in-memory index."""
    import pyarrow.parquet as pq

    from llama_data.beam_jobs.books import make_books_stage
    from llama_data.beam_jobs.harness import run_stage
    from llama_data.beam_jobs.runners import RunOptions

    base = make_book(3, 2000)
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "pg1.txt").write_text(NEW_HEADER + base + NEW_FOOTER)
    (inp / "pg1-old.txt").write_text(STYLES["1990s small print"][0] + edition(base, 2) + "\n")
    (inp / "pg2.txt").write_text(make_book(4, 2000))
    (inp / "pg3.txt").write_text(NEW_HEADER + NEW_FOOTER)
    result = run_stage(
        make_books_stage([str(inp / "*.txt")]), str(tmp_path / "out"), RunOptions(quiet=True)
    )
    s = result.stats
    assert s["in"] == 4 and s["kept"] == 2
    assert s["rejected"] == {"header_only": 1, "near_duplicate_of": 1}
    assert s["counters"]["near_dedup.verified_pairs"] == 1
    rej = pq.read_table(
        next((tmp_path / "out" / "books" / "rejected").glob("*.parquet"))
    ).to_pylist()
    dup = next(r for r in rej if r["reason"].startswith("near"))
    texts = {n: strip_gutenberg((inp / f"{n}.txt").read_text()).text for n in ("pg1", "pg1-old")}
    keeper, dropped = sorted(texts, key=lambda n: -len(texts[n]))
    assert dup["id"] == f"gutenberg/{dropped}" and dup["near_duplicate_of"] == f"gutenberg/{keeper}"
    assert dup["overlap"] >= 0.9 and dup["title"] == "Lamps"


@pytest.mark.corpus
def test_corpus_books_alice_editions(corpus):
    docs = []
    for f in sorted((corpus / "books").glob("*.txt")):
        docs += list(BooksReader().read(FileSplit(str(f)), local_open))
    assert all(isinstance(d, Document) for d in docs)
    moby = next(d for d in docs if "moby" in d.id)
    assert (
        moby.meta["title"].startswith("Moby Dick") and "Project Gutenberg" not in moby.text[-5000:]
    )
    assert moby.text.startswith("MOBY-DICK")
    out = list(dedup_books(docs))
    rejected = [o for o in out if isinstance(o, Rejected)]
    assert len(rejected) == 1 and "alice" in rejected[0].doc.id and "alice" in rejected[0].reason
    assert rejected[0].doc.meta["overlap"] > 0.95


# ---------------------------------------------------------------------------------------------
# download gutenberg, against a local HTTP stand-in


@pytest.fixture
def gutenberg_site(tmp_path):
    import functools
    import http.server
    import threading

    root = tmp_path / "site"
    (root / "cache/epub/feeds").mkdir(parents=True)
    (root / "cache/epub/feeds/pg_catalog.csv").write_text(
        "Text#,Type,Issued,Title,Language,Authors\n"
        "11,Text,2008-06-27,Alice,en,Carroll\n84,Text,1993-10-01,Frankenstein,en,Shelley\n"
        "2000,Text,1999-12-01,Quijote,es,Cervantes\n9999,Sound,2005-01-01,Audio,en,X\n"
    )
    (root / "cache/epub/11").mkdir(parents=True)
    (root / "cache/epub/11/pg11.txt").write_text(NEW_HEADER + BODY + NEW_FOOTER)
    (root / "8/84").mkdir(parents=True)  # only in the mirror layout
    (root / "8/84/84-0.txt").write_text(STYLES["2000s THIS"][0] + BODY)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_gutenberg_catalog_and_ids(tmp_path, gutenberg_site):
    from click.testing import CliRunner

    from llama_data.cli import main
    from llama_data.pipeline.books.download import download_gutenberg, parse_ids

    assert parse_ids("3,1-2, 2") == [1, 2, 3]
    out = tmp_path / "pg"
    res = download_gutenberg(str(out), base_url=gutenberg_site, language="en", echo=lambda _: None)
    assert sorted(p.name for p in out.glob("*.txt")) == ["pg11.txt", "pg84.txt"]
    assert res.missing == [] and all(not d.skipped for d in res.fetched)
    manifest = json.loads((out / "download-manifest.json").read_text())
    assert set(manifest["files"]) == {"pg11.txt", "pg84.txt"}
    again = CliRunner().invoke(
        main,
        [
            "download",
            "gutenberg",
            "-o",
            str(out),
            "--base-url",
            gutenberg_site,
            "--ids",
            "11,84,12",
        ],
    )
    assert again.exit_code == 0, again.output
    assert "2 already there" in again.output and "1 not found" in again.output
    (doc,) = list(BooksReader().read(FileSplit(str(out / "pg11.txt")), local_open))
    assert doc.text.strip() == BODY.strip() and doc.meta["title"] == "Lamps"


def test_ensemble_grouping_proposes_what_datasketch_proposes():
    """The Beam path's key grouping and the in-memory datasketch MinHashLSH indexes agree."""
    from llama_data.beam_jobs.books import _bucket_pairs, _ensemble_entries

    params = MinHashParams()
    hasher = MinHasher(params.num_perm)
    base, long = make_book(11, 800), make_book(13, 2400)
    texts = [
        base,
        edition(base, 1),
        make_book(12, 800),
        base[: len(base) // 2],  # inside base
        long + "\n" + base,  # base inside it, 4x larger
        long,
        make_book(14, 6000),
    ]
    sketches = [sketch(f"b{i}", t, params, hasher) for i, t in enumerate(texts)]
    buckets: dict[bytes, list[tuple[bool, str]]] = {}
    for s in sketches:
        for key, member in _ensemble_entries((s.id, s), params):
            assert len(key) == 12
            buckets.setdefault(key, []).append(member)
    grouped = {p for item in buckets.items() for p in _bucket_pairs(item)}
    assert grouped == candidate_pairs(sketches, params)
    assert {("b0", "b1"), ("b0", "b3"), ("b0", "b4"), ("b4", "b5")} <= grouped
    assert not any("b2" in p or "b6" in p for p in grouped)


def test_ensemble_keys_bounded_and_partitioned():
    from llama_data.pipeline.books.dedup import (
        ensemble_index_bands,
        ensemble_keys,
        ensemble_queries,
        ensemble_table,
        partition_upper,
        size_partition,
    )

    params = MinHashParams()
    assert [size_partition(n) for n in (1, 2, 3, 4, 75_133, 131_071, 131_072)] == [
        0,
        1,
        1,
        2,
        16,
        16,
        17,
    ]
    assert partition_upper(16) == 131_071
    table = ensemble_table(params.lsh_threshold, params.num_perm, params.max_size_ratio)
    assert all(b * r <= params.num_perm and 2 <= r <= 8 for _, b, r in table)
    assert table[-1][0] >= 2 * params.max_size_ratio
    sig = np.arange(128, dtype=np.uint32)
    n_index = sum(b for _, b in ensemble_index_bands(params))
    for size in (1, 7, 1000, 75_133, 10**9):
        queries = ensemble_queries(size, params)
        # own partition first, then larger ones up to max_size_ratio times the size: bounded
        assert queries[0][0] == size_partition(size) and len(queries) <= 5
        assert (1 << queries[-1][0]) <= params.max_size_ratio * size
        keys = ensemble_keys(size, sig, params)
        assert len(keys.index) == n_index and len(keys.query) == sum(b for _, b, _ in queries)
        assert len(keys.index) + len(keys.query) <= 500
    assert ensemble_keys(0, sig, params).index == []


def test_ensemble_finds_containment_at_the_size_ratios_it_promises():
    """Probability that a pair at containment 0.9 becomes a candidate, from the band parameters
    each (query, partition) uses, for the worst placement of both books in their partitions."""
    from llama_data.pipeline.books.dedup import (
        ensemble_band_params,
        partition_upper,
        size_partition,
    )

    params = MinHashParams()

    def p_candidate(c: float, q: int, x: int) -> float:
        b, r = ensemble_band_params(params, partition_upper(size_partition(x)) / q)
        jaccard = c / (1 + x / q - c)
        return 1 - (1 - jaccard**r) ** b

    qs = [65_536 + k * 4096 for k in range(16)]
    worst = {
        ratio: min(p_candidate(0.9, q, int(q * ratio)) for q in qs)
        for ratio in (1, 1.5, 2, 3, 4, 8)
    }
    assert all(worst[r] >= 0.95 for r in (1, 1.5, 2, 3, 4)), worst
    assert worst[8] > 0.5, worst
    # unrelated books (measured 5-gram containment ~0.002 on the corpus) stay rare candidates
    assert max(p_candidate(0.005, q, int(q * 1.5)) for q in qs) < 1e-3


def test_containment_verdicts_do_not_merge_two_anthologies():
    """A story inside two anthologies goes; the anthologies (sharing only it) both stay."""
    pairs = [
        VerifiedPair("story", "anth1", 1.0, 0.2, a_in_b=True, b_in_a=False),
        VerifiedPair("anth2", "story", 1.0, 0.25, a_in_b=False, b_in_a=True),
    ]
    lengths = {"story": 10, "anth1": 50, "anth2": 40}
    v = cluster_verdicts(pairs, lengths)
    assert set(v) == {"story"} and v["story"].keeper == "anth1"
    # a longer book one-way inside a shorter one (more repeated text): the container decides
    # first, so the contained one goes even though it has more characters
    v = cluster_verdicts(
        [VerifiedPair("a", "b", 0.95, 0.5, a_in_b=True, b_in_a=False)], {"a": 9, "b": 5}
    )
    assert set(v) == {"a"} and v["a"].keeper == "b"
    # a chapter inside a selection that is itself (one-way) inside a larger book goes only if
    # it is inside a book that remains: the selection's part outside the larger book may hold it
    nested = [
        VerifiedPair("chapter", "selection", 1.0, 0.1, a_in_b=True, b_in_a=False),
        VerifiedPair("selection", "works", 0.92, 0.3, a_in_b=True, b_in_a=False),
    ]
    lengths = {"chapter": 1, "selection": 10, "works": 30}
    assert set(cluster_verdicts(nested, lengths)) == {"selection"}
    nested.append(VerifiedPair("chapter", "works", 0.95, 0.03, a_in_b=True, b_in_a=False))
    v = cluster_verdicts(nested, lengths)
    assert set(v) == {"selection", "chapter"} and v["chapter"].keeper == "works"
    # editions (both ways) chain to one keeper, as before
    chain = [VerifiedPair("e1", "e2", 0.95, 0.9), VerifiedPair("e2", "e3", 0.97, 0.94)]
    v = cluster_verdicts(chain, {"e1": 10, "e2": 9, "e3": 8})
    assert v["e3"].keeper == "e1" and v["e3"].partner == "e2"


def test_hot_bucket_yields_a_star():
    from llama_data.beam_jobs.books import MAX_BUCKET_PAIRS, _bucket_pairs

    n = int(MAX_BUCKET_PAIRS**0.5) + 1
    ids = [f"id{i:04d}" for i in range(n)]
    members = [(q, i) for i in reversed(ids) for q in (True, False)]
    pairs = list(_bucket_pairs((b"k", members)))
    assert len(pairs) == n - 1 and all(a == "id0000" for a, _ in pairs)
    small = [(q, i) for i in ids[:4] for q in (True, False)]
    assert len(list(_bucket_pairs((b"k", small)))) == 6
    # only queries, or only indexed books: nothing to compare
    assert list(_bucket_pairs((b"k", [(True, "a"), (True, "b")]))) == []


# ---------------------------------------------------------------------------------------------
# A book contained in a longer one (compilations, complete works): the defect of issue #14


def _read_book(path) -> Document:
    (doc,) = list(BooksReader().read(FileSplit(str(path)), local_open))
    assert isinstance(doc, Document)
    return doc


def _rejected_rows(out_dir) -> dict[str, dict]:
    import pyarrow.parquet as pq

    return {
        r["id"]: r
        for f in (out_dir / "books" / "rejected").glob("*.parquet")
        for r in pq.read_table(f).to_pylist()
    }


@pytest.mark.corpus
@pytest.mark.slow
def test_corpus_book_inside_compilation_is_removed(corpus, tmp_path):
    """Real Gutenberg texts: Frankenstein beside a "Moby-Dick + Frankenstein" compilation.

    Frankenstein is all inside the compilation (overlap 1.0) but their Jaccard is ~0.26, far
    below what Jaccard LSH bands find: the containment candidates must propose the pair, in
    memory and in the Beam stage, and the compilation (the longest) is kept.
    """
    from llama_data.beam_jobs.books import make_books_stage
    from llama_data.beam_jobs.harness import run_stage
    from llama_data.beam_jobs.runners import RunOptions

    books = corpus / "books"
    frank_path = next(books.glob("*frankenstein*.txt"))
    moby_path = next(books.glob("*moby-dick*.txt"))
    frank, moby = _read_book(frank_path), _read_book(moby_path)
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "moby-dick-and-frankenstein.txt").write_text(moby.text + "\n\n" + frank.text)
    comp = _read_book(inp / "moby-dick-and-frankenstein.txt")
    overlap, jaccard = measure_overlap(shingle_hashes(frank.text), shingle_hashes(comp.text))
    assert overlap == 1.0 and jaccard < 0.3  # containment, not similarity

    out = list(dedup_books([frank, moby, comp]))
    rejected = {o.doc.id: o for o in out if isinstance(o, Rejected)}
    assert [o.id for o in out if isinstance(o, Document)] == [comp.id]
    assert rejected[frank.id].reason == f"near_duplicate_of:{comp.id}"
    assert rejected[frank.id].doc.meta["overlap"] == 1.0
    assert rejected[frank.id].doc.meta["jaccard"] < 0.3
    assert rejected[moby.id].reason == f"near_duplicate_of:{comp.id}"

    # The Beam stage (ensemble keys shuffled, no in-memory index) on the same files
    result = run_stage(
        make_books_stage([str(frank_path), str(moby_path), str(inp / "*.txt")]),
        str(tmp_path / "out"),
        RunOptions(quiet=True),
    )
    assert result.stats["kept"] == 1 and result.stats["rejected"] == {"near_duplicate_of": 2}
    rej = _rejected_rows(tmp_path / "out")
    assert rej[frank.id]["near_duplicate_of"] == comp.id and rej[frank.id]["overlap"] == 1.0
    assert rej[moby.id]["near_duplicate_of"] == comp.id


@pytest.mark.slow
def test_books_stage_removes_book_inside_compilation(tmp_path):
    """Beam stage on files written here: A and an edition of X inside B = X + A (4x A's size)."""
    from llama_data.beam_jobs.books import make_books_stage
    from llama_data.beam_jobs.harness import run_stage
    from llama_data.beam_jobs.runners import RunOptions

    book_a, book_x = make_book(21, 1500), make_book(22, 4500)
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a.txt").write_text(NEW_HEADER + book_a + NEW_FOOTER)
    (inp / "x-old.txt").write_text(edition(book_x, 5))
    (inp / "compilation.txt").write_text(NEW_HEADER + book_x + "\n\n" + book_a + NEW_FOOTER)
    (inp / "other.txt").write_text(make_book(23, 1500))
    a_sh, b_sh = shingle_hashes(book_a), shingle_hashes(book_x + "\n" + book_a)
    assert measure_overlap(a_sh, b_sh)[1] < 0.3  # Jaccard: LSH bands for 0.7 never see it
    result = run_stage(
        make_books_stage([str(inp / "*.txt")]), str(tmp_path / "out"), RunOptions(quiet=True)
    )
    s = result.stats
    assert s["in"] == 4 and s["kept"] == 2 and s["rejected"] == {"near_duplicate_of": 2}
    assert s["counters"]["near_dedup.verified_pairs"] == 2  # a and x-old, each with the compilation
    rej = _rejected_rows(tmp_path / "out")
    assert set(rej) == {"gutenberg/a", "gutenberg/x-old"}
    assert all(r["near_duplicate_of"] == "gutenberg/compilation" for r in rej.values())
    assert rej["gutenberg/a"]["overlap"] == 1.0 and rej["gutenberg/x-old"]["overlap"] >= 0.9
    assert json.loads(rej["gutenberg/a"]["meta"])["jaccard"] < 0.3  # measured, recorded
