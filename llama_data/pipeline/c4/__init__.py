"""C4: the public release reader (`reader`) and C4's rules for re-deriving it from CommonCrawl.

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

Modules: `rules` (rules 1, 3, 5 and 6, and their steps), `dedup` (the keys and per-group
functions of rules 2 and 4, and the paper's three-sentence spans), `reader` (the public release),
`schema` (the columns of both forms). The names below keep the single namespace the stage and
the tests use (`c4.clean_page`, `c4.url_key`); other code imports from the module.
"""

from llama_data.pipeline.c4.dedup import (
    TEXT_DEDUP_MODES,
    apply_line_cuts,
    apply_span_cuts,
    dedup_lines,
    dedup_spans,
    iter_losers,
    iter_span_losers,
    line_key,
    line_occurrences,
    newest_first,
    normalize_url,
    page_line_keys,
    remove_lines,
    span_keys,
    span_losers,
    url_key,
    url_rank,
)
from llama_data.pipeline.c4.reader import SOURCE, C4JsonReader
from llama_data.pipeline.c4.rules import (
    END_MARKS,
    LANG_MODELS,
    LANG_THRESHOLD,
    LID176_THRESHOLD,
    MAX_PAGE_LENGTH,
    MAX_WORD_LENGTH,
    MIN_SENTENCES,
    MIN_WORDS_PER_LINE,
    BadWordsMatcher,
    BadWordsStep,
    C4CleanStep,
    C4LengthStep,
    CleanResult,
    LangDetectStep,
    badwords_regex,
    clean_page,
    default_badwords_path,
    detect_language,
    language_step,
    load_badwords,
    page_too_long,
    split_sentences,
)

__all__ = [
    "END_MARKS",
    "LANG_MODELS",
    "LANG_THRESHOLD",
    "LID176_THRESHOLD",
    "MAX_PAGE_LENGTH",
    "MAX_WORD_LENGTH",
    "MIN_SENTENCES",
    "MIN_WORDS_PER_LINE",
    "SOURCE",
    "TEXT_DEDUP_MODES",
    "BadWordsMatcher",
    "BadWordsStep",
    "C4CleanStep",
    "C4JsonReader",
    "C4LengthStep",
    "CleanResult",
    "LangDetectStep",
    "apply_line_cuts",
    "apply_span_cuts",
    "badwords_regex",
    "clean_page",
    "dedup_lines",
    "dedup_spans",
    "default_badwords_path",
    "detect_language",
    "iter_losers",
    "iter_span_losers",
    "language_step",
    "line_key",
    "line_occurrences",
    "load_badwords",
    "newest_first",
    "normalize_url",
    "page_line_keys",
    "page_too_long",
    "remove_lines",
    "span_keys",
    "span_losers",
    "split_sentences",
    "url_key",
    "url_rank",
]
