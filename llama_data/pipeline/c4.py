"""C4: the public release reader and C4's rules for re-deriving it from CommonCrawl.

The rules are those of the C4 paper (Raffel et al., 2020, §2.2) as its reference implementation,
TensorFlow Datasets' `c4.py` and `c4_utils.py` (4.9.10), applies them, in its order, so that
`--from-cc` reproduces C4 and not a cousin:

1. pages longer than 190,000 characters are dropped (`is_valid_length`): `page_too_long`;
2. one page per normalized URL, the newest (`normalize_url`, `select_newest_page`):
   `duplicate_url` (done by the Beam stage, a global shuffle);
3. line rules (`clean_page`): lines with a word over 1000 characters, lines not ending in a
   terminal punctuation mark (or ending in an ellipsis) once citation markers are removed, lines
   with fewer than 5 words, lines containing "javascript" and cookie / terms / privacy-policy
   lines are dropped; "lorem ipsum" or a curly bracket in a kept line rejects the page, as do
   fewer than 3 sentences left;
4. every line seen on more than one page is kept on one page only, and repeats inside a page are
   dropped (`remove_duplicate_text`); a page left empty or with fewer than 3 sentences is
   rejected (done by the Beam stage, two shuffles);
5. English by `langdetect` with probability >= 0.99 (`detect_english`), on the page as the
   rules and the dedup left it: `lang`;
6. a word of the LDNOOBW list, whole words (`get_badwords_filter_fn`): `badwords`.

Each rule is a named reason: line rules are counters (`line_no_endmark`, ...), page rules are
rejection reasons. docs/c4.md names the reference function of each and every deliberate
difference.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from llama_data.pipeline.ccnet.langid import LanguageId
from llama_data.pipeline.document import DeadLetter, Document, Outcome, Rejected
from llama_data.pipeline.io import (
    JsonLinesReader,
    base_name,
)
from llama_data.pipeline.steps import Step

SOURCE = "c4"

# --- the reference implementation's constants -------------------------------------------------
END_MARKS = (".", "?", "!", '"')
ELLIPSIS = "..."
CITATION_RE = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")
POLICY_SUBSTRINGS = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)
MIN_WORDS_PER_LINE = 5
MIN_SENTENCES = 3
MAX_WORD_LENGTH = 1000
MAX_PAGE_LENGTH = 190_000  # characters (`is_valid_length`'s 1.9e5)
LANG_THRESHOLD = 0.99  # a langdetect probability (C4's `detect_english`)
# lid.176's English score is no probability on langdetect's scale (at 0.99 it keeps 1 of the
# Common Crawl sample's 25 English WET pages). Calibrated on the sample (WET and WARC, 218 pages
# after the rules and the line dedup; docs/c4.md, "Language"): the 53 pages langdetect keeps at
# 0.99 score 0.872-0.995 for English, and lid.176 labels none of the 165 it rejects English, so
# every threshold up to 0.872 agrees with langdetect on all 218; 0.8 leaves a margin below the
# lowest English score. tests/test_c4.py checks the agreement on the corpus.
LID176_THRESHOLD = 0.8
LANG_MODELS = ("langdetect", "lid176")
SPAN_SENTENCES = 3
TEXT_DEDUP_MODES = ("lines", "spans", "none")


def default_badwords_path() -> str:
    """The LDNOOBW English list shipped with the package (CC BY 4.0, see its NOTICE.md)."""
    return str(resources.files("llama_data") / "data" / "badwords" / "ldnoobw-en.txt")


# --- sentences ----------------------------------------------------------------------------------
# A small Punkt-like splitter: C4 used NLTK's Punkt; we keep no NLTK dependency and split after
# . ! ? (with closing quotes/brackets) before whitespace, except after common abbreviations and
# single initials, which is what makes "Dr. Smith" or "J. R. R. Tolkien" one sentence.
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "mt",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "cf",
        "al",
        "fig",
        "no",
        "vol",
        "pp",
        "ed",
        "eds",
        "inc",
        "ltd",
        "co",
        "corp",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "u.s",
        "u.k",
        "approx",
        "dept",
        "est",
        "gen",
        "gov",
        "rev",
    ]
)
_SENT_END_RE = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s+)")


def split_sentences(line: str) -> list[str]:
    """Split one line into sentences (no sentence spans two lines: C4 lines are paragraphs)."""
    out: list[str] = []
    start = 0
    for m in _SENT_END_RE.finditer(line):
        end = m.end()
        if line[m.start()] == ".":
            words = line[start : m.start()].split()
            last = words[-1].lower().lstrip("(\"'") if words else ""
            if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()):
                continue
        sentence = line[start:end].strip()
        if sentence:
            out.append(sentence)
        start = end
    tail = line[start:].strip()
    if tail:
        out.append(tail)
    return out


def count_sentences(text: str) -> int:
    return sum(len(split_sentences(line)) for line in text.split("\n"))


# --- line and page rules ------------------------------------------------------------------------
@dataclass(frozen=True)
class CleanResult:
    """The cleaned text (None when the page is rejected), its reason, and line-rule counts."""

    text: str | None
    reason: str | None
    line_drops: dict[str, int] = field(default_factory=dict)
    original_nlines: int = 0
    nlines: int = 0


def clean_page(
    text: str,
    min_words_per_line: int = MIN_WORDS_PER_LINE,
    min_sentences: int = MIN_SENTENCES,
    max_word_length: int = MAX_WORD_LENGTH,
) -> CleanResult:
    """C4's line rules, then its lorem-ipsum, curly-bracket and sentence-count page rules.

    In the reference's order (`clean_page`): each line is stripped; a word longer than
    `max_word_length` drops it before citation markers are removed; the end-mark test is made
    on the line without its markers (and without stripping it again, so "Text. [1]" ends in a
    space and is dropped, as in the reference). Blank lines are skipped without a counter: the
    reference's WET reader never passes them on.
    """
    drops: dict[str, int] = {}
    kept: list[str] = []
    lines = text.splitlines()
    sentences = 0

    def drop(reason: str) -> None:
        drops[reason] = drops.get(reason, 0) + 1

    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if any(len(w) > max_word_length for w in line.split()):
            drop("line_too_long_word")
            continue
        line = CITATION_RE.sub("", line)
        if not line.endswith(END_MARKS) or line.endswith(ELLIPSIS):
            drop("line_no_endmark")
            continue
        if len(line.split()) < min_words_per_line:
            drop("line_too_few_words")
            continue
        lower = line.lower()
        if "lorem ipsum" in lower:
            return CleanResult(None, "lorem_ipsum", drops, len(lines))
        if "javascript" in lower:
            drop("line_javascript")
            continue
        if "{" in line:
            return CleanResult(None, "curly_bracket", drops, len(lines))
        if any(p in lower for p in POLICY_SUBSTRINGS):
            drop("line_policy")
            continue
        sentences += len(split_sentences(line))
        kept.append(line)
    if sentences < min_sentences:
        return CleanResult(None, "too_few_sentences", drops, len(lines), len(kept))
    return CleanResult("\n".join(kept).strip(), None, drops, len(lines), len(kept))


def page_too_long(text: str, max_length: int = MAX_PAGE_LENGTH) -> bool:
    """`is_valid_length`'s rule: more than `max_length` characters (on the page as read)."""
    return len(text) > max_length


