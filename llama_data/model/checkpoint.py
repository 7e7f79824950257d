"""Checkpoints of a run: sharded, written atomically, the last K kept, resumed on any world size.

A checkpoint is a folder `RUN/checkpoints/step-000001234/` written with
`torch.distributed.checkpoint` (DCP):
- `__0_0.distcp`, `__1_0.distcp`, ...: one file per process, holding that process's shards of the
  model and optimizer state (under FSDP2 its slices of every tensor; under DDP, where every process
  holds everything, DCP spreads the replicated tensors over the processes so each is written once),
  the data cursor and that process's RNG states;
- `.metadata`: DCP's index (every tensor's global shape and dtype, and which file holds which
  chunk of it);
- `meta.json`: step, model config, training config, schedule, the shard manifest's hash, the world
  size it was written with. Written last.
Every process writes its files into `.tmp-step-000001234/`; when all of them are done, rank 0 adds
meta.json, fsyncs, and renames the folder to its final name, so a folder with the final name is
complete. A folder without meta.json (a copy cut short) is skipped.

Loading reads, on each process, only the chunks that overlap what that process holds, one saved
chunk at a time: a checkpoint written by W processes resumes on any other number of processes
(or on one), and neither saving nor loading gathers the whole state anywhere.

Checkpoints of the earlier layout (one `state.pt` of full state dicts) still load.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import shutil
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

PREFIX = "step-"
TMP_PREFIX = ".tmp-"
LEGACY_FILE = "state.pt"
DCP_INDEX = ".metadata"


def read_errors() -> tuple[type[BaseException], ...]:
    """What loading a damaged checkpoint can raise (DCP's CheckpointException is a
    BaseException, gathered from every process, so all of them see it)."""
    from torch.distributed.checkpoint import CheckpointException

    return (Exception, CheckpointException)


def describe(error: BaseException) -> str:
    """One line per failing process for DCP's CheckpointException (whose str is every
    process's traceback); str(error) for anything else."""
    failures = getattr(error, "failures", None)
    if not isinstance(failures, dict):
        return f"{type(error).__name__}: {error}"
    return "; ".join(
        f"rank {rank}: {type(exc).__name__}: {exc}" for rank, (exc, _) in sorted(failures.items())
    )


class CheckpointWriteError(RuntimeError):
    """Writing a checkpoint failed (disk full, permissions, ...); the run's earlier checkpoints
    are untouched."""


class CheckpointMismatch(ValueError):
    """A checkpoint that does not fit the run (model shape, data, schedule)."""


def manifest_hash(directory: str | Path) -> str:
    """sha256 of the shard directory's manifest.json bytes: identifies the data a run saw."""
    return hashlib.sha256((Path(directory) / "manifest.json").read_bytes()).hexdigest()


def checkpoint_dir(run: Path) -> Path:
    return Path(run) / "checkpoints"


def is_sharded(path: str | Path) -> bool:
    return (Path(path) / DCP_INDEX).is_file()


def is_legacy(path: str | Path) -> bool:
    return (Path(path) / LEGACY_FILE).is_file() and not is_sharded(path)


def is_checkpoint(path: str | Path) -> bool:
    p = Path(path)
    return (p / "meta.json").is_file() and (is_sharded(p) or is_legacy(p))


def list_checkpoints(run: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = checkpoint_dir(Path(run))
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        named = p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX) :].isdigit()
        if named and is_checkpoint(p):
            found.append(p)
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def read_meta(path: Path) -> dict:
    return json.loads((Path(path) / "meta.json").read_text())


def latest_checkpoint(run: str | Path) -> Path | None:
    """The newest checkpoint whose meta.json parses; broken ones are reported and skipped."""
    for p in reversed(list_checkpoints(run)):
        try:
            read_meta(p)
            return p
        except (OSError, ValueError) as e:
            print(f"warning: skipping unreadable checkpoint {p}: {e}", file=sys.stderr)
    return None


def resolve(path: str | Path) -> Path | None:
    """A checkpoint folder given itself or its run folder (then the newest checkpoint)."""
    path = Path(path)
    return path if is_checkpoint(path) else latest_checkpoint(path)


def load_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """The full state of a checkpoint of the earlier layout (`state.pt`)."""
    return torch.load(Path(path) / LEGACY_FILE, map_location=map_location, weights_only=False)


