"""Checkpoints: host memory per rank while saving and loading sharded state; async save overhead.

Memory (`--memory`): W processes (gloo, CPU) build one model under FSDP2 (`fully_shard`), take one
AdamW step, then
- save: the trainer's sharded checkpoint (`checkpoint.train_state` + `Checkpointer.save`, DCP);
- gather: what every checkpoint did before #21, the full model and optimizer state dicts gathered
  to rank 0's CPU (`get_*_state_dict(full_state_dict=True, cpu_offload=True)`), for comparison;
then W' other processes build the same model fresh and load that checkpoint (resharding W -> W'),
and one process with no process group consolidates the model weights (`load_model_weights`, what
eval / sample / export-hf do). Each call is measured in its own process as the rise of the peak
resident set (Linux VmHWM, reset through /proc/self/clear_refs just before the call, after
glibc's malloc_trim hands freed heap pages back) over the resident set at its start: what the call
allocated at its worst moment. "shard" is what the rank holds of the fp32 weights and the two
AdamW moments; "full" is the whole of them.

Async (`--async`): `fit` in one process on a model large enough that writing a checkpoint takes
a while, three ways: checkpoints every E steps written synchronously, the same with
`--async-checkpoint`, and a baseline with only the last checkpoint. The overhead of one
checkpoint is (wall time of the run - the baseline's) / (checkpoints - 1), the last checkpoint
being in all three; plus how long the training loop was held up in each save (`fit` returns it).

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import io
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

from llama_data.pipeline.shards import ShardWriter  # noqa: E402


def _kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def measure(fn) -> tuple[object, int]:
    """(fn(), kB by which the peak RSS rose over the RSS at the start of the call)."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")
    before = _kb("VmRSS")
    result = fn()
    return result, _kb("VmHWM") - before


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _local_bytes(t: torch.Tensor) -> int:
    t = t.to_local() if hasattr(t, "to_local") else t
    return t.numel() * t.element_size()


def _mem_worker(rank: int, world: int, port: int, model: dict, root: str, phase: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))  # fmt: skip
    torch.set_num_threads(1)
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
        get_state_dict,
    )

    from llama_data.model import checkpoint as ckpt
    from llama_data.model.distributed import init_distributed, shutdown
    from llama_data.model.llama import LlamaConfig
    from llama_data.model.optim import build_optimizer
    from llama_data.model.trainer import TrainConfig, build_for_training

    d = init_distributed("cpu")
    mcfg = LlamaConfig(**model)
    net, raw, _ = build_for_training(mcfg, TrainConfig(parallel="fsdp", compile=False), d)
    opt = build_optimizer(raw, 1e-4, 0.1, device_type="cpu")
    rec: dict = {"rank": rank, "world": world}
    path = Path(root) / "checkpoints" / "step-000000001"
    cursor = {"position": 0, "epoch": 0, "rows": 0}
    if phase == "save":
        x = torch.randint(0, mcfg.vocab_size, (1, 16))
        net(x, targets=x).mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        saver = ckpt.Checkpointer(root, rank, world, keep=0)
        meta = {"model": mcfg.to_dict(), "world_size": world}
        _, rec["save_extra_kb"] = measure(
            lambda: saver.save(1, ckpt.train_state(net, opt, cursor, rank), meta)
        )
        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        gathered, rec["gather_extra_kb"] = measure(
            lambda: (
                get_model_state_dict(net, options=opts),
                get_optimizer_state_dict(net, opt, options=opts),
            )
        )
        del gathered
    else:
        get_state_dict(net, opt)  # the optimizer's state exists before it is loaded into
        saved_world = ckpt.read_meta(path)["world_size"]
        _, rec["load_extra_kb"] = measure(
            lambda: ckpt.load_train_state(path, net, opt, cursor, rank, saved_world)
        )
    shard = sum(_local_bytes(p) for p in raw.parameters())
    shard += sum(_local_bytes(v) for s in opt.state.values() for v in s.values() if v.dim() > 0)
    rec["shard_kb"] = shard // 1024
    Path(root, f"mem-{phase}-{rank}.json").write_text(json.dumps(rec))
    shutdown(d)


def _consolidate(path: Path) -> int:
    import torch.distributed.checkpoint  # noqa: F401 - its import (~55 MB of modules) is not load

    from llama_data.model import checkpoint as ckpt

    _, extra = measure(lambda: ckpt.load_model_weights(path))
    return extra