# --- URL dedup ----------------------------------------------------------------------------------
_SCHEME_RE = re.compile(r"https?://(www\.)?")
_TRACKING_RE = re.compile(r"\?(utm_|ref|feed).*")


def normalize_url(url: str) -> str:
    """The reference's `normalize_url`: scheme and `www.` removed (everywhere in the URL, as its
    unanchored pattern does), a query starting with utm_/ref/feed cut, trailing slashes removed."""
    return _TRACKING_RE.sub("", _SCHEME_RE.sub("", url)).rstrip("/")


def url_key(doc: Document) -> bytes:
    """The URL-dedup key: 16-byte BLAKE2b of the normalized URL. A page without a URL keys on its
    id instead (the reference drops such pages when reading; here they are never merged)."""
    url = str(doc.meta.get("url") or "")
    value = "url:" + normalize_url(url) if url else "id:" + doc.id
    return hashlib.blake2b(value.encode("utf-8"), digest_size=16).digest()


_NEWEST_FIRST = str.maketrans({chr(c): chr(0x10FFFF - c) for c in range(0x80)})


def newest_first(doc: Document) -> tuple[str, str, str]:
    """Order among pages of one URL: the newest `date` first (`select_newest_page`), then the
    smallest (id, source), where the reference keeps whichever of equal dates came first.

    Dates are ISO 8601 text (WARC-Date); each ASCII character is mapped to a descending one and a
    maximal character closes the string, so ascending order of the result is descending order of
    the dates."""
    date = str(doc.meta.get("date") or "")
    return (date.translate(_NEWEST_FIRST) + "\U0010ffff", doc.id, doc.source)


