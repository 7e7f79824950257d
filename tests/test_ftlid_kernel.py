"""The compiled fastText predictor (`kernels/ftlid.c`) against the fasttext binding itself: the
same label and the same float score for every text, on lid.176 and on models fastText trains here
(dense and quantized, pruned or not, word n-grams, no subwords, dimensions on both of fastText's
averaging paths); unsupported models and damaged files fall back or fail cleanly."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import fasttext
import pytest

from llama_data.pipeline.ccnet.langid import LidModel, lid_model_path, lid_text
from llama_data.pipeline.document import Document
from llama_data.pipeline.warc import WetReader

try:
    from llama_data.pipeline.kernels import _ftlid
except ImportError:  # every test below then fails, saying why
    _ftlid = None


@pytest.fixture(autouse=True)
def _kernel_built() -> None:
    if _ftlid is None:
        pytest.fail(
            "llama_data/pipeline/kernels/_ftlid was not built: `make install` (pip install -e "
            "'.[dev]') compiles it with the system C compiler; without it the ccnet stage's "
            "language id runs ~5x slower through the fasttext binding"
        )


DEMO_WET = Path(__file__).resolve().parents[1] / "llama_data/demo/commoncrawl/demo.warc.wet.gz"

EDGE_CASES = [
    "",
    " ",
    "\t\r\x0b\x0c\x00",
    "</s>",
    "hello </s> bonjour tout le monde",
    "__label__en",
    "__label__xx das ist ein Satz",
    "__label__",
    "a" * 10_000,
    "é" * 3_000,
    "日本語のテキストは空白なしで続きます" * 50,
    "emoji 😀🎉 and astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "combining e\u0301 a\u0300 ñ",
    "1234567890 ٠١٢٣٤٥٦٧٨٩",
    "\x00null\x00inside\x00",
    "Привет, как дела? Всё хорошо.",
    "مرحبا بالعالم",
    "   leading and trailing   ",
    "<s> <tag> >< <>",
]


def page_texts(limit: int | None = None) -> list[str]:
    from conftest import CORPUS

    sample = CORPUS / "commoncrawl" / "pages.warc.wet.gz"
    path = sample if sample.is_file() else DEMO_WET
    docs = [d for d in WetReader().read_path(str(path)) if isinstance(d, Document)]
    return [d.text for d in docs[:limit]]


def fasttext_top(model, texts: list[str]) -> list[tuple[str, float]]:
    labels, scores = model.predict(texts, k=1)
    return [
        (lab[0] if lab else None, float(sc[0]) if len(sc) else 0.0)
        for lab, sc in zip(labels, scores, strict=True)
    ]


def kernel_top(kernel, texts: list[str]) -> list[tuple[str, float]]:
    return [(kernel.labels[i] if i >= 0 else None, p) for i, p in kernel.predict(texts)]


def assert_same(path: Path, texts: list[str]) -> None:
    ft = fasttext.load_model(str(path))
    kernel = _ftlid.Model(str(path))
    assert kernel.labels == tuple(ft.get_labels())
    want, got = fasttext_top(ft, texts), kernel_top(kernel, texts)
    diffs = [(t[:60], w, g) for t, w, g in zip(texts, want, got, strict=True) if w != g]
    assert not diffs, diffs[:5]


def test_lid176_pages_and_lines() -> None:
    """Every page (as the stage passes it) and every line of the sample, scores equal as floats."""
    pages = page_texts()
    lines = [line for page in pages for line in page.split("\n")]
    assert_same(lid_model_path(), [lid_text(p) for p in pages] + lines + EDGE_CASES)


def test_lid176_random_text() -> None:
    rng = random.Random(7)
    alphabet = (
        "abcdefghijklmnopqrstuvwxyz ABCXYZ  éèàüößçñ ΣσςαβΓ жшщЖЯ 中文字 ٣٤ 0123 ,.!?'\" \t\r"
        "\x00\x0b\x0c😀𝔘 __label__ </s> <> "
    )
    texts = [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 400))) for _ in range(500)
    ]
    assert_same(lid_model_path(), texts)


def test_newline_and_surrogates_behave_as_fasttext() -> None:
    """What fastText refuses, the kernel refuses, and `LidModel` then gives fastText's error."""
    ft = fasttext.load_model(str(lid_model_path()))
    model = LidModel(lid_model_path())
    assert model.kernel is not None
    for bad in ("two\nlines", "lone \ud800 surrogate"):
        with pytest.raises(Exception) as want:
            ft.predict([bad], k=1)
        with pytest.raises(Exception) as got:
            model.predict([bad])
        assert type(got.value) is type(want.value)


