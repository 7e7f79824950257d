"""Fixtures of the conformance suite (`make conformance`): reference environments and the table
printed at the end of the run."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from conformance.references import CACHE, REFERENCES, ConformanceTable, ReferenceEnv

TABLE = ConformanceTable()
_ENVS: dict[str, ReferenceEnv] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.conformance)


@pytest.fixture(scope="session")
def reference() -> Callable[[str], ReferenceEnv]:
    """`reference("cc_net")`: the reference's environment, installed on first use."""

    def get(name: str) -> ReferenceEnv:
        if name not in _ENVS:
            _ENVS[name] = ReferenceEnv(REFERENCES[name]).ensure()
        return _ENVS[name]

    return get


@pytest.fixture(scope="session")
def table() -> ConformanceTable:
    return TABLE


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    if not TABLE.rows:
        return
    terminalreporter.section("conformance with the reference implementations")
    terminalreporter.write_line(TABLE.render())
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "report.json").write_text(json.dumps(TABLE.as_json(), indent=2))