# --- line dedup ---------------------------------------------------------------------------------
def line_key(line: str) -> bytes:
    """The key of a line in the line dedup: MD5 of the stripped, lowercased line (the
    reference's `_hash_text(line.strip().lower())`, as bytes rather than hex)."""
    return hashlib.md5(line.strip().lower().encode("utf-8")).digest()


def url_rank(url: str) -> str:
    """Which page keeps a line seen on several: the one whose URL has the smallest MD5 hex
    (the reference's `Top.PerKey(1, key=_hash_text, reverse=True)` over URLs: hashed "to avoid
    biasing by domain")."""
    return hashlib.md5(url.encode("utf-8")).hexdigest()


LineOccurrence = tuple[str, str]  # (url rank, document id)


def page_line_keys(text: str) -> list[bytes]:
    """The distinct line keys of a page, in order."""
    return list(dict.fromkeys(line_key(line) for line in text.split("\n")))


def line_occurrences(doc: Document) -> Iterator[tuple[bytes, LineOccurrence]]:
    """(line key, (url rank, id)) for each distinct line of a page: what the dedup shuffles."""
    occ = (url_rank(str(doc.meta.get("url") or "")), doc.id)
    for key in page_line_keys(doc.text):
        yield key, occ


def iter_losers(occurrences: Iterable[Any]) -> Iterator[Any]:
    """All occurrences of one key but the winner, the smallest.

    Smallest, not first seen: the result must not depend on arrival order or worker count. Two
    passes over a re-iterable (Beam's grouped values are), so a key repeated on a million pages
    costs constant memory, not a sorted list.
    """
    winner = None
    n = 0
    for raw in occurrences:
        occ = tuple(raw)
        n += 1
        if winner is None or occ < winner:
            winner = occ
    if n < 2:
        return
    skipped = False
    for raw in occurrences:
        occ = tuple(raw)
        if occ == winner and not skipped:
            skipped = True
            continue
        yield occ


@dataclass(frozen=True)
class LineCut:
    """A page after the line dedup: its text and how many lines went, and why."""

    text: str
    global_duplicates: int
    local_duplicates: int


def remove_lines(text: str, losing: Iterable[bytes]) -> LineCut:
    """Drop the lines whose key another page keeps, and repeats of a line inside the page
    (`_remove_lines_from_text`)."""
    lose = set(losing)
    kept: list[str] = []
    seen: set[bytes] = set()
    n_global = n_local = 0
    for line in text.split("\n"):
        key = line_key(line)
        if key in lose:
            n_global += 1
        elif key in seen:
            n_local += 1
        else:
            kept.append(line)
            seen.add(key)
    return LineCut("\n".join(kept), n_global, n_local)


def apply_line_cuts(
    doc: Document, losing: Iterable[bytes], min_sentences: int = MIN_SENTENCES
) -> tuple[Outcome, LineCut]:
    """A page after the line dedup; rejected as `dedup_empty` when nothing is left, or
    `dedup_too_few_sentences` when fewer than `min_sentences` sentences are."""
    cut = remove_lines(doc.text, losing)
    removed = cut.global_duplicates + cut.local_duplicates
    out = (
        doc
        if not removed
        else doc.with_text(
            cut.text, duplicate_lines=removed, nlines=cut.text.count("\n") + 1 if cut.text else 0
        )
    )
    if not cut.text:
        return Rejected(out, "dedup_empty"), cut
    if min_sentences and removed and count_sentences(cut.text) < min_sentences:
        return Rejected(out, "dedup_too_few_sentences"), cut
    return out, cut