def _training_file(tmp_path: Path, classes: int = 0) -> Path:
    """Lines of the sample labeled with lid.176's own answer (real text, a few classes), or with
    `classes` made-up classes (a quantized output layer needs 256 rows or more)."""
    lid = LidModel(lid_model_path())
    lines = [line for page in page_texts(120) for line in page.split("\n") if len(line) > 20]
    if classes:
        labels = [f"c{i % classes}" for i in range(len(lines))]
    else:
        labels = [lang for lang, _ in lid.predict(lines)]
    rows = [f"__label__{label} {line}" for label, line in zip(labels, lines, strict=True)]
    path = tmp_path / f"train{classes}.txt"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def train_model(data: Path, out: Path, **kw: object) -> None:
    """fastText's `train_supervised`, in a child process of its own: this fastText build reads
    memory it never initialized while training (its `AlignedVector`s), so a model may end in
    "Encountered NaN" depending on what the process allocated before; a fresh process, and
    another seed if it still fails, gives a model."""
    code = (
        "import sys, json, fasttext\n"
        "kw = json.loads(sys.argv[3])\n"
        "m = fasttext.train_supervised(sys.argv[1], epoch=3, lr=0.1, thread=1, minCount=1,"
        " verbose=0, **kw)\n"
        "m.save_model(sys.argv[2])\n"
    )
    errors = []
    for seed in (1, 2, 3):
        args = json.dumps({**kw, "seed": seed})
        proc = subprocess.run(
            [sys.executable, "-c", code, str(data), str(out), args], capture_output=True, text=True
        )
        if proc.returncode == 0:
            return
        errors.append(proc.stderr.strip().splitlines()[-1])
    raise AssertionError(f"fastText could not train {kw}: {errors}")


@pytest.mark.slow
def test_models_fasttext_trains(tmp_path: Path) -> None:
    """Dense and quantized (pruned, norm-quantized, another sub-vector size, output-quantized),
    word bigrams, single-character n-grams, dimension 16 (fastText's vectorized averaging) and
    10 (its plain loop): all equal. (Models without subwords, maxn=0, are not here: this fastText
    build ends their training in NaN.)"""
    train = _training_file(tmp_path)
    many = _training_file(tmp_path, classes=300)
    texts = [line.split(" ", 1)[1] for line in train.read_text().splitlines()[:3000]]
    texts += EDGE_CASES + ["unseenword anotherunseen", "zzzzqqqq"]
    settings = [
        (train, {"dim": 16, "minn": 2, "maxn": 4}),
        (train, {"dim": 10, "minn": 2, "maxn": 4}),
        (train, {"dim": 16, "minn": 3, "maxn": 5, "wordNgrams": 2, "bucket": 50_000}),
        (train, {"dim": 16, "minn": 1, "maxn": 1}),
        (many, {"dim": 16, "minn": 2, "maxn": 4}),
    ]
    for i, (data, kw) in enumerate(settings):
        dense = tmp_path / f"m{i}.bin"
        train_model(data, dense, loss="hs", **kw)
        assert_same(dense, texts)
        quants = [{"cutoff": 2000, "qnorm": True}, {"dsub": 3}]
        if data is many:  # 300 labels: an output layer of 299 rows can be quantized too
            quants.append({"qnorm": False, "qout": True})
        for j, quant in enumerate(quants):
            model = fasttext.load_model(str(dense))
            model.quantize(**quant)
            ftz = tmp_path / f"m{i}-{j}.ftz"
            model.save_model(str(ftz))
            assert_same(ftz, texts)


@pytest.mark.slow
def test_other_losses_fall_back_to_fasttext(tmp_path: Path) -> None:
    train = _training_file(tmp_path)
    path = tmp_path / "softmax.bin"
    train_model(train, path, loss="softmax", dim=8)
    model = fasttext.load_model(str(path))
    with pytest.raises(NotImplementedError):
        _ftlid.Model(str(path))
    lid = LidModel(path)
    assert lid.kernel is None
    texts = ["an english line of text", "eine deutsche Zeile"]
    assert lid.predict(texts) == [
        (lab.removeprefix("__label__"), p) for lab, p in fasttext_top(model, texts)
    ]


def test_damaged_files_raise_not_crash(tmp_path: Path) -> None:
    """Truncated anywhere, or with bytes of its header and tables changed, the file is refused
    with ValueError or read; never a crash or a read past the end."""
    data = lid_model_path().read_bytes()
    path = tmp_path / "bad.ftz"
    for cut in [0, 3, 8, 40, 100, 1_000, 50_000, 400_000, len(data) // 2, len(data) - 1]:
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError):
            _ftlid.Model(str(path))
    rng = random.Random(3)
    for _ in range(60):
        damaged = bytearray(data)
        for _ in range(4):
            damaged[rng.randrange(0, 200_000)] = rng.randrange(256)
        path.write_bytes(bytes(damaged))
        try:
            model = _ftlid.Model(str(path))
        except (ValueError, NotImplementedError):
            continue
        model.predict(["a few words of text", "", "ünïcödé"])
    with pytest.raises(OSError):
        _ftlid.Model(str(tmp_path / "missing.ftz"))
