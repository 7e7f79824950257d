import hashlib
from pathlib import Path

import pytest

from llama_data.pipeline.errors import UserError
from llama_data.pipeline.http_download import (
    ChecksumMismatch,
    download,
    fetch_bytes,
    parse_checksums,
    write_manifest,
)


def test_download_verify_and_skip(http_server, tmp_path: Path):
    base, root = http_server
    blob = bytes(range(256)) * 5000
    (root / "dump.bin").write_bytes(blob)
    md5 = hashlib.md5(blob).hexdigest()
    got = download(f"{base}/dump.bin", tmp_path / "d" / "dump.bin", checksum=md5, algo="md5")
    assert got.path.read_bytes() == blob and not got.skipped
    assert got.sha256 == hashlib.sha256(blob).hexdigest()
    assert download(
        f"{base}/dump.bin", tmp_path / "d" / "dump.bin", checksum=md5, algo="md5"
    ).skipped
    manifest = write_manifest(tmp_path / "d", [got], {"source": "test"})
    assert '"sha256"' in manifest.read_text()


def test_resume_from_partial_file(http_server, tmp_path: Path):
    base, root = http_server
    blob = b"0123456789" * 100_000
    (root / "big.bin").write_bytes(blob)
    dest = tmp_path / "big.bin"
    (tmp_path / "big.bin.part").write_bytes(blob[:123_456])
    got = download(f"{base}/big.bin", dest, checksum=hashlib.sha256(blob).hexdigest())
    assert got.resumed_from == 123_456 and dest.read_bytes() == blob
    assert not (tmp_path / "big.bin.part").exists()


def test_checksum_mismatch_removes_the_file(http_server, tmp_path: Path):
    base, root = http_server
    (root / "f.bin").write_bytes(b"payload")
    with pytest.raises(ChecksumMismatch, match="does not match"):
        download(f"{base}/f.bin", tmp_path / "f.bin", checksum="0" * 64)
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()


def test_missing_remote_file_is_a_user_error(http_server, tmp_path: Path):
    base, _ = http_server
    with pytest.raises(UserError, match="HTTP 404"):
        download(f"{base}/nope.bin", tmp_path / "nope.bin")
    with pytest.raises(UserError, match="HTTP 404"):
        fetch_bytes(f"{base}/nope.txt")


def test_parse_checksum_files():
    text = "d41d8cd98f00b204e9800998ecf8427e  enwiki-pages-articles.xml.bz2\nnot a line\nABCDEF12 *other.7z\n"
    assert parse_checksums(text) == {
        "enwiki-pages-articles.xml.bz2": "d41d8cd98f00b204e9800998ecf8427e",
        "other.7z": "abcdef12",
    }
