"""Mixture math: exact prefixes, epochs accounting, the max-epochs rule, renormalization."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llama_data.pipeline.mixture import (
    TABLE1_ORDER,
    TABLE1_WEIGHTS,
    MixtureError,
    MixtureSpec,
    Schedule,
    SourceStats,
    epoch_order,
    exact_weights,
    load_mixture_spec,
    plan_mixture,
)

CTX = 100


def _prefix_deviation(schedule: Schedule, weights: np.ndarray, n_rows: int) -> float:
    sources = schedule.sources(0, n_rows)
    onehot = np.zeros((n_rows, len(weights)))
    onehot[np.arange(n_rows), sources] = 1
    counts = np.cumsum(onehot, axis=0)
    expected = np.outer(np.arange(1, n_rows + 1), weights)
    return float(np.abs(counts - expected).max())


def test_table1_every_prefix_within_one_row() -> None:
    ks, d = exact_weights({s: TABLE1_WEIGHTS[s] for s in TABLE1_ORDER})
    assert d == 200 and ks == [134, 30, 9, 9, 9, 5, 4]
    schedule = Schedule(ks, d)
    weights = np.asarray(ks) / d
    assert _prefix_deviation(schedule, weights, 5 * d + 37) < 1.0
    # O(1) counts agree with counting the sequence itself, across period boundaries.
    for n in (0, 1, 199, 200, 201, 777):
        np.testing.assert_array_equal(
            schedule.counts(n), np.bincount(schedule.sources(0, n), minlength=len(ks))
        )
    np.testing.assert_array_equal(schedule.counts(2000), np.asarray(ks) * 10)


@pytest.mark.parametrize("seed", range(8))
def test_random_weights_every_prefix_within_one_row(seed: int) -> None:
    rng = np.random.default_rng(seed)
    raw = rng.integers(1, 60, size=rng.integers(2, 9))
    ks, d = exact_weights({f"s{i}": float(v) for i, v in enumerate(raw)})
    assert sum(ks) == d
    schedule = Schedule(ks, d)
    assert _prefix_deviation(schedule, np.asarray(ks) / d, 3 * d + 5) < 1.0


def _available(**tokens: int) -> dict[str, SourceStats]:
    return {
        s: SourceStats(documents=t // 50, tokens=t, disk_bytes=t * 4) for s, t in tokens.items()
    }


def test_max_epochs_rule_and_accounting() -> None:
    # Plenty of everything except wikipedia, which limits the total at 2.5 epochs.
    tokens = {s: 10_000_000 for s in TABLE1_ORDER}
    tokens["wikipedia"] = 20_000
    plan = plan_mixture(_available(**tokens), load_mixture_spec("table1"), CTX)
    wiki = next(s for s in plan.sources if s.name == "wikipedia")
    assert wiki.rows * CTX + 1 <= 2.5 * 20_000
    assert wiki.epochs == pytest.approx(wiki.tokens_used / 20_000)
    assert wiki.epochs > 2.4
    # One more row would push wikipedia (or another source) over its limit.
    schedule = plan.schedule()
    bigger = schedule.counts(plan.total_rows + 200)
    assert bigger[plan.names.index("wikipedia")] * CTX + 1 > 2.5 * 20_000
    assert sum(s.rows for s in plan.sources) == plan.total_rows
    for s in plan.sources:
        assert abs(s.rows - s.weight * plan.total_rows) < 1
        assert s.tokens_used == s.rows * CTX
    # CommonCrawl limited to one epoch when it is the scarce one.
    tokens = {s: 10_000_000 for s in TABLE1_ORDER}
    tokens["commoncrawl"] = 300_000
    plan = plan_mixture(_available(**tokens), load_mixture_spec("table1"), CTX)
    cc = plan.sources[0]
    assert cc.name == "commoncrawl" and cc.epochs <= 1.0 and cc.epochs > 0.99


def test_explicit_tokens_and_max_epochs_override(tmp_path: Path) -> None:
    tokens = {s: 1_000_000 for s in TABLE1_ORDER}
    plan = plan_mixture(_available(**tokens), load_mixture_spec(), CTX, total_tokens=200_000)
    assert plan.total_rows == 2000 and plan.total_tokens == 200_000
    assert [s.rows for s in plan.sources] == [1340, 300, 90, 90, 90, 50, 40]
    assert not plan.warnings
    plan = plan_mixture(_available(**tokens), load_mixture_spec(), CTX, total_tokens=10**8)
    assert plan.warnings  # asked for more than the max epochs allow: said, not hidden
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"weights": {"a": 0.5, "b": 0.5}, "max_epochs": {"a": 4, "b": 1}}))
    spec = load_mixture_spec(str(path))
    plan = plan_mixture(_available(a=10_000, b=100_000), spec, CTX)
    a = plan.sources[0]
    assert a.name == "a" and 3.9 < a.epochs <= 4


def test_missing_source_is_error_unless_renormalized() -> None:
    tokens = {s: 1_000_000 for s in TABLE1_ORDER if s != "arxiv"}
    available = _available(**tokens)
    available["stackexchange"] = SourceStats(documents=0, tokens=0)
    with pytest.raises(MixtureError, match=r"arxiv \(missing\).*stackexchange \(empty\)"):
        plan_mixture(available, load_mixture_spec(), CTX)
    plan = plan_mixture(available, load_mixture_spec(), CTX, renormalize=True)
    assert plan.renormalized and plan.dropped == ("arxiv", "stackexchange")
    assert plan.names == ["commoncrawl", "c4", "github", "wikipedia", "books"]
    assert sum(s.weight for s in plan.sources) == pytest.approx(1.0)
    cc = plan.sources[0]
    assert cc.weight == pytest.approx(0.67 / 0.955)
    manifest = plan.to_manifest()
    assert manifest["renormalized"] is True and manifest["dropped_sources"] == [
        "arxiv",
        "stackexchange",
    ]


def test_weights_must_sum_to_one_without_renormalize() -> None:
    spec = MixtureSpec({"a": 2.0, "b": 1.0}, name="custom")
    with pytest.raises(MixtureError, match="sum to 3"):
        plan_mixture(_available(a=10_000, b=10_000), spec, CTX)
    plan = plan_mixture(_available(a=10_000, b=10_000), spec, CTX, renormalize=True)
    assert [s.weight for s in plan.sources] == pytest.approx([2 / 3, 1 / 3])


def test_epoch_order_seeded_and_new_each_epoch() -> None:
    keys = np.arange(1000, dtype=np.uint64) * np.uint64(2654435761)
    e0 = epoch_order(keys, 0, "books", 0)
    assert sorted(e0.tolist()) == list(range(1000))
    np.testing.assert_array_equal(e0, epoch_order(keys, 0, "books", 0))
    assert not np.array_equal(e0, epoch_order(keys, 0, "books", 1))
    assert not np.array_equal(e0, epoch_order(keys, 1, "books", 0))
    # Order follows the keys, not their positions: shuffling the input permutes consistently.
    shuffled = np.random.default_rng(3).permutation(1000)
    order = epoch_order(keys[shuffled], 0, "books", 0)
    np.testing.assert_array_equal(keys[shuffled][order], keys[e0])


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    """mix without a weighted source, report without shards: exit 2, one line, no traceback."""
    import shutil

    from _token_fixtures import tokenized_fixture

    from conftest import run_cli

    tokenized, _ = tokenized_fixture(tmp_path / "docs", tmp_path)
    shutil.rmtree(tokenized / "books")
    (tokenized / "sources.json").write_text(
        (tokenized / "sources.json").read_text().replace('"books"', '"books-gone"')
    )
    done = run_cli(
        "mix", "-i", str(tokenized), "-o", str(tmp_path / "shards"), "--context-length", "16"
    )
    assert done.returncode == 2, done.stderr
    assert "books (missing)" in done.stderr and "--renormalize" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    done = run_cli("report", str(tmp_path / "nothing"))
    assert done.returncode == 2 and "manifest.json" in done.stderr
