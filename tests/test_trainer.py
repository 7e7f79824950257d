"""The trainer on shards built in the test: learning, exact resume, DDP equivalence, bad input."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from _model_helpers import make_shards
from click.testing import CliRunner

from llama_data.model import checkpoint as ckpt
from llama_data.model.data import ShardLoader, open_shards
from llama_data.model.optim import lr_at, param_groups
from llama_data.model.trainer import TrainConfig, TrainError, evaluate, fit, load_model

SMALL = {"dim": 32, "n_heads": 2, "multiple_of": 16}


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return make_shards(tmp_path_factory.mktemp("data") / "shards", rows=128)


def config(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        data=str(data), out=str(out), preset="tiny", model=dict(SMALL), batch_tokens=128,
        micro_batch=4, steps=8, warmup_steps=2, log_every=1, checkpoint_every=4, lr=3e-3,
        progress=False, compile=False,
    )  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


def losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "log.jsonl").read_text().splitlines()]


def test_compile_is_on_by_default_where_supported(monkeypatch):
    from llama_data.model import trainer

    cpu = torch.device("cpu")
    monkeypatch.setattr(torch._dynamo.config, "suppress_errors", False)
    monkeypatch.setattr(trainer, "compile_supported", lambda device: True)
    assert trainer.want_compile(TrainConfig(), cpu)
    assert torch._dynamo.config.suppress_errors  # left to the default, failures run eagerly
    assert not trainer.want_compile(TrainConfig(compile=False), cpu)
    monkeypatch.setattr(trainer, "compile_supported", lambda device: False)
    assert not trainer.want_compile(TrainConfig(), cpu)
    assert trainer.want_compile(TrainConfig(compile=True), cpu)  # asked for: tried, errors shown


def test_loss_falls_and_logs_per_source(shards, tmp_path):
    run = tmp_path / "run"
    fit(config(shards, run, steps=30, checkpoint_every=30, log_every=5))
    seq = losses(run)
    assert seq[-1] < seq[0] - 0.8, seq
    rec = json.loads((run / "log.jsonl").read_text().splitlines()[-1])
    assert set(rec["loss_by_source"]) == {"web", "code"}
    assert {"lr", "grad_norm", "tokens_per_s", "tokens"} <= set(rec)
    assert "mfu" not in rec  # no MFU on CPU
    result = evaluate(load_model(run, "cpu")[0], shards, micro_batch=16)
    assert set(result["sources"]) == {"web", "code"}
    assert result["perplexity"] < 40


def test_resume_is_bit_exact(shards, tmp_path):
    full = tmp_path / "full"
    fit(config(shards, full))
    assert [p.name for p in ckpt.list_checkpoints(full)] == ["step-000000004", "step-000000008"]

    part = tmp_path / "part"
    fit(config(shards, part))
    # crash after step 4's checkpoint: later checkpoints and log lines never happened
    shutil.rmtree(part / "checkpoints" / "step-000000008")
    fit(config(shards, part))  # the same command again resumes
    assert losses(part) == losses(full)  # bit for bit
    a = ckpt.load_model_weights(full / "checkpoints" / "step-000000008")
    b = ckpt.load_model_weights(part / "checkpoints" / "step-000000008")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    meta_a = ckpt.read_meta(full / "checkpoints" / "step-000000008")
    meta_b = ckpt.read_meta(part / "checkpoints" / "step-000000008")
    assert meta_a["data_cursor"] == meta_b["data_cursor"] == {"position": 64, "epoch": 0,
                                                              "rows": 128}  # fmt: skip

    # a damaged newest checkpoint: the run resumes from the previous good one
    shutil.rmtree(part / "checkpoints" / "step-000000008")
    fit(config(shards, part, checkpoint_every=2))
    with open(part / "checkpoints" / "step-000000008" / "__0_0.distcp", "r+b") as f:
        f.truncate(100)
    fit(config(shards, part, checkpoint_every=2, steps=8))
    assert losses(part) == losses(full)


def test_async_checkpoints_equal_synchronous_ones(shards, tmp_path):
    sync, background = tmp_path / "sync", tmp_path / "async"
    fit(config(shards, sync))
    summary = fit(config(shards, background, async_checkpoint=True))
    assert len(summary["checkpoint_blocked_s"]) == 2
    assert losses(background) == losses(sync)
    for step in ("step-000000004", "step-000000008"):
        # the state was copied before training went on: the optimizer's next steps changed
        # the live weights while the background thread was writing
        a = ckpt.load_model_weights(sync / "checkpoints" / step)
        b = ckpt.load_model_weights(background / "checkpoints" / step)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), step
    assert not list((background / "checkpoints").glob(".tmp-*"))
    shutil.rmtree(background / "checkpoints" / "step-000000008")
    fit(config(shards, background, async_checkpoint=True))  # resumes, still bit for bit
    assert losses(background) == losses(sync)
    # from the command line, a checkpoint every step, keeping 2: one save in flight at a time
    from llama_data.cli import train_main

    every = tmp_path / "every"
    res = CliRunner().invoke(train_main, [
        "fit", "--data", str(shards), "--out", str(every), "--preset", "tiny", "--set", "dim=32",
        "--set", "n_heads=2", "--set", "multiple_of=16", "--batch-tokens", "128",
        "--micro-batch", "4", "--steps", "6", "--warmup-steps", "2", "--lr", "3e-3",
        "--checkpoint-every", "1", "--keep-checkpoints", "2", "--async-checkpoint",
        "--no-compile", "--no-progress",
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert [p.name for p in ckpt.list_checkpoints(every)] == ["step-000000005", "step-000000006"]
    assert ckpt.read_meta(every / "checkpoints" / "step-000000006")["train"]["async_checkpoint"]


def test_a_failed_checkpoint_write_is_one_error_and_keeps_the_earlier_ones(
    shards, tmp_path, monkeypatch
):
    import torch.distributed.checkpoint as dcp

    write, calls = dcp.FileSystemWriter.write_data, []

    def disk_full_on_second_save(self, plan, planner):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return write(self, plan, planner)

    monkeypatch.setattr(dcp.FileSystemWriter, "write_data", disk_full_on_second_save)
    for background in (False, True):
        calls.clear()
        run = tmp_path / f"run-{background}"
        with pytest.raises(
            TrainError, match=r"writing checkpoint step-000000008 failed: .*No space"
        ):
            fit(config(shards, run, async_checkpoint=background))
        assert [p.name for p in ckpt.list_checkpoints(run)] == ["step-000000004"]
        fit(config(shards, run, async_checkpoint=background))  # resumes at 4; leftovers removed
        assert [p.name for p in ckpt.list_checkpoints(run)][-1] == "step-000000008"
        assert not list((run / "checkpoints").glob(".tmp-*"))


def test_a_run_that_fails_still_publishes_the_async_save_in_flight(shards, tmp_path, monkeypatch):
    import time

    import torch.distributed.checkpoint as dcp

    from llama_data.model import trainer

    write = dcp.FileSystemWriter.write_data

    def slow_write(self, plan, planner):
        time.sleep(0.5)  # the step-4 checkpoint is still being written when step 5 fails
        return write(self, plan, planner)

    def lr_at(step, *args):
        if step == 4:
            raise RuntimeError("interrupted")
        return 3e-3

    monkeypatch.setattr(dcp.FileSystemWriter, "write_data", slow_write)
    monkeypatch.setattr(trainer, "lr_at", lr_at)
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="interrupted"):
        fit(config(shards, run, async_checkpoint=True))
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step-000000004"]


def test_checkpoint_of_the_earlier_layout_still_loads(shards, tmp_path):
    """A `state.pt` of full state dicts (before #21) resumes, evaluates and exports."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    from llama_data.model import trainer
    from llama_data.model.distributed import Dist
    from llama_data.model.export import export_checkpoint
    from llama_data.model.optim import build_optimizer

    full = tmp_path / "full"
    fit(config(shards, full))
    old = tmp_path / "old"
    shutil.copytree(full, old)
    shutil.rmtree(old / "checkpoints" / "step-000000008")
    path = old / "checkpoints" / "step-000000004"
    cfg, meta = config(shards, old), ckpt.read_meta(path)
    d = Dist(0, 1, 0, torch.device("cpu"))
    _, model, _ = trainer.build_for_training(trainer.LlamaConfig.from_dict(meta["model"]), cfg, d)
    opt = build_optimizer(model, 3e-3, 0.1, device_type="cpu")
    data, rng = ckpt.load_train_state(path, model, opt, meta["data_cursor"], 0, 1)
    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    state = {"model": get_model_state_dict(model, options=opts),
             "optimizer": get_optimizer_state_dict(model, opt, options=opts),
             "data": data, "rng": [rng]}  # fmt: skip
    for f in [*path.glob("*.distcp"), path / ".metadata"]:
        f.unlink()
    torch.save(state, path / "state.pt")
    assert ckpt.is_legacy(path) and ckpt.list_checkpoints(old) == [path]

    fit(cfg)  # resumes from the old layout, bit for bit, and writes the new one
    assert losses(old) == losses(full)
    assert ckpt.is_sharded(old / "checkpoints" / "step-000000008")
    model, _ = load_model(path, "cpu")
    assert evaluate(model, shards, micro_batch=16, max_rows=16)["loss"] > 0
    assert (export_checkpoint(path, tmp_path / "hf") / "model.safetensors").is_file()


def test_keeps_last_k_checkpoints_and_skips_incomplete(shards, tmp_path):
    run = tmp_path / "run"
    fit(config(shards, run, steps=6, checkpoint_every=1, keep_checkpoints=2))
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step-000000005", "step-000000006"]
    (run / "checkpoints" / "step-000000009").mkdir()  # a folder without meta.json: not complete
    assert ckpt.latest_checkpoint(run).name == "step-000000006"
    assert not list((run / "checkpoints").glob(".tmp-*"))


def test_resume_with_other_data_or_shape_names_the_mismatch(shards, tmp_path):
    run = tmp_path / "run"
    fit(config(shards, run, steps=4))
    other = make_shards(tmp_path / "other", rows=128, seed=1)
    with pytest.raises(TrainError, match="resuming with different data"):
        fit(config(other, run, steps=4))
    with pytest.raises(TrainError, match=r"model\.dim: checkpoint 32, now 48"):
        fit(config(shards, run, steps=4, model={**SMALL, "dim": 48}))
    with pytest.raises(TrainError, match=r"schedule\.total_steps"):
        fit(config(shards, run, steps=9))


def test_bad_inputs_are_clear_errors(shards, tmp_path):
    with pytest.raises(TrainError, match="did you mean 'tiny'"):
        fit(config(shards, tmp_path / "r", preset="tiyn"))
    with pytest.raises(TrainError, match="unknown model key 'n_layer'"):
        fit(config(shards, tmp_path / "r", model={"n_layer": 2}))
    broken = tmp_path / "broken"
    shutil.copytree(shards, broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["shards"][0]["sha256"] = "0" * 64
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(TrainError, match="sha256 .* does not match the manifest"):
        fit(config(broken, tmp_path / "r", verify="sha256"))
    bad_cfg = tmp_path / "train.toml"
    bad_cfg.write_text('preset = "tiny"\nmicro_bach = 4\n')
    from llama_data.cli import train_main

    res = CliRunner().invoke(train_main, ["fit", "--config", str(bad_cfg), "--data", str(shards),
                                          "--out", str(tmp_path / "r")])  # fmt: skip
    assert res.exit_code == 2
    assert "unknown key 'micro_bach' (did you mean 'micro_batch'?)" in res.output


def test_loader_ranks_partition_rows_and_cursor_roundtrips(shards):
    ds = open_shards(shards)
    single = ShardLoader(ds, micro_batch=4)
    r0, r1 = ShardLoader(ds, 2, rank=0, world=2), ShardLoader(ds, 2, rank=1, world=2)
    a, b0, b1 = single.next_batch(), r0.next_batch(), r1.next_batch()
    assert torch.equal(a.inputs[0::2], b0.inputs) and torch.equal(a.inputs[1::2], b1.inputs)
    assert torch.equal(a.targets[:, :-1], a.inputs[:, 1:])
    state = single.state_dict()
    nxt = single.next_batch()
    fresh = ShardLoader(ds, micro_batch=4)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.next_batch().inputs, nxt.inputs)
    for _ in range(len(ds) // 4):  # wraps into the next epoch
        single.next_batch()
    assert single.epoch == 1


def test_data_order_does_not_depend_on_the_number_of_ranks(shards):
    """Each global batch holds the same rows on 1, 2 or 4 ranks, also across the epoch
    boundary (128 rows are 5 global batches of 24 and a tail that is skipped)."""
    ds = open_shards(shards)

    def global_batches(world: int, micro: int, steps: int) -> list[list[int]]:
        loaders = [ShardLoader(ds, micro, r, world, global_batch=24) for r in range(world)]
        out = []
        for _ in range(steps):
            rows = []
            for _ in range(24 // (micro * world)):
                for loader in loaders:
                    rows += map(tuple, loader.next_batch().inputs[:, :4].tolist())
            out.append(sorted(rows))
        return out

    one = global_batches(1, 4, 12)
    for world, micro in ((1, 3), (2, 2), (2, 3), (2, 4), (4, 2), (4, 3)):
        assert global_batches(world, micro, 12) == one, (world, micro)
    assert one[5] == one[0]  # the 6th batch starts the next epoch at row 0
    with pytest.raises(ValueError, match="fewer than one global batch"):
        ShardLoader(ds, 4, global_batch=256)


def test_schedule_and_decay_groups():
    assert lr_at(0, 1.0, 10, 100) == pytest.approx(0.1)
    assert lr_at(9, 1.0, 10, 100) == pytest.approx(1.0)
    assert lr_at(100, 1.0, 10, 100) == pytest.approx(0.1)
    assert 0.1 < lr_at(55, 1.0, 10, 100) < 1.0
    from llama_data.model.llama import LlamaConfig, build_model

    model = build_model(LlamaConfig(dim=16, n_layers=1, n_heads=2, vocab_size=8, max_seq_len=8))
    decay, no_decay = param_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in no_decay["params"]} == {
        "tok_embeddings.weight", "layers.0.attention_norm.weight", "layers.0.ffn_norm.weight",
        "norm.weight",
    }  # fmt: skip
    assert "output.weight" in {names[id(p)] for p in decay["params"]}


def _ddp_worker(
    rank: int, world: int, port: int, data: str, out: str, parallel: str, options: str = "{}"
) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))  # fmt: skip
    torch.set_num_threads(1)
    fit(config(Path(data), Path(out), **{"micro_batch": 2, **json.loads(options)},
               parallel=parallel))  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn2(data: Path, out: Path, parallel: str, **options) -> None:
    """`fit` in 2 processes over gloo on 127.0.0.1 (2 rows each per micro-step by default)."""
    args = (2, _free_port(), str(data), str(out), parallel, json.dumps(options))
    mp.spawn(_ddp_worker, args=args, nprocs=2)


