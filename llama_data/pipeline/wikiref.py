"""The Wikipedia-reference classifier (LLaMA §2.1, the last CCNet-side filter), end to end.

"We trained a linear model to classify pages used as references in Wikipedia v.s. randomly
sampled pages, and discarded pages not classified as references." The public reproduction ships
the model but not how its training data was made; here every input comes from a script:

1. `extract_cited_urls`: URLs cited in wikitext (`<ref>` contents, `{{cite ...|url=}}` and the
   other `*-url` parameters of citation templates, `[http://... label]` and bare URLs), parsed
   with mwparserfromhell, each passed through `normalize_url` so that a CommonCrawl capture of
   `https://www.example.com/a/?utm_source=x#top` meets the citation `http://example.com/a`.
2. positives: CommonCrawl documents whose normalized URL is cited (one per URL, the smallest id);
3. negatives: as many uncited documents, the ones with the smallest seeded hash of their id
   (a uniform sample that does not depend on input order or worker count);
4. a fastText supervised model on LM-normalized text (`normalize_for_lm`, cc_net's), with 10% of
   the examples (by seeded hash) held out for precision, recall, AUC at the threshold, in a card.

`WikirefScoreStep` then scores documents, stores `wikiref_score` and rejects `not_wikiref` below
the threshold (0.25 by default, as the public reproduction used).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import pyarrow as pa

from llama_data.pipeline import model_files
from llama_data.pipeline.digest import file_sha256
from llama_data.pipeline.document import Document, Outcome, Rejected
from llama_data.pipeline.io import DocumentReader, FileSplit, OpenRaw, Reader, ReadResult
from llama_data.pipeline.normalize import normalize_for_lm
from llama_data.pipeline.schema import DocumentSchema
from llama_data.pipeline.steps import Step
from llama_data.pipeline.warc import CommonCrawlReader

POSITIVE = "__label__wiki"
NEGATIVE = "__label__cc"
DEFAULT_THRESHOLD = 0.25
HOLDOUT_FRACTION = 0.1

# --- URL normalization --------------------------------------------------------------------------
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "wickedid",
        "rb_clickid",
        "s_cid",
        "ref_src",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "hsa_")
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_WWW_RE = re.compile(r"^www\d*\.")
_WAYBACK_RE = re.compile(
    r"^(?:https?:)?//(?:www\.)?web\.archive\.org/(?:web/)?\d{4,14}[a-z_]*/(.+)$", re.I
)
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_QUERY_SAFE = ":@!$'()*+,;/?-._~"
# Links a Wikipedia page makes to its own projects are navigation, not references to the web.
EXCLUDED_HOSTS = (
    "wikipedia.org",
    "wikimedia.org",
    "wikidata.org",
    "mediawiki.org",
    "wiktionary.org",
)


def _is_tracking(name: str) -> bool:
    low = name.lower()
    return low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES)


def normalize_url(url: str) -> str | None:
    """The join key between a citation and a crawled page, or None for a non-web URL.

    Scheme dropped (http and https name the same page in practice), host lowercased without
    `www.`/`wwwN.`, default port, user info and trailing dot; path percent-encoding made canonical
    and its trailing slash removed; fragment dropped; tracking parameters (utm_*, fbclid, gclid,
    ...) removed and the rest sorted, so parameter order does not matter. A Wayback Machine URL
    (`web.archive.org/web/<time>/<url>`) stands for the page it archived.
    """
    url = url.strip()
    if not url:
        return None
    wayback = _WAYBACK_RE.match(url)
    if wayback:  # editors often cite the archived copy; the crawl has the original page
        return normalize_url(wayback.group(1))
    if url.startswith("//"):
        url = "http:" + url
    elif "://" not in url:
        if not re.match(r"^(www\d*\.)?[a-z0-9-]+(\.[a-z0-9-]+)+(:\d+)?(/|$|\?)", url, re.I):
            return None
        url = "http://" + url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return None
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        return None
    with contextlib.suppress(UnicodeError):
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    host = _WWW_RE.sub("", host)
    if port is not None and str(port) != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    path = quote(unquote(parts.path), safe=_PATH_SAFE).rstrip("/")
    params = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)
    ]
    query = urlencode(sorted(params), quote_via=quote, safe=_QUERY_SAFE)
    return f"{host}{path}" + (f"?{query}" if query else "")


def url_key(normalized: str) -> bytes:
    """8 bytes of sha1: the compact shuffle key of a normalized URL."""
    return hashlib.sha1(normalized.encode("utf-8", "surrogatepass")).digest()[:8]


def host_of(normalized: str) -> str:
    return normalized.split("/", 1)[0].split("?", 1)[0].split(":", 1)[0]


def is_excluded_host(normalized: str, excluded: Sequence[str] = EXCLUDED_HOSTS) -> bool:
    host = host_of(normalized)
    return any(host == h or host.endswith("." + h) for h in excluded)


# --- citation extraction ------------------------------------------------------------------------
_CITE_TEMPLATE_RE = re.compile(r"^\s*(cite|citation|vcite|web\s*cite)", re.I)
# URL parameters of citation templates that point at the cited work itself; archive-url and
# friends point at a copy on an archive and are left out.
_URL_PARAMS_RE = re.compile(
    r"^\s*((chapter|contribution|section|article|conference|entry|transcript|lay)[-_ ]?)?url\s*$",
    re.I,
)
_ARCHIVE_PARAMS_RE = re.compile(r"^\s*archive[-_ ]?url\s*$", re.I)
_TRAILING_PUNCT = ".,;:!?)'\""


def _clean_link(url: str) -> str:
    url = url.strip().rstrip(_TRAILING_PUNCT)
    return url


def _dedup_urls(found: Iterable[str], archived: set[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for url in found:
        if url and url not in seen and url not in archived:
            seen.add(url)
            out.append(url)
    return out


def extract_cited_urls_parsed(wikitext: str) -> list[str]:
    """The reference extractor: a full mwparserfromhell parse (exact, but ~0.3 MB/s per core).

    External links (bracketed and bare, inside `<ref>` and anywhere else) and the URL parameters
    of citation templates; URLs in archive parameters are not citations. A page the parser cannot
    handle falls back to the scanner rather than losing its citations.
    """
    import mwparserfromhell

    found: list[str] = []
    archived: set[str] = set()
    try:
        code = mwparserfromhell.parse(wikitext)
        for tpl in code.filter_templates(recursive=True):
            is_cite = bool(_CITE_TEMPLATE_RE.match(str(tpl.name)))
            for param in tpl.params:
                pname = str(param.name)
                raw = str(param.value).strip()
                value = _clean_link(
                    raw if raw.startswith(("http", "//")) else param.value.strip_code()
                )
                if _ARCHIVE_PARAMS_RE.match(pname):
                    archived.add(value)
                elif is_cite and _URL_PARAMS_RE.match(pname) and value:
                    found.append(value)
        for link in code.filter_external_links(recursive=True):
            found.append(_clean_link(str(link.url)))
    except Exception:  # noqa: BLE001 - a parser failure on one page must not lose its citations
        return extract_cited_urls_scanned(wikitext)
    return _dedup_urls(found, archived)


# The scanner: the same rules as the parser on the few constructs that carry URLs. Wikitext
# inside comments / nowiki / pre / code blocks is not rendered, so it cites nothing.
_NOT_RENDERED_RE = re.compile(
    r"<!--.*?(?:-->|$)|<(nowiki|pre|math|syntaxhighlight|source|code)\b[^>]*?(?:/>|>.*?</\1\s*>)",
    re.I | re.S,
)
_URL_CHARS = r"[^\s<>\[\]{}|\"]"
_LINK_RE = re.compile(
    rf"\[\s*((?:https?:)?//{_URL_CHARS}+)"  # [http://... label] and [//... label]
    rf"|(?<![\w/\[])(https?://{_URL_CHARS}+)"  # bare URLs need a scheme
    rf"|\|\s*(?:(?:chapter|contribution|section|article|conference|entry|transcript|lay)[-_ ]?)?url\s*=\s*({_URL_CHARS}+)"
    rf"|\|\s*archive[-_ ]?url\s*=\s*({_URL_CHARS}+)",
    re.I,
)


def _scan_clean(url: str) -> str:
    url = url.split("''", 1)[0]  # italic/bold markup ends a bare link
    url = url.strip().rstrip(".,;:!?'\"")
    if url.endswith(")") and "(" not in url:
        url = url.rstrip(")")
    return url


def extract_cited_urls_scanned(wikitext: str) -> list[str]:
    """Fast extractor (~30x the parser): one regex pass over the rendered part of the wikitext.

    Finds what the parser finds on real articles (bracketed and bare external links, `url=`-style
    template parameters, archive parameters excluded); it checks no template names, so a `url=`
    of a non-citation template counts, as it usually names the subject's own site.
    """
    text = _NOT_RENDERED_RE.sub(" ", wikitext)
    found: list[str] = []
    archived: set[str] = set()
    for m in _LINK_RE.finditer(text):
        bracketed, bare, param, archive = m.groups()
        if archive:
            archived.add(_scan_clean(archive))
        else:
            found.append(_scan_clean(bracketed or bare or param))
    return _dedup_urls(found, archived)


def extract_cited_urls(wikitext: str, method: str = "scan") -> list[str]:
    """Raw URLs cited by a page, without duplicates: `scan` (fast, default) or `parse` (exact)."""
    if method == "parse":
        return extract_cited_urls_parsed(wikitext)
    return extract_cited_urls_scanned(wikitext)


def cited_normalized_urls(
    wikitext: str, excluded: Sequence[str] = EXCLUDED_HOSTS, method: str = "scan"
) -> list[str]:
    """Normalized, deduplicated cited URLs of a page, links to Wikimedia projects left out."""
    out: list[str] = []
    seen: set[str] = set()
    for raw in extract_cited_urls(wikitext, method):
        norm = normalize_url(raw)
        if norm and norm not in seen and not is_excluded_host(norm, excluded):
            seen.add(norm)
            out.append(norm)
    return out


# --- training set -------------------------------------------------------------------------------
def doc_url(doc: Document) -> str | None:
    """The page URL of a CommonCrawl document, whichever reader produced it."""
    for key in ("url", "warc_target_uri", "WARC-Target-URI", "target_uri"):
        value = doc.meta.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def seeded_hash(seed: int, salt: str, value: str) -> int:
    """A uniform 64-bit number per (seed, purpose, value): sampling that ignores input order."""
    digest = hashlib.sha1(f"{seed}\x1f{salt}\x1f{value}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


def sample_key(seed: int, doc_id: str) -> int:
    return seeded_hash(seed, "negative", doc_id)


def is_holdout(seed: int, doc_id: str, fraction: float = HOLDOUT_FRACTION) -> bool:
    return seeded_hash(seed, "holdout", doc_id) < int(fraction * 2**64)


def negative_rate(n_positive: int, n_uncited: int) -> float:
    """Fraction of uncited documents to keep as negative candidates in a distributed pass.

    Slightly over `n_positive / n_uncited` (six standard deviations of the binomial count, plus
    a constant for small counts) so that the exact `n_positive` smallest keys are all among them
    with overwhelming probability; the driver then takes exactly that many.
    """
    if n_uncited <= 0 or n_positive <= 0:
        return 0.0
    want = n_positive + 6.0 * math.sqrt(n_positive) + 32.0
    return min(1.0, want / n_uncited)


def lm_text(text: str) -> str:
    """One fastText input line: each line normalized as for the LM (cc_net), joined by spaces."""
    parts = (normalize_for_lm(line) for line in text.split("\n"))
    return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class Example:
    """One labelled training example: where it came from and its fastText-ready text."""

    id: str
    url: str
    label: str
    text: str
    sample_key: int = 0

    def fasttext_line(self) -> str:
        return f"{self.label} {self.text}"


def assemble_training_set(
    cited: set[str],
    docs: Iterable[Document],
    seed: int = 0,
    refs: Iterable[Document] = (),
) -> tuple[list[Example], list[Example]]:
    """In-memory form of the assembly (the Beam job shuffles by URL key to do the same at scale).

    Returns (positives, negatives) with `len(negatives) == min(len(positives), #uncited)`.
    `refs` are fetched reference pages (`--refs-warc`): positives whatever the crawl holds.
    """
    best_pos: dict[str, Document] = {}
    uncited: list[tuple[int, str, Document]] = []
    for doc in [*refs, *docs]:
        raw = doc_url(doc)
        norm = normalize_url(raw) if raw else None
        if norm is None:
            continue
        if norm in cited or doc.meta.get("wikiref_ref"):
            cur = best_pos.get(norm)
            if cur is None or doc.id < cur.id:
                best_pos[norm] = doc
        else:
            uncited.append((sample_key(seed, doc.id), doc.id, doc))
    positives = [
        Example(d.id, url, POSITIVE, lm_text(d.text)) for url, d in sorted(best_pos.items())
    ]
    positives = [p for p in positives if p.text]
    candidates = []
    for key, doc_id, doc in uncited:
        text = lm_text(doc.text)
        if text:
            candidates.append(
                Example(doc_id, normalize_url(doc_url(doc) or "") or "", NEGATIVE, text, key)
            )
    return positives, take_negatives(candidates, len(positives))


def take_negatives(candidates: Iterable[Example], n: int) -> list[Example]:
    """The `n` candidates with the smallest (sample key, id): the same choice in memory and
    after the Beam job's over-sampled pre-selection."""
    return sorted(candidates, key=lambda e: (e.sample_key, e.id))[:n]