def memory_bench(args) -> dict:
    model = {"dim": args.dim, "n_layers": args.layers, "n_heads": args.heads,
             "vocab_size": args.vocab, "max_seq_len": 16, "multiple_of": 256}  # fmt: skip
    from llama_data.model.llama import Llama, LlamaConfig

    with torch.device("meta"):
        n = sum(p.numel() for p in Llama(LlamaConfig(**model)).parameters())
    root = Path(tempfile.mkdtemp(prefix="bench-ckpt-mem-"))
    try:
        t0 = time.perf_counter()
        mp.spawn(_mem_worker, args=(args.world, _free_port(), model, str(root), "save"),
                 nprocs=args.world)  # fmt: skip
        save = [json.loads((root / f"mem-save-{r}.json").read_text()) for r in range(args.world)]
        mp.spawn(_mem_worker, args=(args.load_world, _free_port(), model, str(root), "load"),
                 nprocs=args.load_world)  # fmt: skip
        load = [json.loads((root / f"mem-load-{r}.json").read_text())
                for r in range(args.load_world)]  # fmt: skip
        ctx = mp.get_context("spawn")
        with ctx.Pool(1) as pool:  # a fresh process: its RSS holds nothing of the above
            consolidate = pool.apply(_consolidate, (root / "checkpoints" / "step-000000001",))
        files = sorted(p.name for p in (root / "checkpoints" / "step-000000001").iterdir())
        return {
            "parameters": n,
            "full_state_kb": n * 12 // 1024,
            "weights_kb": n * 4 // 1024,
            "save_world": args.world,
            "load_world": args.load_world,
            "shard_kb": [r["shard_kb"] for r in save],
            "save_extra_kb": [r["save_extra_kb"] for r in save],
            "gather_to_rank0_extra_kb": [r["gather_extra_kb"] for r in save],
            "load_shard_kb": [r["shard_kb"] for r in load],
            "load_extra_kb": [r["load_extra_kb"] for r in load],
            "consolidate_weights_one_process_extra_kb": consolidate,
            "checkpoint_files": files,
            "seconds": round(time.perf_counter() - t0, 1),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# asynchronous save


def write_random_shards(path: Path, rows: int, context: int, vocab: int) -> Path:
    rng = np.random.default_rng(0)
    writer = ShardWriter(path, context, "uint16", sources=("web", "code"))
    writer.add_many(rng.integers(0, vocab, size=(rows, context + 1)), np.arange(rows) % 2)
    writer.close({"tokenizer": {"vocab_size": vocab, "bos_id": 1, "eos_id": 2}})
    return path


def _run(data: Path, out: Path, model: dict, args, every: int, background: bool) -> dict:
    from llama_data.model.trainer import TrainConfig, fit

    shutil.rmtree(out, ignore_errors=True)
    cfg = TrainConfig(
        data=str(data), out=str(out), preset="tiny", model=model,
        batch_tokens=args.rows * args.context, micro_batch=args.rows, steps=args.steps,
        warmup_steps=1, log_every=1, checkpoint_every=every, keep_checkpoints=2, lr=1e-4,
        progress=False, compile=False, device="cpu", async_checkpoint=background,
    )  # fmt: skip
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        summary = fit(cfg)
    wall = time.perf_counter() - t0
    recs = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    step_s = [args.rows * args.context / r["tokens_per_s"] for r in recs[1:]]
    return {"wall_s": wall, "blocked_s": summary["checkpoint_blocked_s"],
            "median_step_s": statistics.median(step_s)}  # fmt: skip


def async_bench(args) -> dict:
    torch.set_num_threads(args.threads)
    model = {"dim": args.dim, "n_layers": args.layers, "n_heads": args.heads,
             "multiple_of": 256}  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="bench-ckpt-async-"))
    try:
        rows = args.rows * args.steps + args.rows
        data = write_random_shards(root / "shards", rows, args.context, args.vocab)
        n_ckpt = args.steps // args.every
        rounds: dict[str, list] = {"sync": [], "async": [], "last_only": []}
        for _ in range(args.rounds):  # interleaved, so that the machine's load hits all alike
            rounds["last_only"].append(_run(data, root / "b", model, args, 10**9, False))
            rounds["sync"].append(_run(data, root / "s", model, args, args.every, False))
            rounds["async"].append(_run(data, root / "a", model, args, args.every, True))
        ckpt_bytes = sum(f.stat().st_size for f in (root / "s" / "checkpoints").rglob("*"))
        ckpt_bytes //= len(list((root / "s" / "checkpoints").glob("step-*")))
        out: dict = {"checkpoint_mb": round(ckpt_bytes / 1e6, 1), "checkpoints_per_run": n_ckpt,
                     "steps": args.steps, "rounds": args.rounds}  # fmt: skip
        base = [r["wall_s"] for r in rounds["last_only"]]
        for mode in ("sync", "async"):
            runs = rounds[mode]
            extra = [(r["wall_s"] - b) / (n_ckpt - 1) for r, b in zip(runs, base, strict=True)]
            blocked = [x for r in runs for x in r["blocked_s"][:-1]]  # the last: in all three
            out[mode] = {
                "overhead_per_checkpoint_s": [round(x, 3) for x in extra],
                "median_overhead_per_checkpoint_s": round(statistics.median(extra), 3),
                "median_blocked_per_checkpoint_s": round(statistics.median(blocked), 3),
                "median_step_s": round(statistics.median(r["median_step_s"] for r in runs), 3),
            }
        out["last_only"] = {
            "wall_s": [round(b, 2) for b in base],
            "median_step_s": round(statistics.median(r["median_step_s"] for r in rounds["last_only"]), 3),
        }  # fmt: skip
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--memory", action="store_true", help="only the memory measurement")
    ap.add_argument("--async", dest="async_", action="store_true", help="only the async one")
    ap.add_argument("--world", type=int, default=4, help="processes that save (memory)")
    ap.add_argument("--load-world", type=int, default=2, help="processes that load (memory)")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--context", type=int, default=32)
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--every", type=int, default=3, help="steps between checkpoints (async)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv if argv is not None else [])
    result: dict = {"bench": "checkpoint"}
    if not args.async_:
        result["memory"] = memory_bench(args)
    if not args.memory:
        result["async"] = async_bench(args)
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
