"""The LLaMA model: shapes, parameter counts, rotary embeddings, causal masking, KV cache."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from llama_data.model.llama import (
    LlamaConfig,
    RMSNorm,
    apply_rotary,
    build_model,
    count_parameters,
    rotary_tables,
    token_losses,
)
from llama_data.model.presets import PRESETS, get_preset

TINY = LlamaConfig(dim=32, n_layers=2, n_heads=4, vocab_size=50, max_seq_len=24, multiple_of=16)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def test_forward_shapes_and_dtype():
    model = build_model(TINY, seed=0)
    tokens = torch.randint(0, TINY.vocab_size, (3, 10))
    logits = model(tokens)
    assert logits.shape == (3, 10, TINY.vocab_size)
    assert logits.dtype == torch.float32
    assert TINY.hidden_dim == 96  # 2/3 * 4 * 32 = 85.3 -> next multiple of 16


def test_targets_give_each_rows_mean_token_loss():
    model = build_model(TINY, seed=0)
    tokens = torch.randint(0, TINY.vocab_size, (2, 11))
    x, y = tokens[:, :-1], tokens[:, 1:]
    losses = model(x, targets=y)
    assert losses.shape == (2,)
    assert not losses._is_view()  # FSDP2 warns about a view as a root module's output
    torch.testing.assert_close(losses, token_losses(model(x), y).mean(1), rtol=0, atol=0)
    manual = -model(x).log_softmax(-1).gather(-1, y[..., None]).squeeze(-1)
    torch.testing.assert_close(losses, manual.mean(1))


def test_rmsnorm_fp32_path_matches_the_formula():
    norm = RMSNorm(8, 1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 2.0, 8))
    x = torch.randn(3, 8)
    want = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * norm.weight
    torch.testing.assert_close(norm(x), want)
    torch.testing.assert_close(norm(x.bfloat16()).float(), want, atol=3e-2, rtol=3e-2)


@pytest.mark.parametrize(
    ("name", "hidden", "params"),
    [
        ("7b", 11008, 6_738_415_616),
        ("13b", 13824, 13_015_864_320),
        ("33b", 17920, 32_528_943_616),
        ("65b", 22016, 65_285_660_672),
    ],
)
def test_paper_presets_on_meta_device(name, hidden, params):
    cfg = PRESETS[name].model
    assert cfg.hidden_dim == hidden
    model = build_model(cfg, device="meta")
    assert count_parameters(model) == params == cfg.num_params()
    assert all(p.is_meta for p in model.parameters())
    assert cfg.vocab_size == 32000 and cfg.max_seq_len == 2048
    assert PRESETS[name].batch_tokens == 4 * 2**20


def test_table2_hyperparameters():
    table = {"7b": (4096, 32, 32, 3e-4), "13b": (5120, 40, 40, 3e-4),
             "33b": (6656, 52, 60, 1.5e-4), "65b": (8192, 64, 80, 1.5e-4)}  # fmt: skip
    for name, (d, heads, layers, lr) in table.items():
        p = get_preset(name)
        assert (p.model.dim, p.model.n_heads, p.model.n_layers, p.lr) == (d, heads, layers, lr)


def test_param_count_formula_matches_built_model():
    model = build_model(TINY, seed=0)
    assert count_parameters(model) == TINY.num_params()
    names = dict(model.named_parameters())
    assert not any("bias" in n for n in names)
    # untied: the output projection is its own tensor
    assert names["output.weight"].data_ptr() != names["tok_embeddings.weight"].data_ptr()


def test_unknown_preset_names_the_closest():
    with pytest.raises(ValueError, match="did you mean '7b'"):
        get_preset("7bb")


def test_dry_run_prints_exact_count_for_7b():
    from llama_data.cli import train_main

    result = CliRunner().invoke(train_main, ["fit", "--preset", "7b", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "6,738,415,616 parameters (6.7B)" in result.output


def test_rope_depends_only_on_relative_position():
    cfg = LlamaConfig(dim=64, n_layers=1, n_heads=2, vocab_size=10, max_seq_len=64)
    cos, sin = rotary_tables(cfg)
    g = torch.Generator().manual_seed(0)
    q = torch.randn(cfg.head_dim, generator=g)
    k = torch.randn(cfg.head_dim, generator=g)

    def score(m: int, n: int) -> torch.Tensor:
        qm = apply_rotary(q.view(1, 1, 1, -1), cos[m : m + 1], sin[m : m + 1])
        kn = apply_rotary(k.view(1, 1, 1, -1), cos[n : n + 1], sin[n : n + 1])
        return (qm * kn).sum()

    for offset in (0, 5, 17):
        ref = score(3, 0)
        assert torch.allclose(score(3 + offset, offset), ref, atol=1e-5)
    assert not torch.allclose(score(7, 0), score(3, 0), atol=1e-3)
    # rotation preserves norms
    qr = apply_rotary(q.view(1, 1, 1, -1), cos[9:10], sin[9:10])
    assert torch.allclose(qr.norm(), q.norm(), atol=1e-5)


def test_future_tokens_do_not_change_past_logits():
    model = build_model(TINY, seed=1)
    a = torch.randint(0, TINY.vocab_size, (1, 12))
    b = a.clone()
    b[0, 6:] = (b[0, 6:] + 7) % TINY.vocab_size
    la, lb = model(a), model(b)
    assert torch.equal(la[0, :6], lb[0, :6]) or torch.allclose(la[0, :6], lb[0, :6], atol=1e-6)
    assert not torch.allclose(la[0, 6:], lb[0, 6:], atol=1e-3)


def test_kv_cache_decoding_matches_full_forward():
    model = build_model(TINY, seed=2)
    tokens = torch.randint(0, TINY.vocab_size, (2, 14))
    full = model(tokens)
    caches = model.new_caches(2)
    parts = [model(tokens[:, :5], caches)]  # prefill
    parts.append(model(tokens[:, 5:9], caches))  # a chunk after a prefix
    parts += [model(tokens[:, i : i + 1], caches) for i in range(9, 14)]  # one token at a time
    assert torch.allclose(torch.cat(parts, dim=1), full, atol=1e-5)


def test_activation_checkpointing_gives_same_gradients():
    tokens = torch.randint(0, TINY.vocab_size, (2, 10))
    grads = []
    for ac in (False, True):
        model = build_model(TINY, seed=3, activation_checkpointing=ac)
        model(tokens).float().logsumexp(-1).mean().backward()
        grads.append(model.layers[0].attention.wq.weight.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_seeded_init_is_reproducible_and_scaled():
    m1, m2 = build_model(TINY, seed=5), build_model(TINY, seed=5)
    for (n, p1), p2 in zip(m1.named_parameters(), m2.parameters(), strict=True):
        assert torch.equal(p1, p2), n
    assert torch.all(m1.norm.weight == 1)
    assert m1.layers[0].attention.wo.weight.std() < m1.layers[0].attention.wq.weight.std()


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="not divisible"):
        LlamaConfig(dim=30, n_heads=4)
    with pytest.raises(ValueError, match="unknown model config keys"):
        LlamaConfig.from_dict({"dim": 32, "n_layer": 2})
