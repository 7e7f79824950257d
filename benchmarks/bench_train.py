"""Training throughput: `fit` vs a bare loop vs transformers' LlamaForCausalLM; MFU on a GPU.

CPU mode: one model shape, three contenders, measured in interleaved rounds (bare and hf even
alternate step by step) so that load from other processes on the machine hits them alike; CPU
seconds per step after a warm-up, median over rounds.
- fit: `llama_data.model.trainer.fit` on shards written for the benchmark (loader, accumulation,
  clipping, per-source loss, logging: everything a run does except checkpoints), with fit's own
  defaults: torch.compile on where it works (`--no-compile` / `--compile` to force either way);
- bare: the same model (compiled when fit compiles), data already in memory, forward with the
  loss / backward / AdamW step;
- hf: transformers' LlamaForCausalLM with the same config, fp32 and batch, with its own defaults
  (sdpa attention, eager; `--hf-compile` compiles it too), torch's AdamW, F.cross_entropy.
Targets: fit within 5% of bare; fit >= 1.2x hf. Compilation is not steady-state throughput: the
first `fit` run (which compiles) is timed apart, as `fit_first_run_wall_s`.

GPU mode (`--gpu`, and by default when CUDA is available): `fit` with the 1b preset at context 2048 in bf16 (torch.compile on), MFU as
the trainer logs it (6N + 12*layers*d*context FLOPs per token over the GPU's peak bf16 FLOP/s).

Prints one JSON line of results.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from llama_data.model.llama import Llama, LlamaConfig, build_model
from llama_data.model.optim import build_optimizer
from llama_data.model.trainer import TrainConfig, fit, want_compile
from llama_data.pipeline.shards import ShardWriter


def write_random_shards(path: Path, rows: int, context: int, vocab: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    writer = ShardWriter(path, context, "uint16" if vocab <= 65536 else "uint32",
                         sources=("web", "code"))  # fmt: skip
    block = rng.integers(0, vocab, size=(rows, context + 1))
    ids = np.arange(rows) % 2
    writer.add_many(block, ids)
    writer.close({"tokenizer": {"vocab_size": vocab, "bos_id": 1, "eos_id": 2}})
    return path


def _paired_cost(loops: list, batches, warmup: int, steps: int) -> list[tuple[list, list]]:
    """Per (model, optimizer): CPU and wall seconds of each step after the warm-up. The loops
    alternate step by step, so that whatever else the machine does hits them alike."""
    out: list[tuple[list, list]] = [([], []) for _ in loops]
    for i in range(warmup + steps):
        x, y = batches[i % len(batches)]
        for j, (model, opt) in enumerate(loops):
            c0, w0 = time.process_time(), time.perf_counter()
            if isinstance(model, Llama):  # ours: the loss inside the model, as `fit` runs it
                loss = model(x, targets=y).mean()
            else:  # what transformers' own causal-LM loss does with the logits
                loss = F.cross_entropy(model(x).logits.float().flatten(0, 1), y.flatten())
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            loss.item()
            if i >= warmup:
                out[j][0].append(time.process_time() - c0)
                out[j][1].append(time.perf_counter() - w0)
    return out


def _fit_steps(data: Path, root: Path, model: dict, args, tag: str) -> list[float]:
    """CPU seconds of each step of a `fit` run after the warm-up, from the run's own log.

    The log is written every step here (log_every=1), which costs `fit` a loss sync and a JSON
    line per step: the overhead measured is an upper bound of a run logging every 10 steps.
    """
    import contextlib
    import io

    out = root / f"run-{tag}"
    cfg = TrainConfig(
        data=str(data), out=str(out), preset="tiny", model=model,
        batch_tokens=args.rows * args.context, micro_batch=args.rows,
        steps=args.warmup + args.steps, warmup_steps=2, log_every=1, checkpoint_every=10**9,
        lr=3e-4, progress=False, compile=args.compile, device="cpu",
    )  # fmt: skip
    # The trainer times its log windows with time.perf_counter; pointing that at this process's
    # CPU clock makes its logged tokens/s tokens per CPU-second, like the other contenders'.
    from types import SimpleNamespace

    from llama_data.model import trainer

    real_time = trainer.time
    trainer.time = SimpleNamespace(perf_counter=time.process_time)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            fit(cfg)
    finally:
        trainer.time = real_time
    recs = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    return [args.rows * args.context / r["tokens_per_s"] for r in recs[args.warmup :]]


def _fit_extra_work(data: Path, model, args, reps: int = 200) -> dict[str, float]:
    """CPU seconds per step of what `fit` does besides forward/backward/step."""
    from llama_data.model.data import ShardLoader, open_shards
    from llama_data.model.optim import lr_at, set_lr

    ds = open_shards(data)
    loader = ShardLoader(ds, args.rows)
    opt = build_optimizer(model, 3e-4)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    src_loss = torch.zeros(len(ds.sources), dtype=torch.float64)
    src_rows = torch.zeros(len(ds.sources), dtype=torch.float64)
    row_loss = torch.rand(args.rows)

    def timed(fn, n: int = reps) -> float:
        c0 = time.process_time()
        for _ in range(n):
            fn()
        return (time.process_time() - c0) / n

    def bookkeeping() -> None:
        batch = loader.next_batch()
        src_loss.index_add_(0, batch.source_ids, row_loss.double())
        src_rows.index_add_(0, batch.source_ids, torch.ones(args.rows, dtype=torch.float64))
        set_lr(opt, lr_at(100, 3e-4, 10, 1000))

    return {
        "loader_and_bookkeeping": timed(bookkeeping),
        "grad_clip": timed(lambda: torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0), 50),
    }


def cpu_bench(args) -> dict:
    """CPU seconds per step of this process (median over all measured steps of all rounds), one
    thread by default: on a shared machine wall-clock time mostly measures the neighbours (a CPU
    quota shared with other jobs). Rounds alternate fit / bare+hf, and bare and hf alternate step
    by step; wall-clock figures of bare and hf and the load average come along.
    """
    torch.set_num_threads(args.threads)
    cfg = LlamaConfig(
        dim=args.dim, n_layers=args.layers, n_heads=args.heads, vocab_size=args.vocab,
        max_seq_len=args.context,
    )  # fmt: skip
    model_over = {
        "dim": cfg.dim, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads,
        "multiple_of": cfg.multiple_of,
    }  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="bench-train-"))
    rows = args.rows * (args.warmup + args.steps + 1)
    data = write_random_shards(root / "shards", rows, args.context, args.vocab)
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(4):
        t = torch.randint(0, args.vocab, (args.rows, args.context + 1), generator=g)
        batches.append((t[:, :-1], t[:, 1:]))

    compiled = want_compile(TrainConfig(compile=args.compile), torch.device("cpu"))
    ours = build_model(cfg, seed=0)
    if compiled:
        ours.compile()
    ours_opt = build_optimizer(ours, 3e-4)

    from transformers import LlamaConfig as HFConfig
    from transformers import LlamaForCausalLM

    hf_cfg = HFConfig(
        hidden_size=cfg.dim, intermediate_size=cfg.hidden_dim, num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.n_heads,
        vocab_size=cfg.vocab_size, max_position_embeddings=cfg.max_seq_len, rms_norm_eps=1e-6,
        tie_word_embeddings=False, use_cache=False, attn_implementation="sdpa",
    )  # fmt: skip
    hf = LlamaForCausalLM(hf_cfg).train()
    if args.hf_compile:
        hf.compile()
    # what one writes around transformers: torch's AdamW with its defaults (foreach), no decay split
    hf_opt = torch.optim.AdamW(hf.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)

    w0 = time.perf_counter()
    _fit_steps(data, root, model_over, args, "prime")  # imports, compilation, first-call costs
    first_wall = time.perf_counter() - w0
    run_wall = []
    wall: dict[str, list[float]] = {"bare": [], "hf": []}
    cpu: dict[str, list[float]] = {"fit": [], "bare": [], "hf": []}
    for r in range(args.rounds):
        w0 = time.perf_counter()
        cpu["fit"] += _fit_steps(data, root, model_over, args, str(r))
        run_wall.append(time.perf_counter() - w0)
        (cb, wb), (ch, wh) = _paired_cost(
            [(ours, ours_opt), (hf, hf_opt)], batches, args.warmup, args.steps
        )
        cpu["bare"] += cb
        wall["bare"] += wb
        cpu["hf"] += ch
        wall["hf"] += wh
    extra = _fit_extra_work(data, ours, args)
    tokens = args.rows * args.context
    tps = {k: tokens / statistics.median(v) for k, v in cpu.items()}
    wall_tps = {k: tokens / statistics.median(v) for k, v in wall.items()}
    return {
        "bench": "train_cpu",
        "config": {
            **cfg.to_dict(),
            "rows": args.rows,
            "threads": args.threads,
            "compile": compiled,
            "hf_compile": args.hf_compile,
            "params": cfg.num_params(),
        },  # fmt: skip
        "tokens_per_cpu_s": {k: round(v, 1) for k, v in tps.items()},
        "tokens_per_wall_s": {k: round(v, 1) for k, v in wall_tps.items()},
        "fit_overhead_vs_bare": round(1 - tps["fit"] / tps["bare"], 4),
        "fit_speedup_vs_hf": round(tps["fit"] / tps["hf"], 3),
        "bare_speedup_vs_hf": round(tps["bare"] / tps["hf"], 3),
        # fit's work beyond the bare loop, timed in isolation (many repetitions, so far less
        # noisy than the difference of two whole runs): as a fraction of a bare step
        "fit_extra_work_s_per_step": {k: round(v, 6) for k, v in extra.items()},
        "fit_extra_work_vs_bare_step": round(
            sum(extra.values()) / statistics.median(cpu["bare"]), 4
        ),
        # the first fit run holds compilation (from an empty or a warm inductor cache)
        "fit_first_run_wall_s": round(first_wall, 1),
        "fit_run_wall_s": round(statistics.median(run_wall), 1),
        "rounds": args.rounds,
        "steps_per_round": args.steps,
        "load_average": round(__import__("os").getloadavg()[0], 1),
        "torch": torch.__version__,
    }


def gpu_bench(args) -> dict:
    if not torch.cuda.is_available():
        return {"bench": "train_gpu", "error": "no CUDA device"}
    from llama_data.model.presets import get_preset

    p = get_preset("1b")
    ctx = 2048
    root = Path(tempfile.mkdtemp(prefix="bench-train-gpu-"))
    rows_per_step = args.gpu_micro_batch * args.gpu_accum
    rows = rows_per_step * (args.gpu_steps + 1)
    data = write_random_shards(root / "shards", rows, ctx, p.model.vocab_size)
    cfg = TrainConfig(
        data=str(data), out=str(root / "run"), preset="1b", batch_tokens=rows_per_step * ctx,
        micro_batch=args.gpu_micro_batch, steps=args.gpu_steps, warmup_steps=10,
        log_every=args.gpu_log_every, checkpoint_every=10**9, dtype="bf16", compile=True,
        activation_checkpointing=args.gpu_ac, peak_tflops=args.peak_tflops, progress=False,
    )  # fmt: skip
    fit(cfg)
    recs = [json.loads(x) for x in (root / "run" / "log.jsonl").read_text().splitlines()]
    steady = recs[1:] or recs  # the first window holds compilation
    return {
        "bench": "train_gpu",
        "device": torch.cuda.get_device_name(),
        "preset": "1b",
        "context": ctx,
        "micro_batch": args.gpu_micro_batch,
        "accum": args.gpu_accum,
        "tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in steady), 1),
        "mfu": round(statistics.median(r.get("mfu", float("nan")) for r in steady), 4),
        "max_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 1),
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", action="store_true", help="only the GPU MFU benchmark")
    ap.add_argument("--cpu", action="store_true", help="only the CPU benchmark")
    ap.add_argument("--dim", type=int, default=192)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--compile", action=argparse.BooleanOptionalAction, default=None,
        help="torch.compile ours (default: as fit does, on where supported)",
    )  # fmt: skip
    ap.add_argument("--hf-compile", action="store_true", help="torch.compile transformers' too")
    ap.add_argument("--gpu-micro-batch", type=int, default=8)
    ap.add_argument("--gpu-accum", type=int, default=4)
    ap.add_argument("--gpu-steps", type=int, default=40)
    ap.add_argument("--gpu-log-every", type=int, default=10)
    ap.add_argument("--gpu-ac", action="store_true", help="activation checkpointing")
    ap.add_argument("--peak-tflops", type=float, default=None)
    # `python -m benchmarks` calls main() with its own argv in sys.argv: parse only what we're given
    args = ap.parse_args(argv if argv is not None else [])
    if args.gpu:
        result = gpu_bench(args)
    elif args.cpu or not torch.cuda.is_available():
        result = cpu_bench(args)
    else:  # a GPU is there: both, in one line
        result = {"bench": "train", "cpu": cpu_bench(args), "gpu": gpu_bench(args)}
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
