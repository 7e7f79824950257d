"""`fit` and `evaluate`: the training loop around the model, data, optimizer and checkpoints.

One global step = `accum` micro-steps on every rank; a global batch is `batch_tokens` tokens
(rounded to whole rows and to a multiple of micro-batch x ranks). Gradients of the micro-steps are
accumulated (DDP/FSDP synchronize only on the last one), clipped to norm 1.0, then AdamW steps with
the learning rate of the schedule. On CUDA the model keeps fp32 master weights and computes in bf16
(autocast for single GPU and DDP; FSDP2's mixed-precision policy, with fp32 gradient reduction,
under `--parallel fsdp`). On CPU everything is fp32 unless `--dtype bf16` is asked for.
"""

from __future__ import annotations

import json
import math
import sys
import time
import tomllib
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from llama_data.model import checkpoint as ckpt
from llama_data.model.data import ShardLoader, open_shards
from llama_data.model.distributed import (
    Dist,
    all_reduce_sum,
    init_distributed,
    shutdown,
)
from llama_data.model.llama import Llama, LlamaConfig, count_parameters, token_losses
from llama_data.model.metrics import Progress, RunLog, mfu, peak_tflops
from llama_data.model.optim import build_optimizer, lr_at, set_lr
from llama_data.model.presets import get_preset
from llama_data.model.train_config import EvalOptions, TrainConfig, TrainError, model_overrides

OOM_HELP = (
    "out of GPU memory. Options that reduce memory: a smaller --micro-batch (the global batch is "
    "kept by accumulating more micro-steps), --activation-checkpointing, --parallel fsdp with more "
    "GPUs (shards parameters, gradients and optimizer state), --dtype bf16, or a smaller --preset."
)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or JSON file of TrainConfig keys; unknown keys are an error with a hint."""
    path = Path(path)
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as e:
        raise TrainError(f"{path}: cannot parse: {e}") from e
    if isinstance(data.get("train"), dict):  # allow a [train] table
        data = {**{k: v for k, v in data.items() if k != "train"}, **data["train"]}
    known = {f.name for f in fields(TrainConfig)}
    for key in data:
        if key not in known:
            import difflib

            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TrainError(f"{path}: unknown key {key!r}{hint}")
    if "model" in data:
        _check_model_overrides(data["model"], str(path))
    return data


def _check_model_overrides(overrides: dict, where: str) -> None:
    known = {f.name for f in fields(LlamaConfig)}
    for key in overrides:
        if key not in known:
            import difflib

            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TrainError(f"{where}: unknown model key {key!r}{hint}")


def model_config(cfg: TrainConfig, vocab_size: int | None, context: int) -> LlamaConfig:
    """The preset's shape with the data's vocabulary and context, then the user's overrides."""
    try:
        base = get_preset(cfg.preset).model
    except ValueError as e:
        raise TrainError(str(e)) from e
    _check_model_overrides(cfg.model, "model")
    if cfg.init_from:
        from llama_data.model.export import read_hf_config

        try:
            base = read_hf_config(cfg.init_from, max_seq_len=context)
        except (OSError, ValueError, KeyError) as e:
            raise TrainError(f"--init-from {cfg.init_from}: {e}") from e
        if vocab_size is not None and base.vocab_size != vocab_size:
            raise TrainError(
                f"--init-from {cfg.init_from}: vocab_size {base.vocab_size}, but the shards' "
                f"tokenizer has {vocab_size} (the weights belong to another vocabulary)"
            )
    updates: dict[str, Any] = {"max_seq_len": context}
    if vocab_size is not None:
        updates["vocab_size"] = vocab_size
    updates.update(cfg.model)
    try:
        return replace(base, **updates)
    except ValueError as e:
        raise TrainError(f"model config: {e}") from e