def check_compatible(meta: dict, *, model: dict, manifest: str | None, schedule: dict) -> None:
    """Raise CheckpointMismatch naming every field that differs from the current run."""
    problems = []
    for key in sorted(set(meta.get("model", {})) | set(model)):
        a, b = meta.get("model", {}).get(key), model.get(key)
        if a != b:
            problems.append(f"model.{key}: checkpoint {a!r}, now {b!r}")
    if manifest is not None and meta.get("manifest_sha256") not in (None, manifest):
        problems.append(
            f"data: checkpoint trained on shards with manifest sha256 {meta['manifest_sha256'][:16]}…, "
            f"--data has {manifest[:16]}… (resuming with different data)"
        )
    for key in sorted(schedule):
        a, b = meta.get("schedule", {}).get(key), schedule[key]
        if a != b:
            hint = ""
            if key == "rows_per_step":
                hint = (
                    " (the global batch must stay the same; with another number of processes, "
                    "pick --micro-batch so that micro-batch x processes x accumulation gives it)"
                )
            problems.append(f"schedule.{key}: checkpoint {a!r}, now {b!r}{hint}")
    if problems:
        raise CheckpointMismatch(
            "checkpoint does not match this run:\n  "
            + "\n  ".join(problems)
            + "\n(use a new --out, or the options the checkpoint was written with)"
        )


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------------
# the sharded state of a training run


def _sharded_options():
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=False)


def train_state(model: nn.Module, optimizer: torch.optim.Optimizer, data: dict, rank: int) -> dict:
    """What a process contributes to a checkpoint: its shards of the model and optimizer state
    (DTensors under FSDP2, which stay where they are: nothing is gathered or copied), the data
    cursor (the same on every process, written once) and its own RNG states (key `rng.rankN`)."""
    from torch.distributed.checkpoint.state_dict import get_state_dict

    msd, osd = get_state_dict(model, optimizer, options=_sharded_options())
    return {
        "model": msd,
        "optimizer": osd,
        "data": dict(data),
        "rng": {f"rank{rank}": pickle.dumps(rng_state())},
    }


def load_train_state(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: dict,
    rank: int,
    saved_world: int,
) -> tuple[dict, dict]:
    """Load a sharded checkpoint into this process's shards, in place; returns (data cursor, RNG
    states). Each process reads only the saved chunks that overlap its own shards. The RNG states
    are those of saved rank `rank % saved_world` (the same rank when the world size is the same)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    # get_state_dict creates the optimizer's state (zeros) where it has none yet, to load into
    msd, osd = get_state_dict(model, optimizer, options=_sharded_options())
    src = f"rank{rank % max(1, saved_world)}"
    state = {"model": msd, "optimizer": osd, "data": dict(data), "rng": {src: b""}}
    with _quiet_single_process():
        dcp.load(state, checkpoint_id=str(path), no_dist=not _distributed())
    set_state_dict(
        model,
        optimizer,
        model_state_dict=state["model"],
        optim_state_dict=state["optimizer"],
        options=_sharded_options(),
    )
    return state["data"], pickle.loads(state["rng"][src])


def load_model_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The full model weights of a checkpoint, on the CPU, in this one process (for eval, sample,
    export). Only the model's tensors are read, never the optimizer state; works without a
    process group whatever the number of processes that wrote the checkpoint."""
    path = Path(path)
    if is_legacy(path):
        return load_state(path)["model"]
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    meta = dcp.FileSystemReader(str(path)).read_metadata()
    weights: dict[str, torch.Tensor] = {}
    for key, md in meta.state_dict_metadata.items():
        if key.startswith("model.") and isinstance(md, TensorStorageMetadata):
            weights[key.removeprefix("model.")] = torch.empty(
                md.size, dtype=md.properties.dtype, device="cpu"
            )
    if not weights:
        raise ValueError(f"{path}: no model weights in the checkpoint")
    with _quiet_single_process():
        dcp.load({"model": weights}, checkpoint_id=str(path), no_dist=True)
    return weights


# ---------------------------------------------------------------------------------------------
# writing


@dataclass
class _Pending:
    """An asynchronous save in flight: `done` is set once it is written and published (or
    failed, with the error in `errors`)."""

    done: threading.Event = field(default_factory=threading.Event)
    errors: list = field(default_factory=list)


