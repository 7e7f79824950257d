"""Hugging Face `LlamaForCausalLM` folders: export our weights, and load such a folder back.

The model's rotary layout is transformers' (rotate_half), so the weights are copied as they are,
only renamed. The folder holds config.json, model.safetensors, generation_config.json and, when the
build's SentencePiece model is known, tokenizer.model with tokenizer_config.json and
special_tokens_map.json (transformers builds its fast tokenizer from tokenizer.model on load).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch

from llama_data.model.llama import LlamaConfig
from llama_data.model.train_config import ExportOptions

_LAYER = {
    "attention.wq.weight": "self_attn.q_proj.weight",
    "attention.wk.weight": "self_attn.k_proj.weight",
    "attention.wv.weight": "self_attn.v_proj.weight",
    "attention.wo.weight": "self_attn.o_proj.weight",
    "feed_forward.w1.weight": "mlp.gate_proj.weight",
    "feed_forward.w3.weight": "mlp.up_proj.weight",
    "feed_forward.w2.weight": "mlp.down_proj.weight",
    "attention_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
}
_TOP = {
    "tok_embeddings.weight": "model.embed_tokens.weight",
    "norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_LAYER_RE = re.compile(r"^layers\.(\d+)\.(.+)$")
_HF_LAYER_RE = re.compile(r"^model\.layers\.(\d+)\.(.+)$")


def to_hf_name(name: str) -> str:
    if name in _TOP:
        return _TOP[name]
    m = _LAYER_RE.match(name)
    if m and m.group(2) in _LAYER:
        return f"model.layers.{m.group(1)}.{_LAYER[m.group(2)]}"
    raise KeyError(f"no Hugging Face name for parameter {name!r}")


def from_hf_name(name: str) -> str:
    for ours, hf in _TOP.items():
        if name == hf:
            return ours
    m = _HF_LAYER_RE.match(name)
    if m:
        for ours, hf in _LAYER.items():
            if m.group(2) == hf:
                return f"layers.{m.group(1)}.{ours}"
    raise KeyError(f"unexpected tensor {name!r} in a LlamaForCausalLM checkpoint")


def hf_config(cfg: LlamaConfig, bos_id: int | None, eos_id: int | None, dtype: str) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": cfg.dim,
        "intermediate_size": cfg.hidden_dim,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_heads,
        "head_dim": cfg.head_dim,
        "vocab_size": cfg.vocab_size,
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,  # transformers < 5
        "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "pad_token_id": None,
        "initializer_range": 0.02,
        "use_cache": True,
        "torch_dtype": dtype,
        "dtype": dtype,
    }


def config_from_hf(hf: dict, max_seq_len: int | None = None) -> LlamaConfig:
    """Our LlamaConfig for a HF config; refuses features our model does not have."""
    if hf.get("model_type") != "llama":
        raise ValueError(f"not a LLaMA checkpoint: model_type {hf.get('model_type')!r}")
    heads = hf["num_attention_heads"]
    unsupported = []
    if hf.get("num_key_value_heads", heads) != heads:
        unsupported.append(
            f"grouped-query attention (num_key_value_heads={hf['num_key_value_heads']})"
        )
    if hf.get("attention_bias") or hf.get("mlp_bias"):
        unsupported.append("biases")
    if hf.get("tie_word_embeddings"):
        unsupported.append("tied embeddings")
    rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        unsupported.append(f"rope scaling {rope.get('rope_type', rope.get('type'))!r}")
    if hf.get("head_dim") not in (None, hf["hidden_size"] // heads):
        unsupported.append(f"head_dim {hf['head_dim']} != hidden_size/heads")
    if unsupported:
        raise ValueError("the checkpoint uses features this model lacks: " + ", ".join(unsupported))
    theta = rope.get("rope_theta", hf.get("rope_theta", 10000.0))
    return LlamaConfig(
        dim=hf["hidden_size"],
        n_layers=hf["num_hidden_layers"],
        n_heads=heads,
        vocab_size=hf["vocab_size"],
        max_seq_len=max_seq_len or hf.get("max_position_embeddings", 2048),
        ffn_hidden=hf["intermediate_size"],
        norm_eps=hf.get("rms_norm_eps", 1e-6),
        rope_theta=float(theta),
    )


def export_hf(
    state: dict[str, torch.Tensor],
    cfg: LlamaConfig,
    out: str | Path,
    *,
    dtype: str = "float32",
    tokenizer: str | Path | None = None,
    bos_id: int | None = None,
    eos_id: int | None = None,
) -> Path:
    """Write a LlamaForCausalLM folder; written under a temporary name, then renamed."""
    from safetensors.torch import save_file

    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in torch_dtype:
        raise ValueError(f"dtype must be one of {sorted(torch_dtype)}, got {dtype!r}")
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    tensors = {
        to_hf_name(k): v.detach().to("cpu", torch_dtype[dtype]).contiguous()
        for k, v in state.items()
    }
    save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    (tmp / "config.json").write_text(json.dumps(hf_config(cfg, bos_id, eos_id, dtype), indent=2))
    gen = {
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "do_sample": True,
        "temperature": 0.8,
        "top_p": 0.95,
        "max_length": cfg.max_seq_len,
    }
    (tmp / "generation_config.json").write_text(json.dumps(gen, indent=2))
    if tokenizer is not None:
        _write_tokenizer(Path(tokenizer), tmp, cfg.max_seq_len)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def _write_tokenizer(model_file: Path, folder: Path, max_len: int) -> None:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model_file))
    shutil.copyfile(model_file, folder / "tokenizer.model")

    def piece(i: int) -> str | None:
        return sp.id_to_piece(i) if 0 <= i < sp.get_piece_size() else None

    special = {
        "bos_token": piece(sp.bos_id()),
        "eos_token": piece(sp.eos_id()),
        "unk_token": piece(sp.unk_id()),
    }
    if sp.pad_id() >= 0:
        special["pad_token"] = piece(sp.pad_id())
    special = {k: v for k, v in special.items() if v is not None}
    config = {
        "tokenizer_class": "LlamaTokenizer",
        "add_bos_token": True,
        "add_eos_token": False,
        "legacy": False,
        "model_max_length": max_len,
        "clean_up_tokenization_spaces": False,
        **special,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    try:
        fast = fast_tokenizer(sp)
    except ImportError:  # `tokenizers` is optional: transformers can convert tokenizer.model
        return
    fast.save(str(folder / "tokenizer.json"))


def fast_tokenizer(sp):  # -> tokenizers.Tokenizer
    """The SentencePiece BPE model as a `tokenizers` BPE with byte fallback (LLaMA's layout).

    Written as tokenizer.json so transformers loads it without converting tokenizer.model itself
    (that conversion needs a protobuf runtime matching sentencepiece's, which is often not there).
    Merges are rebuilt from the vocabulary: every split of a piece into two pieces is a merge,
    ranked by the merged piece's id (SentencePiece BPE ids follow merge order).
    """
    from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE

    n = sp.get_piece_size()
    vocab = {sp.id_to_piece(i): i for i in range(n)}
    special = [i for i in range(n) if sp.is_control(i) or sp.is_unknown(i)]
    merges = []
    for piece, pid in vocab.items():
        if pid in special or sp.is_byte(pid) or len(piece) < 2:
            continue
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in vocab and right in vocab:
                merges.append((pid, vocab[left], vocab[right], left, right))
    merges.sort()
    unk = sp.id_to_piece(sp.unk_id()) if sp.unk_id() >= 0 else None
    tok = Tokenizer(
        BPE(
            vocab=vocab,
            merges=[(m[3], m[4]) for m in merges],
            unk_token=unk,
            fuse_unk=True,
            byte_fallback=True,
        )  # fmt: skip
    )
    tok.add_special_tokens([AddedToken(sp.id_to_piece(i), special=True, normalized=False)
                            for i in special])  # fmt: skip
    prefix = sp.encode("a", out_type=str)[0].startswith("\u2581")  # add_dummy_prefix
    tok.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="\u2581", prepend_scheme="first" if prefix else "never", split=False
    )
    steps = [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()]
    if prefix:
        steps.append(decoders.Strip(content=" ", left=1))
    tok.decoder = decoders.Sequence(steps)
    if sp.bos_id() >= 0:
        bos = sp.id_to_piece(sp.bos_id())
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
            special_tokens=[(bos, sp.bos_id())],
        )  # fmt: skip
    return tok


def read_hf_config(folder: str | Path, max_seq_len: int | None = None) -> LlamaConfig:
    cfg_path = Path(folder) / "config.json"
    if not cfg_path.is_file():
        raise ValueError(f"{folder}: no config.json (not a Hugging Face model folder)")
    return config_from_hf(json.loads(cfg_path.read_text()), max_seq_len)


def load_hf(folder: str | Path, max_seq_len: int | None = None) -> tuple[LlamaConfig, dict]:
    """Read a LlamaForCausalLM folder (safetensors, single or sharded) into our names."""
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg = read_hf_config(folder, max_seq_len)
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ValueError(f"{folder}: no .safetensors weights")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        for k, v in load_file(str(f)).items():
            if k.endswith("rotary_emb.inv_freq"):
                continue
            state[from_hf_name(k)] = v.float()
    return cfg, state


def is_hf_folder(path: str | Path) -> bool:
    p = Path(path) / "config.json"
    if not p.is_file():
        return False
    try:
        return "LlamaForCausalLM" in json.loads(p.read_text()).get("architectures", [])
    except ValueError:
        return False


def export_checkpoint(
    checkpoint: str | Path, out: str | Path, dtype: str = "float32", tokenizer: str | None = None
) -> Path:
    """Export a run's latest checkpoint (or a given one) with the build's tokenizer."""
    import sys

    from llama_data.model import checkpoint as ckpt
    from llama_data.model.generate import find_tokenizer

    path = Path(checkpoint)
    target = ckpt.resolve(path)
    if target is None:
        raise ValueError(f"{path}: no checkpoint (expected RUN/checkpoints/step-*/)")
    meta = ckpt.read_meta(target)
    cfg = LlamaConfig.from_dict(meta["model"])
    # a sharded checkpoint is consolidated here, on the CPU of this one process: the model's
    # weights only (the optimizer state is never read), which the single safetensors file needs
    state = ckpt.load_model_weights(target)
    data = (meta.get("train") or {}).get("data")
    bos = eos = None
    if data and (Path(data) / "manifest.json").is_file():
        tok = json.loads((Path(data) / "manifest.json").read_text()).get("tokenizer") or {}
        bos, eos = tok.get("bos_id"), tok.get("eos_id")
    try:
        tok_path: Path | None = find_tokenizer(tokenizer, data)
    except ValueError as e:
        if tokenizer:
            raise
        print(f"warning: exporting without a tokenizer: {e}", file=sys.stderr)
        tok_path = None
    return export_hf(state, cfg, out, dtype=dtype, tokenizer=tok_path, bos_id=bos, eos_id=eos)


def export_command(opts: ExportOptions) -> str:
    """`llama-train export-hf`."""
    return f"wrote {export_checkpoint(opts.checkpoint, opts.out, opts.dtype, opts.tokenizer)}"