def dedup_lines(docs: Sequence[Document]) -> dict[str, set[bytes]]:
    """In-memory form of the line dedup (the Beam stage does the same with two shuffles).

    Returns, per document id, the keys of the lines it loses to another page."""
    by_key: dict[bytes, list[LineOccurrence]] = {}
    for doc in docs:
        for key, occ in line_occurrences(doc):
            by_key.setdefault(key, []).append(occ)
    cuts: dict[str, set[bytes]] = {}
    for key, occs in by_key.items():
        for _, doc_id in iter_losers(occs):
            cuts.setdefault(doc_id, set()).add(key)
    return cuts


# --- bad words ----------------------------------------------------------------------------------
def load_badwords(path: str) -> list[str]:
    """One word or phrase a line (LDNOOBW's format), stripped and lowercased; blank lines and `#`
    comments skipped (in the reference a blank line would be an empty alternative, matching any
    two neighbouring non-word characters)."""
    with open(path, encoding="utf-8") as fh:
        words = [w.strip().lower() for w in fh]
    return sorted({w for w in words if w and not w.startswith("#")})


def badwords_regex(words: Sequence[str]) -> re.Pattern[str] | None:
    """The reference's pattern for a spaced language (`get_badwords_filter_fn`): any listed word,
    escaped, between a non-word character (or the start of the page) and a non-word character
    (or its end), searched in the lowercased page."""
    if not words:
        return None
    alternation = "|".join(re.escape(w) for w in words)
    return re.compile(rf"(?:\W|^)({alternation})(?:\W|$)")


_WORD_RUN_RE = re.compile(r"\w+")


class BadWordsMatcher:
    """`badwords_regex`'s rule, fast: a page's runs of word characters are looked up in a set.

    A list entry made of word characters only ("porn") matches exactly when it is one of the
    page's maximal runs of word characters (`\\w`, Unicode, so digits and "_" too), which is the
    pattern's rule. An entry with spaces or symbols ("2 girls 1 cup", "s&m") goes through its own
    copy of the pattern, and only when all its word runs are among the page's (each word run of
    a match is a maximal run of the page, being flanked by non-word characters). ~10x the
    alternation on web pages.
    """

    def __init__(self, words: Sequence[str]) -> None:
        self.single = frozenset(w for w in words if _WORD_RUN_RE.fullmatch(w))
        self.complex = [
            (frozenset(_WORD_RUN_RE.findall(w)), badwords_regex([w]))
            for w in words
            if not _WORD_RUN_RE.fullmatch(w)
        ]

    def search(self, lowered: str) -> bool:
        runs = set(_WORD_RUN_RE.findall(lowered))
        if not runs.isdisjoint(self.single):
            return True
        return any(need <= runs and rx.search(lowered) for need, rx in self.complex)


# --- language -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LangDecision:
    """langdetect's verdict on a page: its best language and probability, and `why` it is
    rejected (None when kept): `exception`, `no_predictions`, `low_confidence`,
    `ignored_language` (the reference's counters, tested in its order)."""

    language: str | None
    probability: float
    why: str | None


_LANGDETECT_LOCK = threading.Lock()


def _langdetect():  # noqa: ANN202 - the module
    """langdetect, seeded: `langdetect-rs`, a Rust port that returns langdetect 1.0.9's results
    bit for bit (checked on every page of the corpus sample by tests/conformance/test_c4.py)."""
    import langdetect_rs

    with _LANGDETECT_LOCK:
        langdetect_rs.DetectorFactory.seed = 0
    return langdetect_rs


def detect_language(text: str, lang: str = "en", threshold: float = LANG_THRESHOLD) -> LangDecision:
    """C4's `detect_english` with langdetect, seeded with 0 so that it is deterministic."""
    ld = _langdetect()
    try:
        predictions = ld.detect_langs(text)
    except ld.LangDetectException:
        return LangDecision(None, 0.0, "exception")
    if not predictions:
        return LangDecision(None, 0.0, "no_predictions")
    best = predictions[0]
    if best.prob < threshold:
        return LangDecision(best.lang, best.prob, "low_confidence")
    if best.lang != lang:
        return LangDecision(best.lang, best.prob, "ignored_language")
    return LangDecision(best.lang, best.prob, None)


