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
    a = ckpt.load_state(full / "checkpoints" / "step-000000008")
    b = ckpt.load_state(part / "checkpoints" / "step-000000008")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["data"] == b["data"]

    # a damaged newest checkpoint: the run resumes from the previous good one
    shutil.rmtree(part / "checkpoints" / "step-000000008")
    fit(config(shards, part, checkpoint_every=2))
    with open(part / "checkpoints" / "step-000000008" / "state.pt", "r+b") as f:
        f.truncate(100)
    fit(config(shards, part, checkpoint_every=2, steps=8))
    assert losses(part) == losses(full)


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


def _ddp_worker(rank: int, world: int, port: int, data: str, out: str, parallel: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))  # fmt: skip
    torch.set_num_threads(1)
    fit(config(Path(data), Path(out), micro_batch=2, steps=4, parallel=parallel))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_process_matches_single(shards: Path, tmp_path: Path, parallel: str) -> None:
    single = tmp_path / "single"
    fit(config(shards, single, micro_batch=4, steps=4))  # same global batch: 8 rows
    multi = tmp_path / parallel
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(shards), str(multi), parallel), nprocs=2)
    assert losses(multi) == pytest.approx(losses(single), rel=1e-6, abs=1e-6)
    a = ckpt.load_state(single / "checkpoints" / "step-000000004")["model"]
    b = ckpt.load_state(multi / "checkpoints" / "step-000000004")["model"]
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k
    # the 2-process checkpoint resumes in one process (global data cursor, full state dicts)
    fit(config(shards, multi, micro_batch=4, steps=4))


def test_two_process_gloo_ddp_matches_single_process(shards, tmp_path):
    _two_process_matches_single(shards, tmp_path, "ddp")


@pytest.mark.slow
def test_two_process_gloo_fsdp2_matches_single_process(shards, tmp_path):
    _two_process_matches_single(shards, tmp_path, "fsdp")


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
# host memory of a checkpoint under FSDP2: what one rank allocates to save its state

# 10.2M parameters (12 layers of d 256): 41 MB of fp32 weights, 123 MB with AdamW's two moments.
MEM_MODEL = {"dim": 256, "n_layers": 12, "n_heads": 4, "multiple_of": 256}


def _proc_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _measured(fn, records: list):
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
        records.append({"call": fn.__name__, "extra_kb": _proc_kb("VmHWM") - before})
        return result

    return wrapper


def _memory_worker(rank: int, world: int, port: int, data: str, out: str, parallel: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))  # fmt: skip
    torch.set_num_threads(1)
    from llama_data.model import trainer

    records: list = []
    trainer._save = _measured(trainer._save, records)
    fit(config(Path(data), Path(out), model=dict(MEM_MODEL), batch_tokens=32, micro_batch=1,
               steps=1, warmup_steps=1, parallel=parallel))  # fmt: skip
    Path(out, f"memory-rank{rank}.json").write_text(json.dumps(records))


def _state_bytes() -> int:
    """fp32 weights + AdamW exp_avg + exp_avg_sq of MEM_MODEL on the test shards' vocabulary."""
    from llama_data.model.llama import Llama, LlamaConfig

    with torch.device("meta"):
        model = Llama(LlamaConfig(**MEM_MODEL, vocab_size=64, max_seq_len=16))
    return 3 * 4 * sum(p.numel() for p in model.parameters())


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_fsdp_checkpoint_save_host_memory_per_rank(shards, tmp_path):
    run = tmp_path / "run"
    mp.spawn(_memory_worker, args=(2, _free_port(), str(shards), str(run), "fsdp"), nprocs=2)
    full_kb = _state_bytes() // 1024
    extra = [json.loads((run / f"memory-rank{r}.json").read_text())[0]["extra_kb"] for r in (0, 1)]
    print(f"full state {full_kb} kB; extra peak RSS while saving, per rank: {extra} kB")
    # Today every checkpoint gathers the whole model and optimizer state to rank 0's CPU.
    assert extra[0] >= full_kb
