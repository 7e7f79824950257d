"""Tokenizer: LLaMA settings, exact round trip, seeded mixture sample, card."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
from _token_fixtures import write_all

from llama_data.pipeline.tokenizer import (
    LLAMA_SETTINGS,
    Tokenizer,
    TokenizerError,
    draw_sample,
    sample_targets,
    train_tokenizer,
    train_tokenizer_from_files,
)

VOCAB = 600


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = write_all(tmp_path_factory.mktemp("docs"))
    out = tmp_path_factory.mktemp("tok")
    card = train_tokenizer_from_files(str(root / "*" / "*.parquet"), out, vocab_size=VOCAB)
    return out, card


ROUND_TRIP = [
    "def f(x):\n\tif x:\n\t\treturn  x  *  2\n\n\n    # four spaces, then two\ttabs\t\t\n",
    "   leading spaces and trailing spaces   ",
    "\n\nstarts with newlines",
    "emoji 😀🎉👩‍💻 and flags 🇫🇷",
    "unseen scripts: ქართული ენა, Ελληνικά, हिन्दी, 日本語のテキスト, 𓀀𓀁, עברית",
    "digits 1234567890 and 3.14159 and 1,000,000",
    "mixed\r\nline\rends\u00a0nbsp\u200bzero-width\ufeffbom",
    "",
    " ",
    "\t",
    "NFKC would change these: ﬁ ① Ｆｕｌｌ ｗｉｄｔｈ Å",
]


def test_llama_settings_behaviour(trained: tuple[Path, dict]) -> None:
    out, card = trained
    tok = Tokenizer(out)
    assert card["settings"]["split_digits"] and card["settings"]["byte_fallback"]
    assert card["settings"]["normalization_rule_name"] == "identity"
    assert card["settings"]["remove_extra_whitespaces"] is False
    assert card["settings"]["allow_whitespace_only_pieces"] is True
    assert card["settings"]["model_type"] == "bpe"
    assert (tok.unk_id, tok.bos_id, tok.eos_id, tok.pad_id) == (0, 1, 2, -1)
    assert tok.vocab_size == VOCAB
    # Digits are split one by one.
    pieces = tok.sp.encode("12345", out_type=str)
    assert [p.lstrip("\u2581") for p in pieces if p.lstrip("\u2581")] == list("12345")
    # Unknown characters fall back to bytes (never <unk>).
    ids = tok.encode("ქ")
    assert tok.unk_id not in ids
    assert any(tok.sp.id_to_piece(i).startswith("<0x") for i in ids)
    # Identity normalization: full-width letters are not folded to ASCII.
    assert tok.decode(tok.encode("Ｆ")) == "Ｆ"


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip(trained: tuple[Path, dict], text: str) -> None:
    tok = Tokenizer(trained[0])
    assert tok.decode(tok.encode(text)) == text


def test_round_trip_every_fixture_document(trained: tuple[Path, dict], tmp_path: Path) -> None:
    from _token_fixtures import WORDS, make_text

    tok = Tokenizer(trained[0])
    rng = random.Random(7)
    docs = [make_text(s, rng, 80) for s in [*WORDS, "github"] for _ in range(5)]
    framed = tok.encode_framed(docs)
    for text, ids in zip(docs, framed, strict=True):
        assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
        assert tok.decode(ids[1:-1]) == text
    flat, lengths = tok.encode_packed(docs)
    assert flat.dtype == np.uint16 and lengths.sum() == flat.shape[0]
    np.testing.assert_array_equal(flat, np.concatenate(framed))
    clone = pickle.loads(pickle.dumps(tok))
    assert clone.encode(docs[0]) == tok.encode(docs[0])


def test_card_and_mixture_sample(trained: tuple[Path, dict]) -> None:
    out, card = trained
    on_disk = json.loads((out / "tokenizer.json").read_text())
    assert on_disk == card
    assert card["sha256"] == Tokenizer(out).sha256
    assert card["vocab_size"] == VOCAB and card["bos_id"] == 1 and card["eos_id"] == 2
    assert list(card["sample"]) == [
        "commoncrawl",
        "c4",
        "github",
        "wikipedia",
        "books",
        "arxiv",
        "stackexchange",
    ]
    # The default budget exceeds this tiny corpus: every source gives all it has.
    for s in card["sample"].values():
        assert s["documents"] == s["available_documents"]
    assert card["settings"]["vocab_size"] == VOCAB


def test_sample_follows_weights_and_is_order_independent() -> None:
    rng = random.Random(1)
    docs = [(s, f"{s}-{i}", "x" * rng.randint(50, 150)) for s in ("a", "b") for i in range(400)]
    targets = sample_targets({"a": 0.75, "b": 0.25, "absent": 0.5}, {"a", "b"}, 20_000)
    assert targets == {"a": 15_000, "b": 5_000}
    one = draw_sample(docs, targets, seed=3)
    shuffled = docs[:]
    rng.shuffle(shuffled)
    two = draw_sample(shuffled, targets, seed=3)
    assert one["a"].documents() == two["a"].documents()
    for name, target in targets.items():
        got = one[name].sampled_bytes
        assert target <= got < target + 150  # the smallest prefix of keys covering the target
    other_seed = draw_sample(docs, targets, seed=4)
    assert other_seed["a"].documents() != one["a"].documents()


def test_training_is_deterministic_and_errors_are_clear(tmp_path: Path) -> None:
    docs = [
        ("books", f"b{i}", f"chapter {i}: the rabbit ran {i * 7} miles.\n" * 3) for i in range(300)
    ]
    one = train_tokenizer(docs, tmp_path / "one", vocab_size=300, weights={"books": 1.0})
    two = train_tokenizer(
        list(reversed(docs)), tmp_path / "two", vocab_size=300, weights={"books": 1.0}
    )
    assert one["sha256"] == two["sha256"]
    assert (tmp_path / "one" / "tokenizer.model").read_bytes() == (
        tmp_path / "two" / "tokenizer.model"
    ).read_bytes()
    with pytest.raises(TokenizerError, match="no documents"):
        train_tokenizer(docs, tmp_path / "x", vocab_size=300, weights={"wikipedia": 1.0})
    with pytest.raises(TokenizerError, match="(?i)vocab"):
        train_tokenizer(docs, tmp_path / "y", vocab_size=100_000, weights={"books": 1.0})
    assert LLAMA_SETTINGS["byte_fallback"] is True


@pytest.mark.corpus
def test_round_trip_on_real_text(corpus: Path, tmp_path: Path) -> None:
    """Trained on Latin-script languages, exact on all (Cyrillic, CJK unseen) and on real code."""
    langid = sorted((corpus / "langid").glob("*.txt"))
    latin = [p for p in langid if p.stem in ("de", "en", "es", "fr", "it", "nl", "pl", "pt")]
    train_docs = [
        ("wikipedia", f"{p.stem}-{i}", line)
        for p in latin
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines()[:200])
    ]
    card = train_tokenizer(
        train_docs, tmp_path, vocab_size=800, weights={"wikipedia": 1.0}, num_threads=2
    )
    tok = Tokenizer(tmp_path)
    assert card["sample"]["wikipedia"]["documents"] == len(train_docs)
    texts = [p.read_text(encoding="utf-8") for p in langid]  # includes unseen languages
    rows = [
        json.loads(line)
        for line in (corpus / "github" / "files.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    texts += [r["content"] for r in rows if isinstance(r.get("content"), str)][:50]
    for text in texts:
        assert tok.decode(tok.encode(text)) == text
