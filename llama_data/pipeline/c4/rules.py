"""C4's page rules, as TFDS's `c4_utils.py` (4.9.10) applies them: length, line rules and the
page rules they imply, sentences, bad words and language, and the steps that apply them.

Each rule is a named reason: line rules are counters (`line_no_endmark`, ...), page rules are
rejection reasons (the order of all of them is in the package's docstring).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources

from llama_data.pipeline.ccnet.langid import LanguageId
from llama_data.pipeline.document import Document, Outcome, Rejected
from llama_data.pipeline.steps import Step

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

    # Exact shortcuts (per-line Python work was most of the stage): no word is longer than its
    # line; every citation marker starts with "["; and the sentence count only has to reach
    # `min_sentences`, so lines after that are not split into sentences.
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if len(line) > max_word_length and any(len(w) > max_word_length for w in line.split()):
            drop("line_too_long_word")
            continue
        if "[" in line:
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
        if sentences < min_sentences:
            sentences += len(split_sentences(line))
        kept.append(line)
    if sentences < min_sentences:
        return CleanResult(None, "too_few_sentences", drops, len(lines), len(kept))
    return CleanResult("\n".join(kept).strip(), None, drops, len(lines), len(kept))


def page_too_long(text: str, max_length: int = MAX_PAGE_LENGTH) -> bool:
    """`is_valid_length`'s rule: more than `max_length` characters (on the page as read)."""
    return len(text) > max_length


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