def _two_process_matches_single(shards: Path, tmp_path: Path, parallel: str, **extra) -> None:
    """Same loss curve on 1 and 2 processes (same global batch: 8 rows), and a checkpoint of
    either resumes on the other, continuing the same curve."""
    single = tmp_path / "single"
    fit(config(shards, single, micro_batch=4))  # 8 steps, checkpoints at 4 and 8
    reference = losses(single)
    multi = tmp_path / parallel
    _spawn2(shards, multi, parallel, **extra)
    assert losses(multi) == pytest.approx(reference, rel=1e-6, abs=1e-6)
    a = ckpt.load_model_weights(single / "checkpoints" / "step-000000008")
    b = ckpt.load_model_weights(multi / "checkpoints" / "step-000000008")
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k
    meta = ckpt.read_meta(multi / "checkpoints" / "step-000000004")
    assert meta["world_size"] == 2 and meta["format"] == "dcp"
    assert len(list((multi / "checkpoints" / "step-000000004").glob("*.distcp"))) == 2

    # 2 -> 1: the 2-process checkpoint of step 4 resumes in one process
    shutil.rmtree(multi / "checkpoints" / "step-000000008")
    fit(config(shards, multi, micro_batch=4))
    assert losses(multi) == pytest.approx(reference, rel=1e-5, abs=1e-6)

    # 1 -> 2: the single-process checkpoint of step 4 resumes on two processes
    back = tmp_path / "back"
    shutil.copytree(single, back)
    shutil.rmtree(back / "checkpoints" / "step-000000008")
    _spawn2(shards, back, parallel)
    assert losses(back) == pytest.approx(reference, rel=1e-5, abs=1e-6)
    c = ckpt.load_model_weights(back / "checkpoints" / "step-000000008")
    for k in a:
        assert torch.allclose(a[k], c[k], atol=1e-5), k


