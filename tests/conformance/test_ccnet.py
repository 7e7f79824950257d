"""cc_net (`cc-net` 1.0.0 from PyPI) beside our CCNet steps, on every line and page of the sample
corpus: the dedup normalization and its SHA-1 line hashes, the LM normalization, the two-pass
line dedup (duplicates across pages, repeats inside a page), the page perplexity and buckets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.references import REPO
from llama_data.pipeline.ccnet.buckets import bucket_of
from llama_data.pipeline.ccnet.langid import LanguageId, LidModel, lid_model_path
from llama_data.pipeline.ccnet.lines import dedup_lines_local
from llama_data.pipeline.ccnet.perplexity import LanguageModel
from llama_data.pipeline.ccnet.train_lm import TrainLmSettings, train_lm
from llama_data.pipeline.document import Document, Rejected
from llama_data.pipeline.normalize import (
    _reordering_chars,
    hash_bytes,
    normalize_for_lm,
    normalize_line,
)
from llama_data.pipeline.warc import WetReader

CORPUS = REPO.parent / "shared" / "corpus"

# Cases the corpus may lack, where a per-character shortcut could part from cc_net's regexes.
EDGE_CASES = [
    "",
    "   ",
    "\t\x0b\x1c ",
    "Café Müller",
    "cafe muller",
    "ΟΔΥΣΣΕΥΣ ΣΟΦΟΣ",  # final sigma: lowercase on the whole line
    "İstanbul",  # lowercases to two characters
    "Ｐｒｉｃｅ：１２０ ％",
    "٣ apples ² ½ ①",  # Nd digits become 0, other numerals stay
    "«Bonjour» – dit-il… ¿Qué? ¡Sí! • · ‘quoted’ „de“",
    "Tab\tand\x00nul\u200b\x85\xa0nbsp",
    "한국어 텍스트",  # Hangul decomposes under NFD
    "e\u0301\u0327 a\u0327\u0301",  # combining marks in either order
    "\U0001d165\u0301\U0001d16d x",  # marks that are not Mn, reordered by NFD
    "a\u302e\u0301\u302f",
    "  trailing control \x01",
    "—",
    "line one\nline two\r\nline three",
    "\ufeffbom start",
]


def _pages() -> list[tuple[str, str]]:
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is absent: the cc_net comparison runs on its real pages")
    cc = CORPUS / "commoncrawl"
    pages = []
    for name in ("pages.warc.wet.gz", "ccnet-sample.warc.wet"):
        for rec in WetReader("commoncrawl").read_path(str(cc / name)):
            if isinstance(rec, Document):
                pages.append((rec.id, rec.text))
    assert len(pages) > 100
    return pages


def _langid_lines() -> list[str]:
    return [
        line
        for path in sorted((CORPUS / "langid").glob("*.txt"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def _lines(pages: list[tuple[str, str]]) -> list[str]:
    lines = [line for _, text in pages for line in text.split("\n")]
    return list(dict.fromkeys([*lines, *_langid_lines(), *EDGE_CASES, *_reordering_chars()]))


def test_normalize_for_dedup_and_line_hashes(reference, table) -> None:  # noqa: ANN001
    pages = _pages()
    lines = _lines(pages)
    cc_net = reference("cc_net")
    theirs = cc_net.call("cc_net", "normalize_for_dedup", lines)
    row = table.compare(
        "cc_net",
        "normalize_for_dedup (lines)",
        (
            (f"line {i}", x, normalize_line(x), t)
            for i, (x, t) in enumerate(zip(lines, theirs, strict=True))
        ),
    )
    assert row.unexplained == 0, row.first_difference
    # cc_net hashes no empty page (`compute_hashes` returns None), and neither reader gives one
    texts = [text for _, text in pages] + [x for x in EDGE_CASES if x]
    theirs = cc_net.call("cc_net", "line_hashes", texts)
    ours = [[hash_bytes(normalize_line(x)).hex() for x in t.split("\n")] for t in texts]
    row = table.compare(
        "cc_net",
        "SHA-1 line hashes (pages)",
        (
            (f"page {i}", t[:80], o, h)
            for i, (t, o, h) in enumerate(zip(texts, ours, theirs, strict=True))
        ),
    )
    assert row.unexplained == 0, row.first_difference


def test_normalize_before_sentencepiece(reference, table) -> None:  # noqa: ANN001
    pages = _pages()
    cases = [text for _, text in pages] + _lines(pages)
    theirs = reference("cc_net").call("cc_net", "normalize", cases)
    row = table.compare(
        "cc_net",
        "normalize (pages and lines)",
        (
            (f"case {i}", x, normalize_for_lm(x), t)
            for i, (x, t) in enumerate(zip(cases, theirs, strict=True))
        ),
    )
    assert row.unexplained == 0, row.first_difference


def _groups(pages: list[tuple[str, str]]) -> Iterator[list[str]]:
    texts = [text for _, text in pages]
    yield texts  # the whole sample as one dedup scope
    yield texts[:40]
    yield [  # repeats inside a page, blank lines in one page only, boilerplate in three
        "Alpha first\nSubscribe now\nAlpha second",
        "SUBSCRIBE NOW…\nBeta text\nBeta text\n\nBeta end",
        "Gamma\n  subscribe now  \nGamma end",
        "Delta only\nDelta twice\nDelta twice",
        "menu\nhome",
        "Menu\nHome",
    ]


def test_two_pass_line_dedup(reference, table) -> None:  # noqa: ANN001
    groups = list(_groups(_pages()))
    theirs = reference("cc_net").call("cc_net", "dedup_two_pass", groups)
    cases = []
    for g, (texts, kept) in enumerate(zip(groups, theirs, strict=True)):
        docs = [Document(id=f"d{i}", source="cc", text=t) for i, t in enumerate(texts)]
        ours = [None if isinstance(o, Rejected) else o.text for o in dedup_lines_local(docs)]
        cases += [
            (f"group {g} doc {i}", texts[i][:80], o, t)
            for i, (o, t) in enumerate(zip(ours, kept, strict=True))
        ]
    row = table.compare("cc_net", "two-pass line dedup (documents)", cases)
    assert row.unexplained == 0, row.first_difference


@pytest.fixture(scope="module")
def english_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small SentencePiece + KenLM 5-gram trained by `train-lm` on real English sentences."""
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is absent")
    tmp = tmp_path_factory.mktemp("lm")
    docs = tmp / "en.jsonl"
    lines = (CORPUS / "langid" / "en.txt").read_text(encoding="utf-8").splitlines()
    docs.write_text("".join(json.dumps({"text": x, "language": "en"}) + "\n" for x in lines))
    train_lm([str(docs)], tmp / "lm", TrainLmSettings(lang="en", vocab_size=2000))
    return tmp / "lm"


