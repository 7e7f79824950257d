"""export-hf: a transformers LlamaForCausalLM loads the folder and its logits match ours."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm
import torch
from click.testing import CliRunner

from llama_data.cli import train_main
from llama_data.model.export import load_hf
from llama_data.model.trainer import TrainConfig, fit, load_model
from llama_data.pipeline.digest import file_sha256
from llama_data.pipeline.shards import ShardWriter

transformers = pytest.importorskip("transformers")

TEXT = "the river runs north past old mills and quiet farms while birds sing over green fields of wheat near a small town where people trade bread fish and wool"
WORDS = TEXT.split(" ")


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    """A build output root: tokenizer/tokenizer.model and tokens/ shards made with it."""
    root = tmp_path_factory.mktemp("build")
    rng = np.random.default_rng(0)
    sentences = [" ".join(rng.choice(WORDS, size=12)) for _ in range(400)]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=model, vocab_size=400, model_type="bpe",
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, byte_fallback=True, minloglevel=2,
    )  # fmt: skip
    (root / "tokenizer").mkdir()
    tok_path = root / "tokenizer" / "tokenizer.model"
    tok_path.write_bytes(model.getvalue())
    sp = spm.SentencePieceProcessor(model_file=str(tok_path))
    stream = [t for s in sentences for t in [1, *sp.encode(s), 2]]
    ctx = 16
    writer = ShardWriter(
        root / "tokens", ctx, "uint16", rows_per_shard=32, sources=("web", "books")
    )
    for i in range(len(stream) // (ctx + 1)):
        row = np.asarray(stream[i * (ctx + 1) : (i + 1) * (ctx + 1)])
        writer.add(row, ("web", "books")[i % 2])
    writer.close(
        {
            "tokenizer": {
                "sha256": file_sha256(tok_path),
                "vocab_size": sp.get_piece_size(),
                "bos_id": 1,
                "eos_id": 2,
            }
        }  # fmt: skip
    )
    return root


@pytest.fixture(scope="module")
def run(build) -> Path:
    out = build / "run"
    fit(TrainConfig(
        data=str(build / "tokens"), out=str(out), preset="tiny",
        model={"dim": 32, "n_heads": 4, "multiple_of": 16}, batch_tokens=128, micro_batch=8,
        steps=3, warmup_steps=1, lr=1e-2, progress=False, compile=False,
    ))  # fmt: skip
    return out


def test_transformers_logits_match(run, tmp_path):
    hf_dir = tmp_path / "hf"
    res = CliRunner().invoke(
        train_main, ["export-hf", "--checkpoint", str(run), "--out", str(hf_dir)]
    )
    assert res.exit_code == 0, res.output
    assert {"config.json", "model.safetensors", "tokenizer.model", "tokenizer_config.json"} <= {
        p.name for p in hf_dir.iterdir()
    }
    ours, _ = load_model(run, "cpu")
    hf = transformers.LlamaForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    tokens = torch.randint(
        0, ours.cfg.vocab_size, (2, 16), generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        diff = (hf(tokens).logits - ours(tokens)).abs().max().item()
    assert diff < 1e-4, diff


def test_exported_tokenizer_loads_in_transformers(run, build, tmp_path):
    hf_dir = tmp_path / "hf"
    CliRunner().invoke(train_main, ["export-hf", "--checkpoint", str(run), "--out", str(hf_dir)])
    tok = transformers.AutoTokenizer.from_pretrained(hf_dir)
    sp = spm.SentencePieceProcessor(model_file=str(build / "tokenizer" / "tokenizer.model"))
    text = "the river runs past quiet farms"
    assert tok(text)["input_ids"] == [1, *sp.encode(text)]


def test_hf_folder_roundtrip_and_init_from(run, build, tmp_path):
    hf_dir = tmp_path / "hf"
    CliRunner().invoke(train_main, ["export-hf", "--checkpoint", str(run), "--out", str(hf_dir)])
    ours, _ = load_model(run, "cpu")
    cfg, state = load_hf(hf_dir)
    shape = ("dim", "n_layers", "n_heads", "vocab_size", "max_seq_len", "hidden_dim", "norm_eps",
             "rope_theta")  # fmt: skip
    assert [getattr(cfg, k) for k in shape] == [getattr(ours.cfg, k) for k in shape]
    for k, v in ours.state_dict().items():
        assert torch.equal(state[k], v), k
    out = tmp_path / "finetune"
    res = CliRunner().invoke(train_main, [
        "fit", "--data", str(build / "tokens"), "--out", str(out), "--init-from", str(hf_dir),
        "--steps", "1", "--batch-tokens", "128", "--micro-batch", "8", "--lr", "1e-12",
        "--warmup-steps", "0", "--no-progress", "--no-compile",
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "initialized weights from" in res.output
    tuned, _ = load_model(out, "cpu")
    w0, w1 = ours.layers[0].attention.wq.weight, tuned.layers[0].attention.wq.weight
    assert torch.allclose(w0, w1, atol=1e-6)


def test_init_from_with_another_vocabulary_is_an_error(run, build, tmp_path):
    hf_dir = tmp_path / "hf"
    CliRunner().invoke(train_main, ["export-hf", "--checkpoint", str(run), "--out", str(hf_dir)])
    cfg = json.loads((hf_dir / "config.json").read_text())
    cfg["vocab_size"] = 100
    (hf_dir / "config.json").write_text(json.dumps(cfg))
    res = CliRunner().invoke(train_main, [
        "fit", "--data", str(build / "tokens"), "--out", str(tmp_path / "x"),
        "--init-from", str(hf_dir), "--steps", "1", "--batch-tokens", "128",
    ])  # fmt: skip
    assert res.exit_code == 2
    assert "vocab_size 100, but the shards' tokenizer has 400" in res.output


def test_sample_and_eval_commands(run, build):
    args = ["sample", "--checkpoint", str(run), "--prompt", "the river", "--max-new-tokens", "8"]
    a = CliRunner().invoke(train_main, [*args, "--seed", "3"])
    b = CliRunner().invoke(train_main, [*args, "--seed", "3"])
    assert a.exit_code == 0, a.output
    assert a.output == b.output and a.output.startswith("the river")
    greedy = CliRunner().invoke(train_main, [*args, "--temperature", "0"])
    assert greedy.exit_code == 0, greedy.output
    res = CliRunner().invoke(
        train_main, ["eval", "--checkpoint", str(run), "--data", str(build / "tokens")]
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert set(report["sources"]) == {"web", "books"}
    assert report["perplexity"] > 1


def test_sample_and_eval_from_an_exported_folder(run, build, tmp_path):
    hf_dir = tmp_path / "hf"
    CliRunner().invoke(train_main, ["export-hf", "--checkpoint", str(run), "--out", str(hf_dir)])
    res = CliRunner().invoke(
        train_main, ["sample", "--checkpoint", str(hf_dir), "--prompt", "the", "--temperature", "0"]
    )
    assert res.exit_code == 0, res.output
    ours = CliRunner().invoke(
        train_main, ["sample", "--checkpoint", str(run), "--prompt", "the", "--temperature", "0"]
    )
    assert res.output == ours.output  # greedy decoding: same weights, same text
