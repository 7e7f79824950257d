"""Checkpoints of a run: written atomically, the last K kept, resumed from the latest good one.

A checkpoint is a folder `RUN/checkpoints/step-000001234/` with
- `state.pt`: model and optimizer state dicts (full, unsharded), data cursor, RNG states of every
  rank;
- `meta.json`: step, model config, training config, schedule and the shard manifest's hash.
It is written under a temporary name and renamed, so a folder with the final name is complete;
`meta.json` is written last inside it, so a folder without it (a crash in an older layout, a copy
cut short) is skipped. The manifest hash and the model config are checked on resume: resuming with
different data or a different model shape is an error that names the mismatch.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

PREFIX = "step-"


class CheckpointMismatch(ValueError):
    """A checkpoint that does not fit the run (model shape, data, schedule)."""


def manifest_hash(directory: str | Path) -> str:
    """sha256 of the shard directory's manifest.json bytes: identifies the data a run saw."""
    return hashlib.sha256((Path(directory) / "manifest.json").read_bytes()).hexdigest()


def checkpoint_dir(run: Path) -> Path:
    return Path(run) / "checkpoints"


def list_checkpoints(run: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = checkpoint_dir(Path(run))
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        named = p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX) :].isdigit()
        if named and (p / "meta.json").is_file() and (p / "state.pt").is_file():
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


def load_latest(run: str | Path) -> tuple[Path, dict, dict] | None:
    """(path, meta, state) of the newest checkpoint that loads; damaged ones are skipped.

    A checkpoint folder is complete by construction (atomic rename), but a disk can still lose a
    file later; resuming from the previous good one beats refusing to resume.
    """
    for p in reversed(list_checkpoints(run)):
        try:
            return p, read_meta(p), load_state(p)
        except Exception as e:  # torch.load raises several types for a damaged file
            print(f"warning: skipping unreadable checkpoint {p}: {e}", file=sys.stderr)
    return None


def save_checkpoint(run: str | Path, step: int, state: dict, meta: dict, keep: int) -> Path:
    """Write atomically (temp folder, then rename) and delete all but the newest `keep`."""
    root = checkpoint_dir(Path(run))
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step:09d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    torch.save(state, tmp / "state.pt")
    meta = {**meta, "step": step}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    _fsync_dir(tmp)
    if final.exists():  # the same step saved again (e.g. a re-run after a crash in cleanup)
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(root)
    if keep > 0:
        for old in list_checkpoints(run)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    return torch.load(Path(path) / "state.pt", map_location=map_location, weights_only=False)


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
            problems.append(f"schedule.{key}: checkpoint {a!r}, now {b!r}")
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
