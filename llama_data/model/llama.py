"""The LLaMA architecture as published (Touvron et al. 2023, section 2.2), in one readable file.

Pre-normalization with RMSNorm, SwiGLU feed-forward (hidden 2/3*4d rounded up to a multiple of 256),
rotary position embeddings on queries and keys, no biases, untied input and output embeddings.
Attention goes through `F.scaled_dot_product_attention` so CUDA picks the fused flash/cuDNN kernels.

Rotary embeddings rotate the two *halves* of each head (the "rotate_half" layout used by Hugging Face
transformers) rather than interleaved pairs as in Meta's release. Both are the same function up to
a fixed permutation of the q/k projection rows; choosing the half layout makes `export-hf` a plain
copy of the weights with no permutation to get wrong.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


@dataclass(frozen=True)
class LlamaConfig:
    """Shape of a LLaMA model. `ffn_hidden` is derived from `dim` unless given explicitly."""

    dim: int = 4096
    n_layers: int = 32
    n_heads: int = 32
    vocab_size: int = 32000
    max_seq_len: int = 2048
    multiple_of: int = 256
    ffn_hidden: int | None = None
    norm_eps: float = 1e-6
    rope_theta: float = 10000.0

    def __post_init__(self) -> None:
        if self.dim % self.n_heads:
            raise ValueError(f"dim {self.dim} is not divisible by n_heads {self.n_heads}")
        if (self.dim // self.n_heads) % 2:
            raise ValueError(f"head dim {self.dim // self.n_heads} must be even for rotary")
        for name in ("dim", "n_layers", "n_heads", "vocab_size", "max_seq_len", "multiple_of"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def hidden_dim(self) -> int:
        """SwiGLU width: 2/3 of 4d (same parameters as a 4d GELU MLP), rounded up to multiple_of."""
        if self.ffn_hidden is not None:
            return self.ffn_hidden
        hidden = int(2 * 4 * self.dim / 3)
        return self.multiple_of * math.ceil(hidden / self.multiple_of)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LlamaConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model config keys {unknown}; known: {sorted(known)}")
        return cls(**d)

    def num_params(self, *, embedding: bool = True) -> int:
        """Exact parameter count, computed from the shapes (equals the built model's count)."""
        d, h = self.dim, self.hidden_dim
        per_layer = 4 * d * d + 3 * d * h + 2 * d
        total = self.n_layers * per_layer + d + self.vocab_size * d  # + final norm + lm head
        return total + (self.vocab_size * d if embedding else 0)

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token: 6N + 12*layers*d*context (PaLM appendix B).

        N excludes the input embedding table: a lookup does no matmul. The output projection is a
        matmul and is counted.
        """
        t = seq_len or self.max_seq_len
        return 6 * self.num_params(embedding=False) + 12 * self.n_layers * self.dim * t


class RMSNorm(nn.Module):
    """Root-mean-square norm, computed in fp32 whatever the activation dtype (as Meta's code)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32:  # one fused op, gain included
            return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)
        normed = F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps).type_as(x)
        return normed * self.weight