class Checkpointer:
    """Writes a run's checkpoints: every process its own shards, rank 0 publishes the folder.

    `save` is collective (every process calls it at the same step). With `async_save`, the state
    is copied (staged) to host memory and written by a background thread while training goes on;
    the copy is of this process's shards only. Rank 0's background thread publishes the folder as
    soon as the write is complete. One asynchronous save is in flight at a time: the next `save`
    (or `close`) waits for it. Asynchronous saves coordinate over a process group of their own
    (gloo), so that their collectives never interleave with the training's.
    """

    def __init__(self, run: str | Path, rank: int, world: int, keep: int, async_save: bool = False):
        self.run = Path(run)
        self.root = checkpoint_dir(self.run)
        self.rank, self.world = rank, world
        self.keep = keep
        self.async_save = async_save
        self._pending: _Pending | None = None
        self._pg = None
        if async_save and world > 1:
            import torch.distributed as dist

            self._pg = dist.new_group(backend="gloo")
        elif async_save:  # the save runs in another thread, out of _quiet_single_process's reach
            warnings.filterwarnings("ignore", message=_SINGLE_PROCESS_NOTICE)
        self.blocked_s: list[float] = []  # per save: how long the caller was held up
        self.written: list[Path] = []

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def remove_stale(self) -> None:
        """Temporary folders of saves that never completed (a crash): rank 0 deletes them."""
        if self.is_main and self.root.is_dir():
            for p in self.root.glob(TMP_PREFIX + "*"):
                shutil.rmtree(p, ignore_errors=True)
        self._barrier()

    def save(self, step: int, state: dict, meta: dict) -> None:
        import torch.distributed.checkpoint as dcp

        t0 = time.perf_counter()
        self.wait()
        final = self.root / f"{PREFIX}{step:09d}"
        tmp = self.root / f"{TMP_PREFIX}{final.name}"
        if self.is_main:
            self.root.mkdir(parents=True, exist_ok=True)
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir()
        self._barrier()
        writer = dcp.FileSystemWriter(str(tmp), sync_files=True)
        meta = {**meta, "step": step}
        if self.async_save:
            with _quiet_single_process():
                fut = dcp.async_save(
                    state, storage_writer=writer, process_group=self._pg, no_dist=self.world == 1
                )
            pending = self._pending = _Pending()

            def publish_when_written(f, tmp=tmp, final=final, meta=meta) -> None:
                # DCP's last step gathers every process's write results on rank 0 and only then
                # writes .metadata: rank 0's future completes after every process's files are
                # on disk, so rank 0 can publish without asking the others.
                try:
                    f.result()
                    self._publish(tmp, final, meta)
                except BaseException as e:  # noqa: BLE001 - handed to wait(), raised there
                    pending.errors.append(_write_error(final, e))
                finally:
                    pending.done.set()

            getattr(fut, "upload_completion", fut).add_done_callback(publish_when_written)
        else:
            try:
                with _quiet_single_process():
                    dcp.save(state, storage_writer=writer, no_dist=self.world == 1)
                self._publish(tmp, final, meta)
            except read_errors() as e:
                raise _write_error(final, e) from e
            self._barrier()
        self.blocked_s.append(time.perf_counter() - t0)

    def wait(self) -> None:
        """Block until the asynchronous save in flight (if any) is written and published; raise
        what it raised."""
        p, self._pending = self._pending, None
        if p is not None:
            p.done.wait()
            if p.errors:
                raise p.errors[0]

    def close(self) -> None:
        """Wait for the last save; on return every process sees it published."""
        self.wait()
        self._barrier()

    def _publish(self, tmp: Path, final: Path, meta: dict) -> None:
        if not self.is_main:
            return
        with open(tmp / "meta.json", "w") as f:
            f.write(json.dumps(meta, indent=2, sort_keys=True))
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        if final.exists():  # the same step saved again (e.g. a re-run after a crash in cleanup)
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(self.root)
        self.written.append(final)
        if self.keep > 0:
            for old in list_checkpoints(self.run)[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)


_SINGLE_PROCESS_NOTICE = "torch.distributed is disabled, unavailable or uninitialized"


@contextmanager
def _quiet_single_process():
    """DCP warns on every single-process save/load that it assumes one process: so do we."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SINGLE_PROCESS_NOTICE)
        yield


def _distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def _write_error(final: Path, error: BaseException) -> CheckpointWriteError:
    err = CheckpointWriteError(f"writing checkpoint {final.name} failed: {describe(error)}")
    err.__cause__ = error
    return err


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