# --- three-sentence spans (the paper's wording; `text_dedup = "spans"`) ----------------------
def _sentences_with_lines(text: str) -> list[tuple[int, str]]:
    return [(i, s) for i, line in enumerate(text.split("\n")) for s in split_sentences(line)]


def span_key(sentences: Sequence[str]) -> int:
    """8-byte key of a span: sha1 of its sentences with whitespace collapsed (exact otherwise)."""
    joined = "\x1f".join(" ".join(s.split()) for s in sentences)
    return int.from_bytes(hashlib.sha1(joined.encode("utf-8")).digest()[:8], "big")


def span_keys(text: str, span: int = SPAN_SENTENCES) -> list[int]:
    """Key of every run of `span` consecutive sentences (position i covers sentences i..i+span-1)."""
    sents = [s for _, s in _sentences_with_lines(text)]
    return [span_key(sents[i : i + span]) for i in range(len(sents) - span + 1)]


def remove_spans(text: str, positions: Iterable[int], span: int = SPAN_SENTENCES) -> str:
    """Cut the sentences of the spans starting at `positions`; emptied lines disappear."""
    drop: set[int] = set()
    for p in positions:
        drop.update(range(p, p + span))
    lines: dict[int, list[str]] = {}
    order: list[int] = []
    for idx, (line_no, sentence) in enumerate(_sentences_with_lines(text)):
        if line_no not in lines:
            lines[line_no] = []
            order.append(line_no)
        if idx not in drop:
            lines[line_no].append(sentence)
    return "\n".join(" ".join(lines[n]) for n in order if lines[n])


SpanOccurrence = tuple[str, int]  # (document id, span position)


def iter_span_losers(occurrences: Iterable[SpanOccurrence]) -> Iterator[SpanOccurrence]:
    """All occurrences of one span key but the winner, the smallest (doc id, position)."""
    return iter_losers(occurrences)


def span_losers(occurrences: Iterable[SpanOccurrence]) -> list[SpanOccurrence]:
    """`iter_span_losers` sorted, for tests and small inputs."""
    return sorted(iter_span_losers(list(occurrences)))


def dedup_spans(docs: Sequence[Document], span: int = SPAN_SENTENCES) -> dict[str, list[int]]:
    """In-memory form of the span dedup (the Beam job does the same with a shuffle by key).

    Returns, per document id, the span positions to cut.
    """
    by_key: dict[int, list[SpanOccurrence]] = {}
    for doc in docs:
        for pos, key in enumerate(span_keys(doc.text, span)):
            by_key.setdefault(key, []).append((doc.id, pos))
    cuts: dict[str, list[int]] = {}
    for occ in by_key.values():
        if len(occ) > 1:
            for doc_id, pos in span_losers(occ):
                cuts.setdefault(doc_id, []).append(pos)
    return {k: sorted(v) for k, v in cuts.items()}


# --- steps --------------------------------------------------------------------------------------
class C4LengthStep(Step):
    """`is_valid_length`: a page longer than `max_length` characters is rejected (before the
    URL dedup, as in the reference)."""

    name = "c4_length"

    def __init__(self, max_length: int = MAX_PAGE_LENGTH) -> None:
        self.max_length = max_length

    def process(self, doc: Document) -> Outcome:
        if page_too_long(doc.text, self.max_length):
            return self.reject(doc, "page_too_long")
        return doc


class C4CleanStep(Step):
    """C4's line rules and lorem-ipsum / curly-bracket / sentence-count page rules."""

    name = "c4_clean"

    def __init__(
        self,
        min_words_per_line: int = MIN_WORDS_PER_LINE,
        min_sentences: int = MIN_SENTENCES,
        max_word_length: int = MAX_WORD_LENGTH,
    ) -> None:
        self.min_words_per_line = min_words_per_line
        self.min_sentences = min_sentences
        self.max_word_length = max_word_length

    def process(self, doc: Document) -> Outcome:
        res = clean_page(
            doc.text, self.min_words_per_line, self.min_sentences, self.max_word_length
        )
        for reason, n in res.line_drops.items():
            self.count(reason, n)
        if res.text is None:
            return Rejected(doc, res.reason or "c4_clean")
        return doc.with_text(res.text, original_nlines=res.original_nlines, nlines=res.nlines)