def test_page_perplexity_and_buckets(reference, table, english_lm: Path) -> None:  # noqa: ANN001
    texts = [text for _, text in _pages()] + [x for x in EDGE_CASES if normalize_for_lm(x)]
    params = {
        "lang": "en",
        "sp_model": str(english_lm / "en.sp.model"),
        "lm_model": str(english_lm / "en.arpa.bin"),
    }
    theirs = reference("cc_net").call("cc_net", "doc_perplexity", texts, **params)
    model = LanguageModel(english_lm, "en")
    ours = [round(model.doc_perplexity(t), 1) for t in texts]
    row = table.compare(
        "cc_net",
        "page perplexity (mine.py: sp normalize=True, DocLM)",
        (
            (f"page {i}", t[:80], o, p)
            for i, (t, o, p) in enumerate(zip(texts, ours, theirs, strict=True))
        ),
    )
    assert row.unexplained == 0, row.first_difference

    cutoffs = (
        round(sorted(ours)[len(ours) * 3 // 10], 1),
        round(sorted(ours)[len(ours) * 6 // 10], 1),
    )
    probes = sorted({*ours, *cutoffs, cutoffs[0] - 0.1, cutoffs[1] + 0.1, 0.0})
    theirs = reference("cc_net").call("cc_net", "bucket", probes, cutoffs=list(cutoffs))
    row = table.compare(
        "cc_net",
        "perplexity buckets (PerplexityBucket)",
        ((f"ppl {p}", p, bucket_of(p, cutoffs), b) for p, b in zip(probes, theirs, strict=True)),
    )
    assert row.unexplained == 0, row.first_difference


LID_DECISION = (
    "newlines become spaces, not nothing, and a page is cut at 10,000 characters "
    "(docs/commoncrawl.md, step 3)"
)


def test_language_id(reference, table) -> None:  # noqa: ANN001
    """lid.176 through the kernel equals cc_net's Classifier on cc_net's own page input (label
    and float score); on a whole page our step differs only by how the page is put on one line,
    which each difference is checked to come from."""
    texts = [text for _, text in _pages() if text.strip()]
    theirs = reference("cc_net").call("cc_net", "language_id", texts, model=str(lid_model_path()))
    model = LidModel(lid_model_path())
    assert model.kernel is not None, "the ftlid kernel is not built"
    on_their_input = model.predict([t.replace("\n", "") for t in texts])
    row = table.compare(
        "cc_net",
        "lid.176 prediction (split_by_lang.Classifier.predict, its page input)",
        (
            (f"page {i}", t[:80], list(o), r["predict"])
            for i, (t, o, r) in enumerate(zip(texts, on_their_input, theirs, strict=True))
        ),
    )
    assert row.unexplained == 0, row.first_difference

    step = LanguageId()
    outcomes = [step.process(Document(str(i), "cc", t, {})) for i, t in enumerate(texts)]
    ours = [o.doc if isinstance(o, Rejected) else o for o in outcomes]  # low scores too
    same_input = {
        t: (list(o), r["predict"]) for t, o, r in zip(texts, on_their_input, theirs, strict=True)
    }

    def explain(text: str, _ours: object, _theirs: object) -> str | None:
        mine, cc = same_input[text]
        return LID_DECISION if mine == cc else None

    row = table.compare(
        "cc_net",
        "page language (split_by_lang.Classifier.do)",
        (
            (f"page {i}", t, o.meta["language"], r["language"])
            for i, (t, o, r) in enumerate(zip(texts, ours, theirs, strict=True))
        ),
        explain=explain,
    )
    assert row.unexplained == 0, row.first_difference