EXAMPLES_SCHEMA = DocumentSchema(
    extra=(
        pa.field("label", pa.string()),
        pa.field("url", pa.string()),
        pa.field("sample_key", pa.uint64()),
    )
)
SCORED_FIELD = pa.field("wikiref_score", pa.float64())


def example_to_document(ex: Example) -> Document:
    return Document(
        ex.id, "wikiref", ex.text, {"label": ex.label, "url": ex.url, "sample_key": ex.sample_key}
    )


def document_to_example(doc: Document) -> Example:
    return Example(
        doc.id,
        str(doc.meta.get("url") or ""),
        str(doc.meta["label"]),
        doc.text,
        int(doc.meta.get("sample_key") or 0),
    )


UrlGroupItem = tuple[str, str, bool, str]  # (doc id, normalized url, from refs-warc, raw text)


def url_doc_item(doc: Document) -> tuple[bytes, UrlGroupItem] | None:
    """A CommonCrawl (or fetched reference) document keyed by its normalized URL for the join."""
    raw = doc_url(doc)
    norm = normalize_url(raw) if raw else None
    if norm is None:
        return None
    return url_key(norm), (doc.id, norm, bool(doc.meta.get("wikiref_ref")), doc.text)


def label_url_group(
    cited: bool, items: Iterable[UrlGroupItem], seed: int
) -> tuple[Example | None, list[tuple[int, UrlGroupItem]], int]:
    """What the join of one URL key yields: a positive (the smallest id among the captures of a
    cited URL), or the uncited documents with their sample keys; and how many captures of a cited
    URL were set aside as duplicates."""
    items = sorted(items, key=lambda t: t[0])
    if not items:
        return None, [], 0
    if cited or any(t[2] for t in items):
        doc_id, url, _, text = items[0]
        return Example(doc_id, url, POSITIVE, lm_text(text)), [], len(items) - 1
    return None, [(sample_key(seed, t[0]), t) for t in items], 0


