"""CCNet parts without an engine: normalization, hashing, the line dedup rule, language id,
the perplexity formula against a hand-computed KenLM score, bucket cutoffs, filters."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

from llama_data.pipeline.ccnet.buckets import (
    Bucket,
    bucket_of,
    cutoffs_from_values,
    dump_cutoffs,
    exact_cutoffs,
    load_cutoffs,
)
from llama_data.pipeline.ccnet.filters import ExactDedupLocal, MinLength, doc_dedup_key
from llama_data.pipeline.ccnet.langid import LanguageId, lid_model_path
from llama_data.pipeline.ccnet.lines import (
    dedup_key,
    dedup_lines_local,
    doc_hashes,
    line_keys,
    pack_line_keys,
    packed_line_keys,
    remove_lines,
    remove_packed_lines,
    unpack_line_keys,
)
from llama_data.pipeline.ccnet.perplexity import LanguageModel, perplexity
from llama_data.pipeline.document import Document, Rejected
from llama_data.pipeline.normalize import (
    hash_bytes,
    line_hash,
    normalize_for_lm,
    normalize_line,
    packed_line_hashes,
    strip_accents,
    text_digest,
)
from llama_data.pipeline.steps import LocalCounters, run_steps


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Hello World  ", "hello world"),  # strip + lowercase
        ("Copyright 2019-2023", "copyright 0000-0000"),  # digits -> 0, ASCII '-' kept
        ("Café Crème", "café crème"),  # accents kept (cc_net's normalize_for_dedup)
        ("Ñandú", "ñandú"),
        ("«Bonjour» – dit-il…", "bonjour  dit-il"),  # Unicode punctuation removed
        ("你好，世界。", "你好世界"),  # CJK punctuation removed
        (
            "Ｐｒｉｃｅ：１２０",
            "ｐｒｉｃｅ000",
        ),  # full-width digits are digits; full-width colon goes
        ("Tab\tand\x00nul\u200b", "tabandnul\u200b"),  # control characters removed, only those
        ("¿Qué? • ok", "¿qué? • ok"),  # punctuation outside cc_net's set stays
        ("٣ apples", "0 apples"),  # Arabic-Indic digit
        ("   ", ""),
        ("…", ""),  # punctuation only normalizes to nothing
        ("C'est l'été!", "c'est l'été!"),  # ASCII punctuation stays (as in cc_net)
    ],
)
def test_normalize_line_table(raw: str, expected: str) -> None:
    assert normalize_line(raw) == expected


def test_normalize_for_lm_replaces_punctuation() -> None:
    assert normalize_for_lm("«Él dijo»： ¿qué？ 2024…") == '"el dijo": ¿que? 0000...'
    assert normalize_for_lm("你好，世界。") == "你好,世界."
    # a whole page becomes one line: its newlines are control characters (cc_net's normalize)
    assert normalize_for_lm("One line\nTwo\n") == "one linetwo"
    assert strip_accents("naïve façade") == "naive facade"


def test_line_hash_is_first_8_bytes_of_sha1() -> None:
    import hashlib

    digest = hashlib.sha1(b"hello world").digest()
    assert hash_bytes("hello world") == digest[:8]
    assert line_hash("hello world") == int.from_bytes(digest[:8], "little")
    assert 0 <= line_hash("x") < 2**64
    # boilerplate variants collide on purpose, different content does not
    assert hash_bytes(normalize_line("© 2019 ACME — All rights reserved")) == hash_bytes(
        normalize_line("© 2023 Acme – all rights reserved")
    )
    assert hash_bytes(normalize_line("page one")) != hash_bytes(normalize_line("page two"))


def doc(i: int, text: str, **meta) -> Document:
    return Document(id=f"d{i}", source="commoncrawl", text=text, meta=dict(meta))


def test_dedup_rule_boilerplate_in_three_pages() -> None:
    boiler = "Subscribe to our newsletter"
    docs = [
        doc(1, f"Alpha unique first line\n{boiler}\nAlpha unique second line"),
        doc(2, f"{boiler.upper()}…\nBeta content here"),  # case + Unicode punctuation
        doc(3, f"Gamma page text\n  {boiler}  \n\nGamma end"),
        doc(4, "Delta only\nDelta twice\nDelta twice"),  # repeated inside one page only
    ]
    out = dedup_lines_local(docs)
    texts = [o.text if isinstance(o, Document) else None for o in out]
    assert texts[0] == "Alpha unique first line\nAlpha unique second line"
    assert texts[1] == "Beta content here"
    # the blank line is in one page only: kept, as cc_net keeps it
    assert texts[2] == "Gamma page text\n\nGamma end"
    # a line repeated inside one page is not a duplicate: its first occurrence stays
    assert texts[3] == "Delta only\nDelta twice"
    first = out[0]
    assert isinstance(first, Document)
    assert first.meta["original_nlines"] == 3 and first.meta["nlines"] == 2
    assert first.meta["original_length"] == len(docs[0].text)
    assert first.meta["length"] == len(texts[0])


def test_dedup_rule_empty_after_dedup_is_too_short() -> None:
    out = dedup_lines_local([doc(1, "menu\nhome"), doc(2, "Menu\nHome")])
    assert all(isinstance(o, Rejected) and o.reason == "too_short" for o in out)


def test_remove_lines_keeps_unique_lines_only() -> None:
    d = doc(1, "keep me\ndrop me\n\n• • •\nkeep me too\n\nKeep me")
    dup = {dedup_key(doc_hashes("drop me")[0])}
    # duplicated lines go; a repeat inside the page goes after its first occurrence
    assert remove_lines(d, dup).text == "keep me\n\n• • •\nkeep me too"
    # the keys computed once for counting travel packed with the document and give the same cut
    keys = line_keys(d.text)
    assert keys[2] == keys[5] == dedup_key(doc_hashes("")[0])  # blank lines hash as ""
    assert unpack_line_keys(pack_line_keys(keys)) == keys
    assert remove_lines(d, dup, keys=unpack_line_keys(pack_line_keys(keys))).text == (
        "keep me\n\n• • •\nkeep me too"
    )
    scoped = line_keys(d.text, scope=b"\0\0\0\1")
    assert scoped[0] != keys[0]
    by_scope = remove_lines(d, {scoped[1]}, scope=b"\0\0\0\1")
    assert (
        by_scope.text
        == remove_lines(d, {scoped[1]}, keys=scoped).text
        == ("keep me\n\n• • •\nkeep me too")
    )


# lines where a document-at-a-time normalization could go wrong: final sigma at line ends,
# case changes that lengthen a line, digits of other scripts, control characters that are
# whitespace to str.strip (\x1c, \x85) or are not (\x01), punctuation next to spaces at a
# line's ends, a lone surrogate, CR LF, vertical tab and form feed
TRICKY_TEXTS = [
    "",
    "\n",
    " \x1c a \x1c\n\x85x\x85",
    "ΟΔΟΣ\nΣ\nαΣ\nΣα ΑΣ.",
    "İstanbul ١٢٣ ５ １\nǅ ß ﬃ",
    " \x01 a\t \n\x7f\x9f€ \x01",
    "a\ud800b",
    "“Hi” — 12… ”\n …  x  « »",
    " \u3000x\u3000 \n\xa0y\xa0",
    "\r\n\r\nz\r",
    "x\x0by\x0cz\n0123456789",
]


def test_packed_line_hashes_are_the_line_by_line_hashes(corpus_texts: list[str]) -> None:
    """`packed_line_hashes` normalizes a document at a time; it must give, line for line,
    `hash_bytes(normalize_line(line))` (the function the conformance suite holds to cc_net)."""
    for text in [*TRICKY_TEXTS, *corpus_texts]:
        expected = b"".join(hash_bytes(normalize_line(line)) for line in text.split("\n"))
        assert packed_line_hashes(text) == expected, repr(text[:80])
        assert doc_hashes(text) == [expected[i : i + 8] for i in range(0, len(expected), 8)]
        keys = packed_line_keys(text)
        assert [k.to_bytes(8, "little") for k in keys.tolist()] == [
            dedup_key(h) for h in doc_hashes(text)
        ]
        # the document dedup key, also normalized a document at a time
        h = hashlib.sha1()
        for line in text.split("\n"):
            norm = " ".join(normalize_line(line).split())
            if norm:
                h.update(norm.encode("utf-8", "surrogatepass") + b"\n")
        assert text_digest(text) == h.digest()[:16]


def test_remove_packed_lines_is_remove_lines(corpus_texts: list[str]) -> None:
    import numpy as np

    for i, text in enumerate([*TRICKY_TEXTS, *corpus_texts]):
        d = doc(i, text)
        keys = packed_line_keys(text)
        dup = np.unique(keys)[::3]  # every third distinct key is "duplicated"
        want = remove_lines(d, {k.to_bytes(8, "little") for k in dup.tolist()})
        got = remove_packed_lines(d, dup, keys)
        assert (got.text, got.meta) == (want.text, want.meta)


def test_reordering_characters_written_out_are_the_computed_ones() -> None:
    import unicodedata

    from llama_data.pipeline import normalize

    if unicodedata.unidata_version != normalize._REORDERING_UNICODE:
        pytest.skip("another Unicode version: the characters are computed at run time")
    assert normalize._reordering_chars() == normalize._REORDERING_CHARS
    # the lead-byte pre-check never hides one of them
    for ch in normalize._REORDERING_CHARS:
        for text in (ch, f"’ {ch} é", f"ab\u2019{ch}"):
            assert normalize._needs_whole_string_nfd(text)
    for text in ("’“”–… é ü ß", "Привет мир", "مرحبا", "日本語のテキスト", "emoji 😀"):
        assert not normalize._needs_whole_string_nfd(text)


@pytest.fixture(scope="module")
def corpus_texts() -> list[str]:
    """The corpus's WET pages (real text in ~20 languages) and the demo's, when present."""
    from llama_data.pipeline.warc import WetReader

    root = Path(__file__).resolve().parents[1]
    paths = [
        root / "llama_data" / "demo" / "commoncrawl" / "demo.warc.wet.gz",
        root.parent / "shared" / "corpus" / "commoncrawl" / "pages.warc.wet.gz",
        root.parent / "shared" / "corpus" / "commoncrawl" / "ccnet-sample.warc.wet",
    ]
    return [
        d.text
        for p in paths
        if p.is_file()
        for d in WetReader().read_path(str(p))
        if isinstance(d, Document)
    ]


def test_language_id_real_lid176() -> None:
    assert lid_model_path().stat().st_size == 938_013
    step = LanguageId(languages=("en",), min_score=0.5)
    counters = LocalCounters()
    step.bind_counters(counters)
    docs = [
        doc(1, "The quick brown fox jumps over the lazy dog while the children watch."),
        doc(
            2, "Der schnelle braune Fuchs springt über den faulen Hund, während die Kinder zusehen."
        ),
        doc(3, "Le renard brun rapide saute par-dessus le chien paresseux."),
    ]
    out = step.process_batch(docs)
    assert isinstance(out[0], Document) and out[0].meta["language"] == "en"
    assert out[0].meta["language_score"] >= 0.5
    assert isinstance(out[1], Rejected) and out[1].reason == "lang"
    assert out[1].doc.meta["language"] == "de"
    assert isinstance(out[2], Rejected) and out[2].doc.meta["language"] == "fr"
    assert counters["lid.kept.en"] == 1
    # single-document path gives the same answer
    single = step.process(docs[0])
    assert isinstance(single, Document) and single.meta["language"] == "en"


def test_perplexity_formula() -> None:
    assert perplexity(-6.0, 3) == pytest.approx(100.0)
    assert perplexity(0.0, 5) == 1.0
    assert math.isinf(perplexity(-1.0, 0))


def _train_sp(tmp_path: Path, lang: str = "xx") -> Path:
    import sentencepiece as spm

    text = tmp_path / "sp.txt"
    lines = [f"the cat sat on the mat number {i % 7}" for i in range(200)]
    lines += [f"a dog ran in the park with {i % 5} friends" for i in range(200)]
    text.write_text("\n".join(normalize_for_lm(x) for x in lines), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(text),
        model_prefix=str(tmp_path / lang),
        vocab_size=40,
        hard_vocab_limit=False,
        model_type="unigram",
        minloglevel=2,
    )
    (tmp_path / f"{lang}.model").rename(tmp_path / f"{lang}.sp.model")
    return tmp_path / f"{lang}.sp.model"


def test_perplexity_matches_hand_computed_kenlm_score(tmp_path: Path) -> None:
    """An ARPA over the SentencePiece pieces where every piece has log10 p = -1 and </s> -0.5, so
    a line of n pieces scores -(n + 0.5) over n + 1 tokens, by hand."""
    import sentencepiece as spm

    sp_file = _train_sp(tmp_path)
    sp = spm.SentencePieceProcessor(model_file=str(sp_file))
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    vocab = [p for p in pieces if p not in ("<unk>", "<s>", "</s>")]
    # KenLM needs order >= 2: one bigram that never fires (no line is empty), zero backoffs
    arpa = ["\\data\\", f"ngram 1={len(vocab) + 3}", "ngram 2=1", "", "\\1-grams:"]
    arpa += ["-3.0\t<unk>\t0", "-99\t<s>\t0", "-0.5\t</s>\t0"]
    arpa += [f"-1.0\t{p}\t0" for p in vocab]
    arpa += ["", "\\2-grams:", "-0.1\t<s> </s>", "", "\\end\\", ""]
    (tmp_path / "xx.arpa.bin").write_text("\n".join(arpa), encoding="utf-8")

    lm = LanguageModel(tmp_path, "xx")
    lines = ["The cat sat on the mat", "", "A dog ran in the park"]
    n = [len(sp.encode(normalize_for_lm(x), out_type=str)) for x in lines if x]
    log10_prob, tokens = lm.score_lines(lines)
    assert tokens == sum(n) + len(n)
    assert log10_prob == pytest.approx(-sum(k + 0.5 for k in n), abs=1e-4)
    # the page is scored as cc_net scores it: normalized whole (its lines run together), one
    # sentence of m pieces, m + 1 tokens
    page = "\n".join(lines)
    m = len(sp.encode(normalize_for_lm(page), out_type=str))
    assert lm.doc_score(page) == (pytest.approx(-(m + 0.5), abs=1e-4), m + 1)
    assert lm.doc_perplexity(page) == pytest.approx(10 ** ((m + 0.5) / (m + 1)), rel=1e-4)


def test_cutoffs_and_buckets(tmp_path: Path) -> None:
    values = [float(v) for v in range(1, 11)]  # 1..10
    lo, hi = exact_cutoffs(values)
    assert (lo, hi) == (3.0, 6.0)
    assert bucket_of(2.9, (lo, hi)) == "head"
    assert bucket_of(3.0, (lo, hi)) == "middle"
    assert bucket_of(5.9, (lo, hi)) == "middle"
    assert bucket_of(6.0, (lo, hi)) == "tail"  # cc_net: middle is below p60
    assert bucket_of(6.1, (lo, hi)) == "tail"
    cut = cutoffs_from_values({"en": values, "de": [5.0, 1.0, 9.0]})
    assert cut["de"] == (1.0, 5.0)
    # round trip through our JSON, and cc_net's cutoff.csv
    path = tmp_path / "cutoffs.json"
    path.write_text(json.dumps(dump_cutoffs(cut)))
    assert load_cutoffs(path) == cut
    csv = tmp_path / "cutoff.csv"
    rows = [",en,de"] + [f"{q},{q * 10.0},{q * 20.0}" for q in range(101)]
    csv.write_text("\n".join(rows))
    assert load_cutoffs(csv) == {"en": (300.0, 600.0), "de": (600.0, 1200.0)}
    step = Bucket({"en": (lo, hi)}, keep=("head", "middle"))
    docs = [doc(i, "t", language="en", perplexity=p) for i, p in enumerate((1.0, 5.0, 9.0))]
    out = list(run_steps([step], docs))
    assert [o.meta["bucket"] for o in out if isinstance(o, Document)] == ["head", "middle"]
    assert [o.reason for o in out if isinstance(o, Rejected)] == ["perplexity_tail"]


def test_doc_dedup_and_length() -> None:
    a = doc(2, "Same text — 2019 edition")
    b = doc(1, "same text 2020 edition")  # equal after normalization
    c = doc(3, "different")
    out = ExactDedupLocal()([a, b, c])
    assert doc_dedup_key(a) == doc_dedup_key(b) != doc_dedup_key(c)
    assert text_digest(a.text) == doc_dedup_key(a) and len(doc_dedup_key(a)) == 16
    assert isinstance(out[0], Rejected) and out[0].reason == "duplicate"
    assert out[0].doc.meta["duplicate_of"] == "d1"
    assert out[1] is b and out[2] is c
    step = MinLength(10)
    assert isinstance(step.process(doc(1, "short")), Rejected)
    assert step.process(doc(1, "long enough text")).text == "long enough text"


def test_hash_counter_caps_and_compacts() -> None:
    import os
    import random
    from collections import Counter

    from llama_data.pipeline.ccnet.lines import HashCounter, dedup_key

    rng = random.Random(0)
    keys = [dedup_key(os.urandom(8)) for _ in range(500)]
    counter, ref = HashCounter(buffer_limit=64), Counter()
    for _ in range(3000):
        k, n = rng.choice(keys), rng.randint(1, 3)
        counter.add(k, n)
        ref[k] += n
    assert dict(counter.items()) == {k: min(v, 2) for k, v in ref.items()}
    assert counter.nbytes() == 8 * len(ref)  # one uint64 per key (flag in the low bit)
    assert all(k[7] < 0x80 for k in keys)


def test_packed_shuffle_records_give_the_same_duplicates_as_the_rule() -> None:
    """Bundles -> shards -> reducers, as the Beam job runs them, against dedup_lines_local."""
    import random
    from collections import defaultdict

    from llama_data.pipeline.ccnet.lines import (
        LineKeyBuffer,
        dedup_key,
        distinct_keys,
        duplicated_keys,
        route_duplicates,
        unpack_keys,
    )

    rng = random.Random(3)
    pool = [f"line number {chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(300)]
    docs = [doc(i, "\n".join(rng.choices(pool, k=rng.randint(1, 12)))) for i in range(120)]
    shards = 7
    counts, pairs = defaultdict(list), defaultdict(list)
    for start in range(0, len(docs), 25):  # bundles of 25 documents
        buf = LineKeyBuffer()
        for d in docs[start : start + 25]:
            buf.add_document(
                d.id.encode().ljust(8, b"\0"),
                distinct_keys(dedup_key(h) for h in doc_hashes(d.text)),
            )
        cs, ps = buf.drain(shards)
        for s, v in cs:
            counts[s].append(v)
        for s, v in ps:
            pairs[s].append(v)
    routed: dict[bytes, set[bytes]] = defaultdict(set)
    for s in range(shards):
        dup = duplicated_keys(counts[s])
        for chunk in pairs[s]:
            for dkey, packed in route_duplicates(dup, chunk):
                routed[dkey] |= unpack_keys(packed)
    expected = dedup_lines_local(docs)
    for d, exp in zip(docs, expected, strict=True):
        got = remove_lines(d, routed.get(d.id.encode().ljust(8, b"\0"), set()))
        assert got.text == (exp.doc.text if isinstance(exp, Rejected) else exp.text)