def test_two_process_gloo_ddp_matches_single_process(shards, tmp_path):
    _two_process_matches_single(shards, tmp_path, "ddp")


@pytest.mark.slow
def test_two_process_gloo_fsdp2_matches_single_process(shards, tmp_path):
    # the 2-process run writes its checkpoints in the background (own gloo group)
    _two_process_matches_single(shards, tmp_path, "fsdp", async_checkpoint=True)


def test_out_of_memory_names_the_options_that_help(shards, tmp_path, monkeypatch):
    from llama_data.model import trainer

    def oom(*_a, **_k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(trainer, "_fit", oom)
    with pytest.raises(TrainError) as info:
        fit(config(shards, tmp_path / "r"))
    for option in ("--micro-batch", "--activation-checkpointing", "--parallel fsdp"):
        assert option in str(info.value)


def test_cli_dry_run_typo_is_a_usage_error():
    from llama_data.cli import train_main

    res = CliRunner().invoke(train_main, ["fit", "--preset", "65B", "--dry-run"])
    assert res.exit_code == 0 and "65,285,660,672 parameters" in res.output
    res = CliRunner().invoke(train_main, ["fit", "--preset", "7c", "--dry-run"])
    assert res.exit_code == 2 and "unknown preset '7c'" in res.output


# ---------------------------------------------------------------------------------------------
# host memory of a checkpoint under FSDP2: what one rank allocates to save and to load its state

# 10.2M parameters (12 layers of d 256): 41 MB of fp32 weights, 123 MB with AdamW's two moments;
# each of the 2 ranks holds half of it. The largest tensor is 0.8 MB.
MEM_MODEL = {"dim": 256, "n_layers": 12, "n_heads": 4, "multiple_of": 256}


def _proc_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _measured(fn, records: list, name: str):
    """Wrap `fn`: reset the process's peak RSS (VmHWM) before the call, read it after. The rise
    of the peak over the RSS at the start is what the call allocated at its worst moment. Freed
    heap memory is handed back to the kernel first (glibc malloc_trim), so that the call cannot
    reuse pages the RSS already counts."""
    import ctypes
    import gc

    def wrapper(*args, **kwargs):
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")  # Linux: reset VmHWM to the current RSS
        before = _proc_kb("VmRSS")
        result = fn(*args, **kwargs)
        records.append({"call": name, "extra_kb": _proc_kb("VmHWM") - before})
        return result

    return wrapper


def _memory_worker(rank: int, world: int, port: int, data: str, out: str, tag: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))  # fmt: skip
    torch.set_num_threads(1)
    import torch.distributed.checkpoint as dcp
    import torch.distributed.checkpoint.state_dict as dcp_sd

    from llama_data.model import trainer

    records: list = []
    trainer._save = _measured(trainer._save, records, "save")  # state dicts + DCP write
    dcp.load = _measured(dcp.load, records, "dcp.load")  # reading the shards in place
    dcp_sd.set_state_dict = _measured(dcp_sd.set_state_dict, records, "set_state_dict")
    fit(config(Path(data), Path(out), model=dict(MEM_MODEL), batch_tokens=32, micro_batch=1,
               steps=2, warmup_steps=1, checkpoint_every=1, parallel="fsdp"))  # fmt: skip
    Path(out, f"memory-{tag}-rank{rank}.json").write_text(json.dumps(records))