class CcDocumentsReader(Reader):
    """CommonCrawl documents for training: `llama-data ccnet` output (Parquet / JSON lines) or
    raw WET/WARC files, chosen per file by its name."""

    name = "cc-documents"

    def read(self, split: FileSplit, open_raw: OpenRaw) -> ReadResult:
        name = split.path.lower()
        if name.endswith(".parquet") or ".jsonl" in name or name.endswith(".json"):
            yield from DocumentReader(self.source).read(split, open_raw)
        else:
            yield from CommonCrawlReader(self.source).read(split, open_raw)


# --- training and evaluation --------------------------------------------------------------------
@dataclass(frozen=True)
class FastTextParams:
    """fastText supervised hyper-parameters (exposed on the CLI and in the config).

    thread=1 with a seed makes training bit-reproducible; wordNgrams>=2 also avoids the NaN that
    fastText can hit with several threads and no n-grams (see DEPENDENCIES.md). dim and bucket are
    below fastText's defaults (100, 2M): a two-class linear model needs few dimensions, and the
    model file is bucket * dim * 4 bytes (128 MB here, 800 MB with the defaults).
    """

    lr: float = 0.5
    epoch: int = 10
    dim: int = 32
    wordNgrams: int = 2  # noqa: N815 - fastText's own parameter name
    minCount: int = 1  # noqa: N815
    bucket: int = 1_000_000
    loss: str = "softmax"
    thread: int = 1
    seed: int = 0

    def as_kwargs(self) -> dict[str, Any]:
        return asdict(self)


