"""Sampling with a KV cache: temperature, nucleus (top-p), a seed, the build's SentencePiece model.

The prompt is run through the model once (prefill, filling every layer's cache), then each new
token costs one forward pass over a single position. Temperature 0 means greedy decoding.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from llama_data.model.llama import Llama
from llama_data.model.train_config import SampleOptions
from llama_data.pipeline.digest import file_sha256


def sample_next(
    logits: torch.Tensor, temperature: float, top_p: float, gen: torch.Generator | None
) -> torch.Tensor:
    """Pick one token per row of (B, vocab) logits."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        # keep the smallest prefix whose mass reaches top_p (the first token is always kept)
        drop = sorted_p.cumsum(dim=-1) - sorted_p > top_p
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        choice = torch.multinomial(sorted_p.cpu(), 1, generator=gen).to(order.device)
        return order.gather(-1, choice).squeeze(-1)
    return torch.multinomial(probs.cpu(), 1, generator=gen).squeeze(-1).to(logits.device)


@torch.no_grad()
def generate(
    model: Llama,
    prompt: list[int],
    max_new_tokens: int = 64,
    temperature: float = 0.8,
    top_p: float = 0.95,
    seed: int | None = 0,
    eos_id: int | None = None,
) -> list[int]:
    """Continue `prompt` (token ids); stops at eos_id or max_new_tokens or the model's context."""
    if not prompt:
        raise ValueError("the prompt is empty (give at least a BOS token)")
    model.eval()
    device = model.output.weight.device
    budget = model.cfg.max_seq_len - len(prompt)
    if budget <= 0:
        raise ValueError(
            f"prompt of {len(prompt)} tokens fills the context {model.cfg.max_seq_len}"
        )
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    caches = model.new_caches(1)
    logits = model(torch.tensor([prompt], device=device), caches)[:, -1]
    out: list[int] = []
    for _ in range(min(max_new_tokens, budget)):
        nxt = sample_next(logits, temperature, top_p, gen)
        tok = int(nxt[0])
        out.append(tok)
        if eos_id is not None and tok == eos_id:
            break
        if caches[0].length >= model.cfg.max_seq_len:
            break
        logits = model(nxt.view(1, 1), caches)[:, -1]
    return out


def find_tokenizer(
    explicit: str | None, data: str | None = None, model_dir: str | None = None
) -> Path:
    """The build's SentencePiece model: --tokenizer, else the one the shards were made with.

    The shard manifest records the tokenizer's sha256 (and sometimes its path). We look at the
    recorded path, then next to the shards and in the build's output root (`tokenizer.model`,
    `tokenizer/tokenizer.model`), and accept a file only if its sha256 matches the manifest's, so
    a sample is never decoded with another vocabulary.
    """
    if explicit:
        p = Path(explicit)
        if p.is_dir():
            p = p / "tokenizer.model"
        if not p.is_file():
            raise ValueError(f"--tokenizer {explicit}: no such file")
        return p
    if model_dir and (Path(model_dir) / "tokenizer.model").is_file():  # an exported HF folder
        return Path(model_dir) / "tokenizer.model"
    tok: dict = {}
    if data and (Path(data) / "manifest.json").is_file():
        tok = json.loads((Path(data) / "manifest.json").read_text()).get("tokenizer") or {}
    if not data:
        raise ValueError("pass --tokenizer PATH (the build's tokenizer.model)")
    shards = Path(data)
    candidates: list[Path] = []
    rel = tok.get("path") or tok.get("model")
    if rel:
        candidates += [Path(rel), shards / rel, shards.parent / rel]
    for base in (shards, shards.parent, shards.parent.parent):
        candidates += [base / "tokenizer.model", base / "tokenizer" / "tokenizer.model"]
    want = tok.get("sha256")
    for p in candidates:
        if p.is_file() and (want is None or file_sha256(p) == want):
            return p
    raise ValueError(
        f"cannot find the SentencePiece model of {data}"
        + (f" (sha256 {want[:16]}…)" if want else "")
        + ": pass --tokenizer PATH (the build's tokenizer.model)"
    )


class Tokenizer:
    """The build's SentencePiece model, with LLaMA's convention of a BOS before each document."""

    def __init__(self, path: str | Path) -> None:
        from llama_data.pipeline.tokenizer import Tokenizer as BuildTokenizer

        self.tok = BuildTokenizer(path)
        self.bos_id = self.tok.bos_id
        self.eos_id = self.tok.eos_id
        self.vocab_size = self.tok.vocab_size

    def encode(self, text: str, bos: bool = True) -> list[int]:
        ids = self.tok.encode(text) if text else []
        return ([self.bos_id] if bos and self.bos_id >= 0 else []) + ids

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode([i for i in ids if i != self.eos_id])


def sample_command(opts: SampleOptions) -> str:
    """`llama-train sample`: the prompt and its continuation."""
    from llama_data.model.trainer import load_model

    model, meta = load_model(opts.checkpoint, opts.device)
    data = (meta.get("train") or {}).get("data")
    tok = Tokenizer(find_tokenizer(opts.tokenizer, data, opts.checkpoint))
    if tok.vocab_size != model.cfg.vocab_size:
        raise ValueError(f"tokenizer has {tok.vocab_size} pieces, the model {model.cfg.vocab_size}")
    ids = generate(
        model,
        tok.encode(opts.prompt),
        opts.max_new_tokens,
        opts.temperature,
        opts.top_p,
        opts.seed,
        tok.eos_id,
    )
    return opts.prompt + tok.decode(ids)