def _state_bytes() -> int:
    """fp32 weights + AdamW exp_avg + exp_avg_sq of MEM_MODEL on the test shards' vocabulary."""
    from llama_data.model.llama import Llama, LlamaConfig

    with torch.device("meta"):
        model = Llama(LlamaConfig(**MEM_MODEL, vocab_size=64, max_seq_len=16))
    return 3 * 4 * sum(p.numel() for p in model.parameters())


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_fsdp_checkpoint_host_memory_per_rank_is_bounded_by_its_shard(shards, tmp_path):
    """Before #21 rank 0 gathered everything: its peak rose by 124,816 kB (more than the full
    120,267 kB state) while saving. Now each rank writes and reads only its own shards, a few of
    its saved chunks at a time."""
    run = tmp_path / "run"
    mp.spawn(_memory_worker, args=(2, _free_port(), str(shards), str(run), "a"), nprocs=2)
    shutil.rmtree(run / "checkpoints" / "step-000000002")
    mp.spawn(_memory_worker, args=(2, _free_port(), str(shards), str(run), "b"), nprocs=2)
    full_kb = _state_bytes() // 1024
    records = [
        json.loads((run / f"memory-{tag}-rank{r}.json").read_text())
        for tag in ("a", "b")
        for r in (0, 1)
    ]
    print(f"full state {full_kb} kB; extra peak RSS per call and rank: {records}")
    calls = [rec for ranks in records for rec in ranks]
    assert sorted({c["call"] for c in calls}) == ["dcp.load", "save", "set_state_dict"]
    for c in calls:  # a third of the rank's own half at most (measured: 0-12 MB), not the whole
        assert c["extra_kb"] < full_kb / 2 / 3, c
