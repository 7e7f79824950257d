"""This build's Table 1: sampling proportion, epochs, disk size and tokens per source.

Laid out like Table 1 of the paper (Dataset | Sampling prop. | Epochs | Disk size), with the tokens
each source contributes and, for reference, the paper's own numbers. Everything comes from the
shard manifest, which records what was actually written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from llama_data.pipeline.mixture import TABLE1_DISK, TABLE1_EPOCHS, TABLE1_LABELS, TABLE1_WEIGHTS
from llama_data.pipeline.shards import MANIFEST_NAME, read_manifest


def find_manifest_dir(path: str | os.PathLike[str]) -> Path:
    """A shard directory, or a build output holding one under tokens/."""
    p = Path(path)
    for candidate in (p, p / "tokens"):
        if (candidate / MANIFEST_NAME).is_file():
            return candidate
    raise FileNotFoundError(
        f"{path}: no {MANIFEST_NAME} here or in {p / 'tokens'}; run `llama-data mix` first"
    )


def human_bytes(n: float) -> str:
    """Decimal units as in the paper (3.3 TB, 783 GB)."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" or n >= 100 else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


def human_count(n: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def table1_rows(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    total = manifest["total_rows"] or 1
    for name, s in manifest["sources"].items():
        rows.append(
            {
                "source": name,
                "label": TABLE1_LABELS.get(name, name),
                "proportion": s.get("rows", 0) / total,
                "weight": manifest.get("weights", {}).get(name),
                "epochs": s.get("epochs", 0.0),
                "disk_bytes": s.get("disk_bytes", 0),
                "tokens_used": s.get("tokens_used", 0),
                "tokens_available": s.get("tokens_available", 0),
                "documents": s.get("documents", 0),
            }
        )
    return rows


def format_table1(manifest: dict[str, Any], paper: bool = True) -> str:
    rows = table1_rows(manifest)
    header = ["Dataset", "Sampling prop.", "Epochs", "Disk size", "Tokens"]
    if paper:
        header += ["| Paper prop.", "Epochs", "Disk size"]
    lines_data = []
    for r in rows:
        cells = [
            r["label"],
            f"{100 * r['proportion']:.1f}%",
            f"{r['epochs']:.2f}",
            human_bytes(r["disk_bytes"]),
            human_count(r["tokens_used"]),
        ]
        if paper:
            src = r["source"]
            cells += [
                f"| {100 * TABLE1_WEIGHTS[src]:.1f}%" if src in TABLE1_WEIGHTS else "| -",
                f"{TABLE1_EPOCHS[src]:.2f}" if src in TABLE1_EPOCHS else "-",
                TABLE1_DISK.get(src, "-"),
            ]
        lines_data.append(cells)
    total_tokens = sum(r["tokens_used"] for r in rows)
    total_disk = sum(r["disk_bytes"] for r in rows)
    footer = ["Total", "100.0%", "", human_bytes(total_disk), human_count(total_tokens)]
    if paper:
        footer += ["| 100.0%", "", "4.7 TB"]
    widths = [max(len(c[i]) for c in [header, *lines_data, footer]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        out = [cells[0].ljust(widths[0])]
        out += [
            c.rjust(w) if not c.startswith("|") else c.ljust(w)
            for c, w in zip(cells[1:], widths[1:], strict=True)
        ]
        return "  ".join(out).rstrip()

    rule = "-" * len(fmt(header))
    lines = [
        "Table 1 of this build (pre-training data mixture)",
        rule,
        fmt(header),
        rule,
        *(fmt(c) for c in lines_data),
        rule,
        fmt(footer),
        rule,
    ]
    tok = manifest.get("tokenizer") or {}
    lines.append(
        f"{manifest['total_rows']:,} rows of {manifest['context_length']} tokens in "
        f"{len(manifest['shards'])} shard(s), {manifest['dtype']}; tokenizer vocab "
        f"{tok.get('vocab_size')}, sha256 {str(tok.get('sha256'))[:12]}"
    )
    lines.append(
        "Disk size: UTF-8 bytes of the cleaned documents; epochs: tokens used / tokens available."
    )
    if manifest.get("renormalized"):
        dropped = ", ".join(manifest.get("dropped_sources", [])) or "none"
        lines.append(f"Weights renormalized over the sources with data; missing: {dropped}.")
    if manifest.get("unused_sources"):
        lines.append(
            "Built but not in the mixture (no weight): " + ", ".join(manifest["unused_sources"])
        )
    for warning in manifest.get("warnings", []):
        lines.append(f"Warning: {warning}")
    return "\n".join(lines)


def report(path: str | os.PathLike[str], paper: bool = True) -> str:
    return format_table1(read_manifest(find_manifest_dir(path)), paper=paper)


def report_cli(path: str, paper: bool = True) -> str:
    from llama_data.pipeline.errors import UserError
    from llama_data.pipeline.shards import ShardError

    try:
        return report(path, paper=paper)
    except (FileNotFoundError, ShardError) as exc:
        raise UserError(f"report: {exc}") from exc
