"""Perplexity under a language's SentencePiece + KenLM model, computed as cc_net computes it.

cc_net's mine.py scores a page in two steps: `MultiSentencePiece(normalize=True)` normalizes the
whole page with `text_normalizer.normalize` (which removes its newlines with the other control
characters, so the page becomes one line) and cuts it into pieces; `DocLM(normalize=False)` then
scores the space-joined pieces with KenLM as one sentence (`<s>` ... `</s>`), counting
`len(pieces.split()) + 1` predicted tokens. Perplexity = 10 ** (-log10 p / tokens), rounded to
0.1. Scoring each line apart instead (what `score_lines` does, for diagnostics) gives other
numbers, 17-68% lower on real pages, and cc_net's published cutoffs would bucket pages wrongly.

A model directory holds `<lang>.sp.model` and `<lang>.arpa.bin`: cc_net's names, so cc_net's
published Wikipedia models (`lm_sp/`) work as they are, with its `cutoff.csv`. `train-lm` adds a
`<lang>.card.json`, which is not needed to score. The directory may be a `gs://`/`s3://` prefix:
given a `FileStore`, each worker machine copies the two files to local disk once
(`model_files`), since KenLM memory-maps a local file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from llama_data.pipeline import model_files
from llama_data.pipeline.document import Document, Outcome, Rejected
from llama_data.pipeline.normalize import normalize_for_lm
from llama_data.pipeline.steps import Step


def sp_path(lm_dir: str | Path, lang: str) -> Path:
    return Path(lm_dir) / f"{lang}.sp.model"


def kenlm_path(lm_dir: str | Path, lang: str) -> Path:
    return Path(lm_dir) / f"{lang}.arpa.bin"


def card_path(lm_dir: str | Path, lang: str) -> Path:
    return Path(lm_dir) / f"{lang}.card.json"


def available_languages(
    lm_dir: str | Path, store: model_files.FileStore | None = None
) -> list[str]:
    """Languages with both model files in `lm_dir` (a local folder, or a URL prefix read
    through `store`)."""
    if model_files.is_remote(lm_dir):
        names = set(model_files.list_names(lm_dir, store))
        langs = [n.removesuffix(".arpa.bin") for n in names if n.endswith(".arpa.bin")]
        return sorted(lang for lang in langs if f"{lang}.sp.model" in names)
    d = Path(lm_dir)
    langs = [p.name.removesuffix(".arpa.bin") for p in d.glob("*.arpa.bin")]
    return sorted(lang for lang in langs if sp_path(d, lang).is_file())


def perplexity(log10_prob: float, tokens: int) -> float:
    """10 ** (-sum log10 p / sum tokens); a document with no token gets +inf (the worst score)."""
    if tokens <= 0:
        return float("inf")
    return 10.0 ** (-log10_prob / tokens)


class LanguageModel:
    """A SentencePiece model and a KenLM model for one language, loaded lazily."""

    def __init__(
        self, lm_dir: str | Path, lang: str, store: model_files.FileStore | None = None
    ) -> None:
        import kenlm
        import sentencepiece as spm

        self.lang = lang
        sp = model_files.local_file(model_files.join(lm_dir, f"{lang}.sp.model"), store)
        lm = model_files.local_file(model_files.join(lm_dir, f"{lang}.arpa.bin"), store)
        self.sp = spm.SentencePieceProcessor(model_file=str(sp))
        self.lm = kenlm.Model(str(lm))

    def doc_score(self, text: str) -> tuple[float, int]:
        """(log10 p, predicted tokens) of a whole page, as cc_net's SentencePiece + DocLM."""
        normalized = normalize_for_lm(text)
        if not normalized:
            return 0.0, 0
        sentence = " ".join(self.sp.encode(normalized, out_type=str))
        if not sentence:
            return 0.0, 0
        return self.lm.score(sentence), len(sentence.split()) + 1

    def tokenize(self, lines: Sequence[str]) -> list[list[str]]:
        normalized = [normalize_for_lm(line) for line in lines]
        pieces = self.sp.encode([n for n in normalized if n], out_type=str)
        it = iter(pieces)
        return [next(it) if n else [] for n in normalized]

    def score_lines(self, lines: Sequence[str]) -> tuple[float, int]:
        """(sum of log10 p, number of predicted tokens) with each line scored as a sentence:
        not cc_net's page score (`doc_score`), kept to look at which lines pull a page down."""
        total, tokens = 0.0, 0
        for pieces in self.tokenize(lines):
            if not pieces:
                continue
            total += self.lm.score(" ".join(pieces), bos=True, eos=True)
            tokens += len(pieces) + 1
        return total, tokens

    def doc_perplexity(self, text: str) -> float:
        return perplexity(*self.doc_score(text))


class Perplexity(Step):
    """Adds `perplexity` (rounded to 0.1, as cc_net) under the model of the document's language."""

    name = "perplexity"
    _models: dict[str, LanguageModel] | None = None

    def __init__(
        self,
        lm_dir: str,
        languages: Iterable[str],
        store: model_files.FileStore | None = None,
    ) -> None:
        self.lm_dir = str(lm_dir)
        self.languages = tuple(languages)
        self.store = store  # reads a gs:// / s3:// lm_dir (copied to local disk in setup)

    def setup(self) -> None:
        if self._models is None:
            self._models = {
                lang: LanguageModel(self.lm_dir, lang, self.store) for lang in self.languages
            }

    def process(self, doc: Document) -> Outcome:
        self.setup()
        assert self._models is not None
        model = self._models.get(str(doc.meta.get("language")))
        if model is None:
            self.count("no_model")
            return Rejected(doc, "lang:no_lm")
        log10_prob, tokens = model.doc_score(doc.text)
        if tokens == 0:  # nothing left once normalized (cc_net leaves such a page unscored)
            return Rejected(doc, "too_short")
        return doc.with_text(doc.text, perplexity=round(perplexity(log10_prob, tokens), 1))