def dry_run(preset: str, overrides: dict | None = None, context: int | None = None) -> dict:
    """Build the model on the meta device (allocating nothing) and describe it."""
    try:
        p = get_preset(preset)
    except ValueError as e:
        raise TrainError(str(e)) from e
    _check_model_overrides(overrides or {}, "model")
    mcfg = replace(
        p.model, **{**({"max_seq_len": context} if context else {}), **(overrides or {})}
    )
    with torch.device("meta"):
        model = Llama(mcfg)
    n = count_parameters(model)
    return {
        "preset": preset,
        "parameters": n,
        "parameters_human": human_count(n),
        "non_embedding_parameters": n - 2 * mcfg.vocab_size * mcfg.dim,
        "model": mcfg.to_dict(),
        "ffn_hidden": mcfg.hidden_dim,
        "lr": p.lr,
        "batch_tokens": p.batch_tokens,
        "flops_per_token": mcfg.flops_per_token(),
        "memory_gb_weights_grads_adam_fp32": round(n * 16 / 1e9, 1),
    }


def human_count(n: int) -> str:
    for div, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


# ---------------------------------------------------------------------------------------------
# model construction


def _compute_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype:
    if cfg.dtype == "bf16" or (cfg.dtype == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return torch.float32


def compile_supported(device: torch.device) -> bool:
    """Whether torch.compile can be expected to work here: dynamo supports this Python, and the
    inductor backend has what it generates code with (Triton on CUDA, a C++ compiler on CPU)."""
    if not torch._dynamo.is_dynamo_supported():
        return False
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        return has_triton()
    if device.type == "cpu":
        from torch._inductor.cpp_builder import get_cpp_compiler

        try:
            return bool(get_cpp_compiler())
        except Exception:  # noqa: BLE001 - any failure to find one means "no compiler"
            return False
    return False


def want_compile(cfg: TrainConfig, device: torch.device) -> bool:
    """`compile` if set, else on where supported. Left to this default, a graph that still fails
    to compile runs eagerly (dynamo's suppress_errors) instead of stopping the run."""
    if cfg.compile is not None:
        return cfg.compile
    if not compile_supported(device):
        return False
    torch._dynamo.config.suppress_errors = True
    return True


def build_for_training(
    mcfg: LlamaConfig, cfg: TrainConfig, d: Dist, compile_: bool = False
) -> tuple[nn.Module, Llama, torch.dtype]:
    """Returns (the module to call, the bare Llama inside it, compute dtype)."""
    compute = _compute_dtype(cfg, d.device)
    with torch.device("meta"):
        model = Llama(mcfg, activation_checkpointing=cfg.activation_checkpointing)
    fsdp = d.enabled and cfg.parallel == "fsdp"
    if fsdp:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        mesh = init_device_mesh(d.device.type, (d.world,))
        mp = MixedPrecisionPolicy(
            param_dtype=compute if compute != torch.float32 else None, reduce_dtype=torch.float32
        )
        for layer in model.layers:
            if compile_:
                layer.compile()
            fully_shard(layer, mesh=mesh, mp_policy=mp)
        fully_shard(model, mesh=mesh, mp_policy=mp)
    model.to_empty(device=d.device)
    model.init_weights(cfg.seed)
    if compile_ and not fsdp:
        model.compile()
    wrapped: nn.Module = model
    if d.enabled and not fsdp:
        from torch.nn.parallel import DistributedDataParallel as DDP

        wrapped = DDP(model, device_ids=[d.device.index] if d.device.type == "cuda" else None)
    return wrapped, model, compute


def _load_full_state(model: nn.Module, msd: dict, optimizer=None, osd=None) -> None:
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    opts = StateDictOptions(full_state_dict=True, strict=True)
    _check_shapes(model, msd)
    set_model_state_dict(model, msd, options=opts)
    if optimizer is not None and osd is not None:
        set_optimizer_state_dict(model, optimizer, osd, options=opts)


def _check_shapes(model: nn.Module, state: dict) -> None:
    expected = {
        k.removeprefix("module."): tuple(getattr(p, "shape", ()))
        for k, p in model.named_parameters()
    }
    problems = []
    for k, shape in expected.items():
        if k not in state:
            problems.append(f"{k}: missing")
        elif tuple(state[k].shape) != shape:
            problems.append(f"{k}: checkpoint {tuple(state[k].shape)}, model {shape}")
    extra = sorted(set(state) - set(expected))
    if extra:
        problems.append(f"unexpected tensors: {extra[:5]}{' ...' if len(extra) > 5 else ''}")
    if problems:
        raise TrainError("weights do not fit the model:\n  " + "\n  ".join(problems[:10]))


# ---------------------------------------------------------------------------------------------
# training


@dataclass
class Plan:
    """Batch arithmetic of a run (the same on every rank)."""

    context: int
    rows_per_step: int  # global
    accum: int
    total_steps: int

    @property
    def tokens_per_step(self) -> int:
        return self.rows_per_step * self.context


def make_plan(cfg: TrainConfig, rows: int, context: int, world: int, preset_batch: int) -> Plan:
    batch_tokens = cfg.batch_tokens or preset_batch
    wanted_rows = max(1, round(batch_tokens / context))
    per_micro = cfg.micro_batch * world
    accum = max(1, round(wanted_rows / per_micro))
    rows_per_step = accum * per_micro
    if rows < per_micro:
        raise TrainError(
            f"the shards hold {rows} rows, fewer than one micro-batch across ranks "
            f"({cfg.micro_batch} x {world}); lower --micro-batch"
        )
    if rows < rows_per_step:
        raise TrainError(
            f"the shards hold {rows} rows, fewer than one global batch ({rows_per_step} rows); "
            "lower --batch-tokens"
        )
    steps = cfg.steps or max(1, rows // rows_per_step)
    return Plan(context, rows_per_step, accum, steps)


def fit(cfg: TrainConfig) -> dict[str, Any]:
    """Train (or resume) a run; returns a summary. Call under torchrun for several processes."""
    cfg.validate()
    d = init_distributed(cfg.device)
    savers: list[ckpt.Checkpointer] = []
    try:
        return _fit(cfg, d, savers)
    except torch.OutOfMemoryError as e:
        raise TrainError(OOM_HELP) from e
    except ckpt.CheckpointWriteError as e:
        raise TrainError(f"{e} (the run's earlier checkpoints are intact)") from e
    except BaseException:
        if not d.enabled:  # one process: the save in flight holds a complete state, publish it
            for saver in savers:
                try:
                    saver.wait()
                except ckpt.read_errors() as e:  # the error being raised is the one to report
                    stderr(f"warning: the checkpoint being written was lost: {ckpt.describe(e)}")
        raise
    finally:
        shutdown(d)


@dataclass
class _Run:
    """What a training run holds from its setup to its last step."""

    cfg: TrainConfig
    d: Dist
    out: Path
    ds: Any
    mcfg: LlamaConfig
    plan: Plan
    lr: float
    schedule: dict[str, Any]
    manifest_sha: str
    model: nn.Module
    raw: nn.Module
    compute: torch.dtype
    compiled: bool
    optimizer: Any
    loader: ShardLoader
    fsdp: bool
    log: RunLog
    checkpointer: Any

    def say(self, *args: Any, **kwargs: Any) -> None:
        if self.d.is_main:
            print(*args, **kwargs)


def _setup(cfg: TrainConfig, d: Dist, savers: list | None) -> _Run:
    """Data, model, optimizer, loader and checkpointer of a run (nothing resumed yet)."""
    out = Path(cfg.out)
    try:
        ds = open_shards(cfg.data, verify=cfg.verify)
    except (OSError, ValueError) as e:
        raise TrainError(f"--data {cfg.data}: {e}") from e
    if ds.vocab_size is None and "vocab_size" not in cfg.model and not cfg.init_from:
        raise TrainError(
            f"{cfg.data}: the manifest has no tokenizer.vocab_size; set model.vocab_size in --config"
        )
    mcfg = model_config(cfg, ds.vocab_size, ds.context_length)
    preset = get_preset(cfg.preset)
    lr = cfg.lr or preset.lr
    plan = make_plan(cfg, len(ds), ds.context_length, d.world, preset.batch_tokens)
    schedule = {
        "lr": lr,
        "warmup_steps": cfg.warmup_steps,
        "total_steps": plan.total_steps,
        "final_lr_ratio": cfg.final_lr_ratio,
        "weight_decay": cfg.weight_decay,
        "rows_per_step": plan.rows_per_step,
        "grad_clip": cfg.grad_clip,
    }
    torch.manual_seed(cfg.seed)
    if d.device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 for what runs outside bf16 autocast
    compiled = want_compile(cfg, d.device)
    model, raw, compute = build_for_training(mcfg, cfg, d, compiled)
    checkpointer = ckpt.Checkpointer(
        out, d.rank, d.world, cfg.keep_checkpoints, async_save=cfg.async_checkpoint
    )
    if savers is not None:
        savers.append(checkpointer)
    return _Run(
        cfg=cfg,
        d=d,
        out=out,
        ds=ds,
        mcfg=mcfg,
        plan=plan,
        lr=lr,
        schedule=schedule,
        manifest_sha=ckpt.manifest_hash(cfg.data),
        model=model,
        raw=raw,
        compute=compute,
        compiled=compiled,
        optimizer=build_optimizer(raw, lr, cfg.weight_decay, device_type=d.device.type),
        loader=ShardLoader(ds, cfg.micro_batch, d.rank, d.world, plan.rows_per_step),
        fsdp=d.enabled and cfg.parallel == "fsdp",
        log=RunLog(out, enabled=d.is_main),
        checkpointer=checkpointer,
    )


def _start(run: _Run) -> int:
    """Resume from the run's newest good checkpoint (or take `--init-from` weights), write the
    run's config.json, and return the step to start at."""
    cfg, d = run.cfg, run.d
    run.checkpointer.remove_stale()
    start_step, latest = _resume(
        run.out, run.model, run.optimizer, run.loader, d, run.mcfg, run.manifest_sha, run.schedule
    )
    if latest is not None:
        run.log.truncate_after(start_step)
        run.say(f"resumed from {latest} at step {start_step}")
    else:
        run.log.truncate_after(0)  # records of an earlier attempt that never checkpointed
    if latest is None and cfg.init_from:
        from llama_data.model.export import load_hf

        _, weights = load_hf(cfg.init_from, max_seq_len=run.ds.context_length)
        _load_full_state(run.model, weights)
        run.say(f"initialized weights from {cfg.init_from}")
    if d.is_main:
        run.out.mkdir(parents=True, exist_ok=True)
        run_info = {
            "train": asdict(cfg),
            "model": run.mcfg.to_dict(),
            "parameters": count_parameters(run.raw),
            "world_size": d.world,
            "plan": asdict(run.plan),
            "manifest_sha256": run.manifest_sha,
            "sources": run.ds.sources,
        }
        (run.out / "config.json").write_text(json.dumps(run_info, indent=2, default=str))
    return start_step


def _announce(run: _Run) -> None:
    cfg, plan, d = run.cfg, run.plan, run.d
    n_params = count_parameters(run.raw)
    if cfg.warmup_steps >= plan.total_steps:
        run.say(
            f"note: warmup_steps {cfg.warmup_steps} >= total steps {plan.total_steps}; "
            "the learning rate never reaches its cosine phase (set --warmup-steps)"
        )
    run.say(
        f"model {human_count(n_params)} params ({n_params:,}); global batch {plan.rows_per_step} rows "
        f"x {plan.context} = {plan.tokens_per_step:,} tokens ({cfg.micro_batch} rows x "
        f"{d.world} ranks x {plan.accum} accumulation); {plan.total_steps} steps; "
        f"{d.device.type} {str(run.compute).removeprefix('torch.')}"
        + (
            "; torch.compile: the first step compiles (--no-compile to skip)"
            if run.compiled
            else ""
        )
    )


def _train_step(run: _Run, step: int, autocast: Any) -> tuple[float, Any, Any, Any]:
    """One global step: `accum` micro-steps, clip, AdamW. Returns (lr, grad norm, summed loss
    per source, rows per source) on this rank."""
    cfg, d, plan, model = run.cfg, run.d, run.plan, run.model
    lr_now = lr_at(step, run.lr, cfg.warmup_steps, plan.total_steps, cfg.final_lr_ratio)
    set_lr(run.optimizer, lr_now)
    n_sources = len(run.ds.sources)
    src_loss = torch.zeros(n_sources, dtype=torch.float64, device=d.device)
    src_rows = torch.zeros(n_sources, dtype=torch.float64, device=d.device)
    for micro in range(plan.accum):
        batch = run.loader.next_batch()
        x = batch.inputs.to(d.device, non_blocking=True)
        y = batch.targets.to(d.device, non_blocking=True)
        src = batch.source_ids.to(d.device, non_blocking=True)
        last_micro = micro == plan.accum - 1
        sync = nullcontext()
        if d.enabled and not run.fsdp and not last_micro:
            sync = model.no_sync()
        elif run.fsdp:
            model.set_requires_gradient_sync(last_micro)
        with sync:
            with autocast:
                row_loss = model(x, targets=y)
            (row_loss.mean() / plan.accum).backward()
        src_loss.index_add_(0, src, row_loss.detach().double())
        src_rows.index_add_(0, src, torch.ones_like(src, dtype=torch.float64))
    max_norm = cfg.grad_clip if cfg.grad_clip > 0 else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(run.raw.parameters(), max_norm)
    if hasattr(grad_norm, "full_tensor"):
        grad_norm = grad_norm.full_tensor()
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return lr_now, grad_norm, src_loss, src_rows


def _log_record(
    run: _Run, done: int, lr_now: float, grad_norm: Any, src_loss: Any, src_rows: Any, tps: float
) -> dict[str, Any]:
    """The log record of step `done` (losses reduced over ranks); a non-finite loss stops."""
    n_sources = len(run.ds.sources)
    sums = all_reduce_sum(torch.cat([src_loss, src_rows]), run.d).cpu()
    ls, rs = sums[:n_sources], sums[n_sources:]
    loss = float(ls.sum() / rs.sum())
    rec: dict[str, Any] = {
        "step": done,
        "loss": loss,
        "lr": lr_now,
        "grad_norm": float(grad_norm),
        "tokens": done * run.plan.tokens_per_step,
        "tokens_per_s": tps,
        "loss_by_source": {
            run.ds.sources[i]: float(ls[i] / rs[i]) for i in range(n_sources) if rs[i] > 0
        },
    }
    flops_tok = run.mcfg.flops_per_token(run.ds.context_length)
    m = mfu(tps, flops_tok, peak_tflops(run.d.device, run.cfg.peak_tflops), run.d.world)
    if m is not None:
        rec["mfu"] = m
    run.log.write(rec)
    if not math.isfinite(loss):
        raise TrainError(f"loss is {loss} at step {done}; lower --lr or check the data")
    return rec


def _fit(cfg: TrainConfig, d: Dist, savers: list | None = None) -> dict[str, Any]:
    run = _setup(cfg, d, savers)
    start_step = _start(run)
    plan = run.plan
    if start_step >= plan.total_steps:
        run.say(f"run already complete ({start_step}/{plan.total_steps} steps)")
        return {"step": start_step, "total_steps": plan.total_steps, "resumed": True}
    _announce(run)

    autocast = (
        torch.autocast(d.device.type, dtype=run.compute)
        if run.compute != torch.float32 and not run.fsdp
        else nullcontext()
    )
    progress = Progress(plan.total_steps, cfg.progress if d.is_main else False)
    window_t, window_tokens = time.perf_counter(), 0
    last: dict[str, Any] = {}
    run.model.train()
    for step in range(start_step, plan.total_steps):
        lr_now, grad_norm, src_loss, src_rows = _train_step(run, step, autocast)
        window_tokens += plan.tokens_per_step
        done = step + 1
        if done % cfg.log_every == 0 or done == plan.total_steps:
            if d.device.type == "cuda":
                torch.cuda.synchronize(d.device)
            now = time.perf_counter()
            tps = window_tokens / (now - window_t)
            window_t, window_tokens = now, 0
            last = _log_record(run, done, lr_now, grad_norm, src_loss, src_rows, tps)
            if not progress.enabled:
                m = last.get("mfu")
                mfu_txt = f" mfu {m:.1%}" if m is not None else ""
                run.say(
                    f"step {done}/{plan.total_steps} loss {last['loss']:.4f} lr {lr_now:.3g} "
                    f"gnorm {float(grad_norm):.3f} {tps:,.0f} tok/s{mfu_txt}"
                )
        if progress.enabled:  # every step; loss and speed as of the last log record
            progress.update(done, last.get("loss", math.nan), last.get("tokens_per_s", 0.0))
        if done % cfg.checkpoint_every == 0 or done == plan.total_steps:
            t0 = time.perf_counter()
            _save(run.checkpointer, done, run.model, run.optimizer, run.loader, d, cfg, run.mcfg,
                  run.manifest_sha, run.schedule)  # fmt: skip
            window_t += time.perf_counter() - t0  # checkpoint time is not training throughput
    run.checkpointer.close()
    progress.close()
    run.log.close()
    return {
        "step": plan.total_steps,
        "total_steps": plan.total_steps,
        "last": last,
        "checkpoint_blocked_s": run.checkpointer.blocked_s,
    }


def _save(checkpointer, step, model, optimizer, loader, d, cfg, mcfg, manifest_sha, schedule):
    """Every process writes its own shards (collective); rank 0 publishes the folder."""
    state = ckpt.train_state(model, optimizer, loader.state_dict(), d.rank)
    meta = {
        "format": "dcp",
        "model": mcfg.to_dict(),
        "train": asdict(cfg),
        "schedule": schedule,
        "manifest_sha256": manifest_sha,
        "data_cursor": loader.state_dict(),
        "world_size": d.world,
        "parallel": cfg.parallel if d.enabled else "single",
        "torch": torch.__version__,
    }
    checkpointer.save(step, state, meta)


def _resume(out, model, optimizer, loader, d, mcfg, manifest_sha, schedule):
    """Load the newest good checkpoint of the run, if any: (its step, its path) or (0, None).

    A checkpoint that does not fit the run (model shape, data, schedule) is an error; one that
    cannot be read (a file lost or cut short after it was written) is skipped with a warning, and
    the one before it is tried. Sharded checkpoints load on any number of processes.
    """
    for path in reversed(ckpt.list_checkpoints(out)):
        try:
            meta = ckpt.read_meta(path)
        except (OSError, ValueError) as e:
            stderr(f"warning: skipping unreadable checkpoint {path}: {e}")
            continue
        try:
            ckpt.check_compatible(
                meta, model=mcfg.to_dict(), manifest=manifest_sha, schedule=schedule
            )
        except ckpt.CheckpointMismatch as e:
            raise TrainError(f"{path}: {e}") from e
        try:
            if ckpt.is_legacy(path):  # the earlier layout: one state.pt of full state dicts
                state = ckpt.load_state(path)
                _load_full_state(model, state["model"], optimizer, state["optimizer"])
                data, rngs = state["data"], state["rng"]
                rng = rngs[d.rank % len(rngs)]
            else:
                saved_world = int(meta.get("world_size", 1))
                data, rng = ckpt.load_train_state(
                    path, model, optimizer, loader.state_dict(), d.rank, saved_world
                )
            loader.load_state_dict(data)
        except TrainError:
            raise
        except ckpt.read_errors() as e:  # a damaged file raises many types
            stderr(f"warning: skipping unreadable checkpoint {path}: {ckpt.describe(e)}")
            continue
        ckpt.set_rng_state(rng)
        return int(meta["step"]), path
    return 0, None


# ---------------------------------------------------------------------------------------------
# inference-side loading and evaluation


def load_model(path: str | Path, device: str = "auto") -> tuple[Llama, dict]:
    """A trained model from a run folder (latest checkpoint), a checkpoint folder or a HF folder."""
    from llama_data.model.distributed import pick_device
    from llama_data.model.export import is_hf_folder, load_hf

    path = Path(path)
    dev = pick_device(device)
    if is_hf_folder(path):
        mcfg, state = load_hf(path)
        meta: dict = {"source": "hf", "path": str(path)}
    else:
        target = ckpt.resolve(path)
        if target is None:
            raise TrainError(f"{path}: no checkpoint (expected RUN/checkpoints/step-*/)")
        meta = ckpt.read_meta(target)
        mcfg = LlamaConfig.from_dict(meta["model"])
        state = ckpt.load_model_weights(target)  # sharded or not, consolidated on the CPU here
        meta["path"] = str(target)
    with torch.device("meta"):
        model = Llama(mcfg)
    model.to_empty(device=dev)
    model.init_weights(0)  # fills the rotary table; every weight is overwritten below
    _check_shapes(model, state)
    model.load_state_dict(state, strict=True)
    model.eval()
    return model, meta


@torch.no_grad()
def evaluate(
    model: Llama,
    data: str | Path,
    micro_batch: int = 8,
    max_rows: int | None = None,
    dtype: str = "auto",
    verify: str = "size",
) -> dict[str, Any]:
    """Perplexity per source (and overall) over the rows of a shard directory."""
    ds = open_shards(data, verify=verify)
    if ds.context_length > model.cfg.max_seq_len:
        raise TrainError(
            f"shards have context {ds.context_length}, the model was built for "
            f"{model.cfg.max_seq_len}"
        )
    if ds.vocab_size is not None and ds.vocab_size != model.cfg.vocab_size:
        raise TrainError(
            f"{data}: tokenizer vocabulary {ds.vocab_size}, the model's {model.cfg.vocab_size}"
        )
    device = model.output.weight.device
    compute = _compute_dtype(TrainConfig(dtype=dtype), device)
    autocast = (
        torch.autocast(device.type, dtype=compute) if compute != torch.float32 else nullcontext()
    )
    n = len(ds) if max_rows is None else min(len(ds), max_rows)
    sums = torch.zeros(len(ds.sources), dtype=torch.float64)
    counts = torch.zeros(len(ds.sources), dtype=torch.float64)
    t0 = time.perf_counter()
    for start in range(0, n, micro_batch):
        idx = range(start, min(n, start + micro_batch))
        rows = torch.from_numpy(ds.take(idx).astype("int64")).to(device)
        src = torch.tensor([ds.source_index(i) for i in idx], dtype=torch.long)
        with autocast:
            logits = model(rows[:, :-1])
        tok = token_losses(logits, rows[:, 1:]).double().cpu()
        sums.index_add_(0, src, tok.sum(dim=1))
        counts.index_add_(0, src, torch.full((len(idx),), float(tok.shape[1]), dtype=torch.float64))
    result: dict[str, Any] = {"rows": n, "tokens": int(counts.sum()), "sources": {}}
    for i, name in enumerate(ds.sources):
        if counts[i] > 0:
            loss = float(sums[i] / counts[i])
            result["sources"][name] = {
                "loss": loss,
                "perplexity": math.exp(loss),
                "tokens": int(counts[i]),
            }
    if counts.sum() > 0:
        loss = float(sums.sum() / counts.sum())
        result["loss"], result["perplexity"] = loss, math.exp(loss)
    result["seconds"] = round(time.perf_counter() - t0, 3)
    return result


def stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def fit_command(
    config_file: str | None, model_set: tuple[str, ...], describe: bool, options: dict[str, Any]
) -> str | None:
    """`llama-train fit`: train (nothing to print), or with `describe` (--dry-run) describe the
    model built on the meta device."""
    options["model"] = model_overrides(model_set)
    if not describe:
        fit(config_from_sources(config_file, options))
        return None
    info = dry_run(options["preset"] or "tiny", options["model"])
    return (
        f"preset {info['preset']}: {info['parameters']:,} parameters "
        f"({info['parameters_human']}) built on the meta device\n" + json.dumps(info, indent=2)
    )


def eval_command(opts: EvalOptions) -> str:
    """`llama-train eval`: perplexity per source, as JSON."""
    model, _ = load_model(opts.checkpoint, opts.device)
    result = evaluate(model, opts.data, opts.micro_batch, opts.max_rows, opts.dtype)
    return json.dumps(result, indent=2)


def config_from_sources(config_file: str | None, options: dict[str, Any]) -> TrainConfig:
    """TrainConfig from defaults, then a --config file, then command-line options (not None)."""
    values: dict[str, Any] = load_config_file(config_file) if config_file else {}
    model = dict(values.get("model", {}))
    model.update(options.pop("model", None) or {})
    values.update({k: v for k, v in options.items() if v is not None})
    values["model"] = model
    return TrainConfig(**values)
