"""Shared fixtures. Every fixture is made by the tests themselves, in tmp_path."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"

# Beam's multi-process workers are fresh interpreters: let them import the package under test and
# the steps tests define (cloudpickle pickles importable classes by reference).
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(REPO), str(REPO / "tests"), *filter(None, [os.environ.get("PYTHONPATH")])]
)


@pytest.fixture
def corpus() -> Path:
    """`../shared/corpus` (real upstream excerpts); tests using it skip when it is absent."""
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is absent")
    return CORPUS


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return path


def run_cli(
    *args: str, cwd: Path | None = None, prog: str = "llama_data", timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run the real command line in a subprocess (as a user would), capturing its output."""
    env = dict(os.environ)
    return subprocess.run(
        [sys.executable, "-m", prog, *args],
        cwd=cwd or REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with HTTP Range support (as object stores and dump mirrors have)."""

    def log_message(self, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[override]
        rng = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not rng or not path.is_file():
            return super().send_head()
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
        size = path.stat().st_size
        start = int(m.group(1)) if m else 0
        if start >= size:
            self.send_error(416)
            return None
        end = int(m.group(2)) if m and m.group(2) else size - 1
        f = path.open("rb")
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        return _Limited(f, end - start + 1)


class _Limited:
    def __init__(self, f, n: int) -> None:
        self.f, self.n = f, n

    def read(self, size: int = -1) -> bytes:
        if self.n <= 0:
            return b""
        data = self.f.read(self.n if size < 0 else min(size, self.n))
        self.n -= len(data)
        return data

    def close(self) -> None:
        self.f.close()


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static file server on 127.0.0.1 serving a folder; yields (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()

    def handler(*a, **kw):
        return _RangeHandler(*a, directory=str(root), **kw)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def s3_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The endpoint URL of a fresh moto S3 server on 127.0.0.1, with test credentials in the
    environment (stopped at the end)."""
    pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
