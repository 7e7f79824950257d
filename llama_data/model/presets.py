"""Model presets: the paper's Table 2 plus small shapes that train on one machine.

Table 2 of Touvron et al. (2023): all models use context 2048, a 32k SentencePiece vocabulary and a
batch of 4M tokens (2^22); 7B/13B use lr 3.0e-4, 33B/65B use 1.5e-4. The small presets follow the
same recipe scaled down (125m is GPT-3 Small's shape; 1b is a 2048-wide, 18-layer model with
128-dimensional heads, the width torchtitan and TinyLlama use at this scale).
"""

from __future__ import annotations

from dataclasses import dataclass

from llama_data.model.llama import LlamaConfig


@dataclass(frozen=True)
class Preset:
    model: LlamaConfig
    lr: float
    batch_tokens: int
    paper: bool = False


_M = 2**20

PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        LlamaConfig(dim=64, n_layers=2, n_heads=4, max_seq_len=256, multiple_of=32), 1e-3, 8192
    ),
    "125m": Preset(LlamaConfig(dim=768, n_layers=12, n_heads=12), 6e-4, _M // 2),
    "1b": Preset(LlamaConfig(dim=2048, n_layers=18, n_heads=16), 4e-4, _M),
    "7b": Preset(LlamaConfig(dim=4096, n_layers=32, n_heads=32), 3.0e-4, 4 * _M, paper=True),
    "13b": Preset(LlamaConfig(dim=5120, n_layers=40, n_heads=40), 3.0e-4, 4 * _M, paper=True),
    "33b": Preset(LlamaConfig(dim=6656, n_layers=60, n_heads=52), 1.5e-4, 4 * _M, paper=True),
    "65b": Preset(LlamaConfig(dim=8192, n_layers=80, n_heads=64), 1.5e-4, 4 * _M, paper=True),
}


def get_preset(name: str) -> Preset:
    key = name.lower()
    if key not in PRESETS:
        import difflib

        close = difflib.get_close_matches(key, PRESETS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown preset {name!r}{hint}; choose from {', '.join(PRESETS)}")
    return PRESETS[key]