def fasttext_params(section: Any) -> FastTextParams:
    """The training parameters of a `[wikiref]` section (or the train-wikiref options)."""
    return FastTextParams(
        lr=section.lr,
        epoch=section.epoch,
        dim=section.dim,
        wordNgrams=section.word_ngrams,
        minCount=section.min_count,
        bucket=section.bucket,
        thread=section.threads,
        seed=section.seed,
    )


def auc_score(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """ROC AUC by the rank-sum (Mann-Whitney U) formula, ties counted half; None if one class."""
    n_pos = sum(1 for y in labels if y)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        avg = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = avg
        i = j + 1
    rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def binary_metrics(
    scores: Sequence[float], labels: Sequence[int], threshold: float
) -> dict[str, Any]:
    tp = sum(1 for s, y in zip(scores, labels, strict=True) if y and s >= threshold)
    fp = sum(1 for s, y in zip(scores, labels, strict=True) if not y and s >= threshold)
    fn = sum(1 for s, y in zip(scores, labels, strict=True) if y and s < threshold)
    tn = len(labels) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    return {
        "threshold": threshold,
        "precision": precision,
        "recall": recall,
        "accuracy": (tp + tn) / len(labels) if labels else None,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def positive_probability(model: Any, texts: Sequence[str]) -> list[float]:
    """P(wiki) per text from a two-label fastText model (k=-1 returns both labels' scores)."""
    if not texts:
        return []
    labels, probs = model.predict(list(texts), k=-1)
    out: list[float] = []
    for labs, ps in zip(labels, probs, strict=True):
        score = 0.0
        for lab, p in zip(labs, ps, strict=True):
            if lab == POSITIVE:
                score = float(p)
                break
        out.append(min(1.0, max(0.0, score)))
    return out


def split_holdout(
    examples: Sequence[Example], seed: int, fraction: float = HOLDOUT_FRACTION
) -> tuple[list[Example], list[Example]]:
    train, held = [], []
    for ex in examples:
        (held if is_holdout(seed, ex.id, fraction) else train).append(ex)
    return train, held


def write_fasttext_file(path: str, examples: Iterable[Example], seed: int) -> int:
    """Write examples in a seeded, input-order-free order (fastText's SGD sees them in order)."""
    ordered = sorted(examples, key=lambda e: (seeded_hash(seed, "order", e.id), e.id))
    with open(path, "w", encoding="utf-8") as fh:
        for ex in ordered:
            fh.write(ex.fasttext_line() + "\n")
    return len(ordered)


def _train_child() -> None:
    """Child side of `train_fasttext_isolated`: argv = [train file, model file, JSON kwargs]."""
    import fasttext

    train_path, model_path, kwargs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    try:
        fasttext.train_supervised(input=train_path, verbose=0, **kwargs).save_model(model_path)
    except RuntimeError as exc:
        print(f"fasttext: {exc}", file=sys.stderr)
        sys.exit(3 if "NaN" in str(exc) else 1)


def train_fasttext_isolated(
    train_path: str, model_path: str, kwargs: dict[str, Any], max_attempts: int = 4
) -> list[float]:
    """Train in a fresh interpreter; return the learning rates tried (the last one worked).

    Why a subprocess: fastText's result (and its "Encountered NaN" failures) was seen to depend on
    what the calling process did before, even single-threaded with a seed; a fresh process makes
    the model a function of the data and the parameters alone. A NaN is retried with half the
    learning rate (the usual remedy), and the card records the rates tried.
    """
    kwargs = dict(kwargs)
    attempts: list[float] = []
    code = "from llama_data.pipeline.wikiref import _train_child; _train_child()"
    while True:
        attempts.append(kwargs["lr"])
        proc = subprocess.run(
            [sys.executable, "-c", code, train_path, model_path, json.dumps(kwargs)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode == 0:
            return attempts
        if proc.returncode != 3 or len(attempts) >= max_attempts:
            raise RuntimeError(f"fastText training failed: {proc.stderr.strip()[-2000:]}")
        kwargs["lr"] = kwargs["lr"] / 2


def train_and_evaluate(
    positives: Sequence[Example],
    negatives: Sequence[Example],
    workdir: str,
    params: FastTextParams = FastTextParams(),
    threshold: float = DEFAULT_THRESHOLD,
    holdout: float = HOLDOUT_FRACTION,
    extra_card: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train on 90% and evaluate on the 10% held out; write `model.bin` and `card.json`.

    The card holds what a user needs to trust or reproduce the model: example counts, the
    hyper-parameters and seed, holdout precision/recall/AUC at the threshold used, and the
    model's sha256.
    """
    import fasttext

    if not positives or not negatives:
        raise ValueError(
            f"cannot train the wikiref classifier: {len(positives)} positives, {len(negatives)} negatives"
        )
    examples = [*positives, *negatives]
    train, held = split_holdout(examples, params.seed, holdout)
    if not held:  # tiny inputs: still evaluate on something rather than report nothing
        held = train[-max(1, len(train) // 10) :]
        train = train[: len(train) - len(held)] or train
    train_path = os.path.join(workdir, "train.txt")
    n_train = write_fasttext_file(train_path, train, params.seed)
    model_path = os.path.join(workdir, "model.bin")
    attempts = train_fasttext_isolated(train_path, model_path, params.as_kwargs())
    os.remove(train_path)
    model = fasttext.load_model(model_path)

    scores = positive_probability(model, [ex.text for ex in held])
    labels = [1 if ex.label == POSITIVE else 0 for ex in held]
    metrics = binary_metrics(scores, labels, threshold)
    metrics["auc"] = auc_score(scores, labels)
    metrics["n"] = len(held)
    metrics["positives"] = sum(labels)
    curve = [binary_metrics(scores, labels, t) for t in (0.1, 0.25, 0.5, 0.75, 0.9)]
    card = {
        "model": "model.bin",
        "model_sha256": file_sha256(model_path),
        "labels": {"positive": POSITIVE, "negative": NEGATIVE},
        "threshold": threshold,
        "text_normalization": "cc_net normalize_for_lm per line, lines joined by spaces",
        "examples": {
            "positives": len(positives),
            "negatives": len(negatives),
            "train": n_train,
            "holdout": len(held),
            "holdout_fraction": holdout,
        },
        "params": params.as_kwargs(),
        "lr_used": attempts[-1],
        "lr_attempts": attempts,
        "holdout": metrics,
        "holdout_curve": [{k: c[k] for k in ("threshold", "precision", "recall")} for c in curve],
    }
    if extra_card:
        card.update(extra_card)
    with open(os.path.join(workdir, "card.json"), "w", encoding="utf-8") as fh:
        json.dump(card, fh, indent=2, sort_keys=True)
    return card


def resolve_model_path(path: str) -> str:
    """A model directory (with model.bin from train-wikiref) or a fastText .bin/.ftz file; a
    `gs://`/`s3://` URL not ending in .bin/.ftz is taken as a directory."""
    if model_files.is_remote(path):
        if path.endswith((".bin", ".ftz")):
            return path
        return model_files.join(path, "model.bin")
    if os.path.isdir(path):
        return os.path.join(path, "model.bin")
    return path


# --- scoring ------------------------------------------------------------------------------------
class WikirefScoreStep(Step):
    """Score each document P(cited by Wikipedia); keep it at or above the threshold."""

    name = "wikiref"
    _model: Any = None

    def __init__(
        self,
        model_path: str,
        threshold: float = DEFAULT_THRESHOLD,
        store: model_files.FileStore | None = None,
    ) -> None:
        self.model_path = model_path
        self.threshold = threshold
        self.store = store  # reads a gs:// / s3:// model (copied to local disk in setup)

    def setup(self) -> None:
        import fasttext

        local = model_files.local_file(resolve_model_path(self.model_path), self.store)
        self._model = fasttext.load_model(str(local))

    def process(self, doc: Document) -> Outcome:
        return self.process_batch([doc])[0]

    def process_batch(self, docs: Sequence[Document]) -> list[Outcome]:
        if self._model is None:
            self.setup()
        scores = positive_probability(self._model, [lm_text(d.text) for d in docs])
        out: list[Outcome] = []
        for doc, score in zip(docs, scores, strict=True):
            scored = doc.with_text(doc.text, wikiref_score=score)
            out.append(scored if score >= self.threshold else Rejected(scored, "not_wikiref"))
        return out