class BadWordsStep(Step):
    """Reject a page containing any word of a list (C4: LDNOOBW English), whole words."""

    name = "c4_badwords"
    _matcher: BadWordsMatcher | None = None

    def __init__(self, path: str | None = None) -> None:
        self.path = path or default_badwords_path()

    def setup(self) -> None:
        self._matcher = BadWordsMatcher(load_badwords(self.path))

    def process(self, doc: Document) -> Outcome:
        if self._matcher is None:
            self.setup()
        assert self._matcher is not None
        if self._matcher.search(doc.text.lower()):
            return Rejected(doc, "badwords")
        return doc


class LangDetectStep(Step):
    """C4's language rule: `langdetect`'s best language is `lang` with probability >=
    `threshold` (seeded, so deterministic). Adds `language` and `language_score`; rejects as
    `lang`, counting why (`c4_lang.low_confidence`, `c4_lang.ignored_language.<lang>`, ...).
    A page in another language is kept in `rejected/` without its text, as the ccnet stage does.
    """

    name = "c4_lang"

    def __init__(self, lang: str = "en", threshold: float = LANG_THRESHOLD) -> None:
        self.lang = lang
        self.threshold = threshold

    def setup(self) -> None:
        _langdetect()

    def process(self, doc: Document) -> Outcome:
        d = detect_language(doc.text, self.lang, self.threshold)
        out = doc.with_text(doc.text, language=d.language, language_score=round(d.probability, 6))
        if d.why is None:
            self.count(f"kept.{d.language}")
            return out
        if d.why == "ignored_language":
            self.count(f"ignored_language.{d.language}")
            return Rejected(out.with_text(""), "lang")
        self.count(d.why)
        return Rejected(out, "lang")


def language_step(
    lang: str = "en", threshold: float | None = None, model: str = "langdetect"
) -> Step:
    """C4's language rule with `model`: `langdetect` (C4's, at 0.99 by default) or `lid176`
    (fastText lid.176, the ccnet stage's step, at the calibrated `LID176_THRESHOLD`)."""
    if model == "langdetect":
        return LangDetectStep(lang, LANG_THRESHOLD if threshold is None else threshold)
    if model == "lid176":
        return LanguageId(
            languages=(lang,), min_score=LID176_THRESHOLD if threshold is None else threshold
        )
    raise ValueError(f"unknown language model {model!r} (one of {', '.join(LANG_MODELS)})")


def apply_span_cuts(
    doc: Document, positions: Sequence[int], min_sentences: int = MIN_SENTENCES
) -> Outcome:
    """Cut a document's duplicated spans; reject it when fewer than `min_sentences` remain."""
    if not positions:
        return doc
    text = remove_spans(doc.text, positions)
    cut = doc.with_text(
        text, duplicate_spans=len(positions), nlines=text.count("\n") + 1 if text else 0
    )
    if count_sentences(text) < min_sentences:
        return Rejected(cut, "dedup_too_few_sentences")
    return cut


# --- the public release -------------------------------------------------------------------------
class C4JsonReader(JsonLinesReader):
    """The public C4 release (`c4-<split>.<n>-of-<m>.json.gz`): one JSON object a line with
    `text`, `url`, `timestamp`. Documents are kept unchanged; the id is `<file>:<line>`, stable
    across reruns because the release files are immutable.
    """

    name = "c4"

    def __init__(self, source: str = SOURCE) -> None:
        super().__init__(source)

    def file_stem(self, path: str) -> str:
        fname = base_name(path)
        for suffix in (".json.gz", ".json", ".jsonl.gz", ".jsonl"):
            if fname.endswith(suffix):
                return fname[: -len(suffix)]
        return fname

    def _parse(self, line: bytes, path: str, fname: str, lineno: int) -> Document | DeadLetter:
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return DeadLetter(
                file=path, offset=lineno, reason="bad_json", error=f"{type(exc).__name__}: {exc}"
            )
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            return DeadLetter(
                file=path, offset=lineno, reason="missing_text", error="no string 'text' field"
            )
        meta: dict[str, Any] = {"url": obj.get("url"), "timestamp": obj.get("timestamp")}
        meta.update({k: v for k, v in obj.items() if k not in ("text", "url", "timestamp")})
        return Document(id=f"{fname}:{lineno}", source=self.source, text=obj["text"], meta=meta)