def rotary_tables(cfg: LlamaConfig, device: torch.device | None = None) -> torch.Tensor:
    """cos and sin of every position's angles, stacked as (2, max_seq_len, head_dim / 2), fp32."""
    hd = cfg.head_dim
    inv_freq = 1.0 / (
        cfg.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.float32, device=device) / hd)
    )
    pos = torch.arange(cfg.max_seq_len, dtype=torch.float32, device=device)
    angles = torch.outer(pos, inv_freq)
    return torch.stack([angles.cos(), angles.sin()])


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, heads, T, head_dim) by its positions' angles; cos/sin are (T, head_dim / 2).

    Dimension i of the first half and dimension i of the second half form one rotated pair.
    """
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class KVCache:
    """Preallocated keys and values of one layer, for incremental decoding."""

    def __init__(
        self, batch: int, cfg: LlamaConfig, device: torch.device, dtype: torch.dtype
    ) -> None:
        shape = (batch, cfg.n_heads, cfg.max_seq_len, cfg.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = k.shape[2]
        end = self.length + t
        if end > self.k.shape[2]:
            raise ValueError(f"KV cache full: {end} positions > max_seq_len {self.k.shape[2]}")
        self.k[:, :, self.length : end] = k
        self.v[:, :, self.length : end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]


class Attention(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        self.wq = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.wo = nn.Linear(cfg.dim, cfg.dim, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        b, t, d = x.shape
        q = self.wq(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        past = 0
        if cache is not None:
            past = cache.length
            k, v = cache.update(k, v)
        if past == 0:  # square: the fused causal kernels apply
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif t == 1:  # one new token attends to everything cached
            y = F.scaled_dot_product_attention(q, k, v)
        else:  # a chunk after a prefix: query i sees keys up to past + i
            mask = torch.ones(t, past + t, dtype=torch.bool, device=x.device).tril(past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.wo(y.transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x)."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.w1 = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)  # gate
        self.w3 = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)  # up
        self.w2 = nn.Linear(cfg.hidden_dim, cfg.dim, bias=False)  # down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attention = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.feed_forward = FeedForward(cfg)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None = None
    ) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), cos, sin, cache)
        return x + self.feed_forward(self.ffn_norm(x))


class Llama(nn.Module):
    """Token ids (B, T) -> logits (B, T, vocab)."""

    def __init__(self, cfg: LlamaConfig, activation_checkpointing: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        self.activation_checkpointing = activation_checkpointing
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        # Not persistent: derived from the config, so checkpoints hold only learned weights.
        self.register_buffer("rope", rotary_tables(cfg), persistent=False)

    @torch.no_grad()
    def init_weights(self, seed: int | None = None) -> None:
        """Initialize in place (also after `to_empty` from the meta device).

        The paper does not give an initialization; we use the common practitioner choice: normal
        std 0.02 for all matrices, with the two residual-branch outputs (wo, w2) scaled by
        1/sqrt(2*layers) so the residual stream's variance does not grow with depth (GPT-2).
        """
        gen = None
        if seed is not None:
            gen = torch.Generator(device="cpu").manual_seed(seed)
        residual_std = 0.02 / math.sqrt(2 * self.cfg.n_layers)
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
                continue
            std = residual_std if name.endswith(("wo.weight", "w2.weight")) else 0.02
            _normal_(p, std, gen)
        self.rope.copy_(rotary_tables(self.cfg, device=self.rope.device))

    def forward(
        self,
        tokens: torch.Tensor,
        caches: list[KVCache] | None = None,
        *,
        targets: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (B, T, vocab); with `targets` (B, T), each row's mean token loss (B,) instead.

        Training passes the targets so that the loss is part of the model's graph: under
        torch.compile the log-softmax and the loss become one fused kernel (and its backward
        another) instead of materializing the log-probabilities of the whole vocabulary. Rows,
        not tokens: what the trainer needs (batch mean, per-source loss), and a reduction rather
        than a view, which FSDP2 wants of a root module's output.
        """
        t = tokens.shape[1]
        start = caches[0].length if caches else 0
        if start + t > self.cfg.max_seq_len:
            raise ValueError(f"sequence of {start + t} tokens > max_seq_len {self.cfg.max_seq_len}")
        cos, sin = self.rope[0, start : start + t], self.rope[1, start : start + t]
        h = self.tok_embeddings(tokens)
        for i, layer in enumerate(self.layers):
            cache = caches[i] if caches else None
            if self.activation_checkpointing and self.training and cache is None:
                h = checkpoint(layer, h, cos, sin, use_reentrant=False)
            else:
                h = layer(h, cos, sin, cache)
        logits = self.output(self.norm(h))
        return logits if targets is None else token_losses(logits, targets).mean(dim=1)

    def new_caches(self, batch: int, dtype: torch.dtype | None = None) -> list[KVCache]:
        device = self.output.weight.device
        dtype = dtype or self.output.weight.dtype
        return [KVCache(batch, self.cfg, device, dtype) for _ in self.layers]


def token_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per token in fp32, shape (B, T); `.float()` is free when logits are fp32."""
    return F.cross_entropy(
        logits.float().flatten(0, 1), targets.flatten(), reduction="none"
    ).view_as(targets)


def _normal_(p: torch.Tensor, std: float, gen: torch.Generator | None) -> None:
    """Normal init that is identical on every device: draw on CPU with the generator, then copy.

    Drawing on CPU makes a seed give the same weights on CPU and CUDA and for any process count.
    DTensors (FSDP2) are filled through their full tensor and redistributed.
    """
    full = torch.empty(p.shape, dtype=torch.float32).normal_(0.0, std, generator=gen)
    if hasattr(p, "device_mesh"):  # DTensor under FSDP2
        from torch.distributed.tensor import distribute_tensor

        p.copy_(distribute_tensor(full.to(p.device_mesh.device_type), p.device_mesh, p.placements))
    else:
        p.copy_(full.to(device=p.device, dtype=p.dtype))


def build_model(
    cfg: LlamaConfig,
    device: torch.device | str = "cpu",
    seed: int | None = 0,
    activation_checkpointing: bool = False,
) -> Llama:
    """Build on the meta device (allocating nothing), then materialize on `device` and init."""
    with torch.device("meta"):
        model = Llama(cfg, activation_checkpointing=activation_checkpointing)
    if str(device) == "meta":
        return model
    model.to_empty(device=device)
    model.init_weights(seed)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
