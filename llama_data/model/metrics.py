"""Run logs (JSON lines, TensorBoard when installed), progress display and MFU.

MFU = achieved training FLOP/s / peak dense bf16 FLOP/s of the GPUs, with the FLOPs of a token
counted as 6N + 12*layers*d*context (PaLM, appendix B). Peaks are the vendors' dense (no sparsity)
bf16 tensor-core figures; an unknown GPU gives no MFU unless `--peak-tflops` says its peak.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

# Dense bf16 peak TFLOP/s by a substring of torch.cuda.get_device_name(); most specific first.
PEAK_BF16_TFLOPS: list[tuple[str, float]] = [
    ("GB200", 2500.0),
    ("B200", 2250.0),
    ("H200", 989.5),
    ("H100 NVL", 835.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.5),  # SXM
    ("H800", 989.5),
    ("GH200", 989.5),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.1),
    ("L40", 181.0),
    ("L4", 121.0),
    ("A10G", 70.0),
    ("A10", 125.0),
    ("RTX 6000 Ada", 364.2),
    ("RTX 4090", 165.2),
    ("RTX 3090", 71.0),
    ("MI300X", 1307.4),
    ("MI250X", 383.0),
]


def peak_tflops(device: torch.device, override: float | None = None) -> float | None:
    """Peak bf16 TFLOP/s of one device; None on CPU or for a GPU not in the table."""
    if override:
        return float(override)
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_BF16_TFLOPS:
        if key.lower() in name.lower():
            return value
    return None


def mfu(
    tokens_per_s: float, flops_per_token: int, peak: float | None, n_devices: int
) -> float | None:
    if not peak:
        return None
    return tokens_per_s * flops_per_token / (peak * 1e12 * n_devices)


class RunLog:
    """Appends one JSON object per record to RUN/log.jsonl, mirrors scalars to TensorBoard."""

    def __init__(self, run: Path, enabled: bool = True) -> None:
        self.enabled = enabled
        self.path = Path(run) / "log.jsonl"
        self._tb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(Path(run) / "tensorboard"))
        except Exception:  # tensorboard is optional: JSON lines are the log of record
            self._tb = None

    def truncate_after(self, step: int) -> None:
        """On resume, drop records of steps the resumed run will redo (a crash left them)."""
        if not self.enabled or not self.path.exists():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("step", 0) <= step:
                kept.append(line)
        self.path.write_text("".join(line + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
        if self._tb is not None and "step" in record:
            for k, v in record.items():
                if k != "step" and isinstance(v, int | float) and math.isfinite(v):
                    self._tb.add_scalar(k, v, record["step"])
                elif isinstance(v, dict):
                    for sk, sv in v.items():
                        if isinstance(sv, int | float):
                            self._tb.add_scalar(f"{k}/{sk}", sv, record["step"])

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


class Progress:
    """A one-line progress display, redrawn in place on a terminal; silent otherwise."""

    def __init__(self, total: int, enabled: bool | None = None) -> None:
        self.total = total
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.start = time.perf_counter()
        self._shown = False

    def update(self, step: int, loss: float, tokens_per_s: float) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        done = step / max(1, self.total)
        width = 24
        bar = "#" * int(width * done) + "-" * (width - int(width * done))
        eta = elapsed / max(done, 1e-9) * (1 - done) if done > 0 else float("nan")
        sys.stderr.write(
            f"\r[{bar}] {step}/{self.total} loss {loss:.4f} {tokens_per_s:,.0f} tok/s "
            f"eta {_fmt_time(eta)}   "
        )
        sys.stderr.flush()
        self._shown = True

    def message(self, text: str) -> None:
        if self.enabled and self._shown:
            sys.stderr.write("\r\033[K")
        print(text, flush=True)

    def close(self) -> None:
        if self.enabled and self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
