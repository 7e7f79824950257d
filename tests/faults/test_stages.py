"""The fault suite at the command line: each kind of damage, made here, mixed with good records
in one input, run through its stage as a user runs it. Each case asserts exit 0, the damage in
`errors/` with its reason, every good record written (kept, or rejected by a rule with a
reason), `in == kept + rejected + errors`, and nothing written outside the output folder."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard
from _faults import assert_accounted, dead_letters, parquet_rows

from conftest import run_cli

TEXT = "A good document with a sentence or two of ordinary words in it, number {}."


def _c4_line(i: int) -> bytes:
    return json.dumps(
        {"text": TEXT.format(i), "url": f"https://e.com/{i}", "timestamp": "2019"}
    ).encode()


def _c4(*bad: bytes) -> bytes:
    """Good lines 0..2, each bad line, good lines 3..5 (one gzip member)."""
    lines = [_c4_line(i) for i in range(3)] + list(bad) + [_c4_line(i) for i in range(3, 6)]
    return gzip.compress(b"\n".join(lines) + b"\n")


def _docs(ids: range) -> bytes:
    return b"".join(
        json.dumps({"id": f"d{i}", "text": TEXT.format(i)}).encode() + b"\n" for i in ids
    )


def _corrupt_member() -> bytes:
    bad = bytearray(gzip.compress(b"\n".join(_c4_line(i) for i in range(100, 400)) + b"\n"))
    bad[len(bad) // 2 : len(bad) // 2 + 16] = b"\xff" * 16
    return (
        gzip.compress(b"\n".join(_c4_line(i) for i in range(3)) + b"\n")
        + bytes(bad)
        + gzip.compress(b"\n".join(_c4_line(i) for i in range(3, 6)) + b"\n")
    )


def _zst_cut() -> bytes:
    from test_resync import _zstd_blocks

    frame = zstandard.ZstdCompressor().compress(_docs(range(3000)))
    return frame[: _zstd_blocks(frame)[0]]


def _posts(*bad: str) -> bytes:
    from test_stackexchange import posts_xml, row

    good = [row(Id=1, PostTypeId=1, Score=1, Title="Q", Body="<p>a question</p>"),
            row(Id=2, PostTypeId=2, ParentId=1, Score=1, Body="<p>an answer</p>")]  # fmt: skip
    return posts_xml([good[0], *bad, good[1]])


def _wiki_unclosed() -> bytes:
    from test_wikipedia import FOOTER, header, page_xml

    pages = [page_xml(i, f"Page {i}", TEXT.format(i) * 3) for i in range(1, 5)]
    pages[1] = pages[1].replace("  </page>\n", "")
    return (header() + "".join(pages) + FOOTER).encode()


# (command, input file name, its bytes, good records, dead-letter reasons, stage folder)
CASES: dict[str, tuple[str, str, Callable[[], bytes], int, list[str], str]] = {
    "c4-lone-surrogate": ("c4", "c4-train.00000-of-01024.json.gz",
                          lambda: _c4(b'{"text": "lone \\udfff here", "url": "u"}'), 7, [], "c4"),
    "c4-url-not-a-string": ("c4", "c4-train.00000-of-01024.json.gz",
                            lambda: _c4(b'{"text": "t", "url": 5}'), 6, ["bad_field"], "c4"),
    "c4-not-json": ("c4", "c4-train.00000-of-01024.json.gz",
                    lambda: _c4(b'{"text": "cut'), 6, ["bad_json"], "c4"),
    "c4-100000-deep": ("c4", "c4-train.00000-of-01024.json.gz",
                       lambda: _c4(b'{"text": "x", "m": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
                       6, ["bad_json"], "c4"),
    "c4-no-text": ("c4", "c4-train.00000-of-01024.json.gz",
                   lambda: _c4(b'{"url": "u"}', b"[1, 2]", b'"text"'), 6,
                   ["missing_text"] * 3, "c4"),
    "c4-nul-bytes": ("c4", "c4-train.00000-of-01024.json.gz",
                     lambda: _c4(b'{"text": "nul \\u0000 inside", "url": "u"}'), 7, [], "c4"),
    # zlib may decode damaged deflate data as garbage before it (or the member's CRC) notices:
    # those lines are dead letters too ("bad_json*", "missing_text*": any number of them)
    "c4-corrupt-gzip-member": ("c4", "c4-train.00000-of-01024.json.gz", _corrupt_member, -1,
                               ["corrupt_stream", "bad_json*", "missing_text*"], "c4"),
    "jsonl-wrong-types": ("dedup-exact", "d.jsonl",
                          lambda: _docs(range(3)) + b'{"text": 5}\n[1]\n' + _docs(range(3, 6)), 6,
                          ["bad_json", "missing_text"], "dedup-exact"),
    "jsonl-surrogates-in-id-and-meta": ("dedup-exact", "d.jsonl",
                                        lambda: _docs(range(3))
                                        + b'{"id": "\\ud800", "text": "t", "meta": {"\\udc00": 1}}\n',
                                        4, [], "dedup-exact"),
    "jsonl-zst-cut-at-a-block": ("dedup-exact", "d.jsonl.zst", _zst_cut, -1,
                                 ["corrupt_stream"], "dedup-exact"),
    "posts-score-beyond-int64": ("stackexchange", "s.stackexchange.com-Posts.xml",
                                 lambda: _posts('  <row Id="3" PostTypeId="2" ParentId="1" '
                                                'Score="99999999999999999999" Body="b" />\n'),
                                 1, ["bad_row_xml"], "stackexchange"),
    "posts-bare-ampersand": ("stackexchange", "s.stackexchange.com-Posts.xml",
                             lambda: _posts('  <row Id="3" PostTypeId="2" ParentId="1" Body="AT&T" />\n'),
                             1, ["bad_row_xml"], "stackexchange"),
    "wikipedia-unclosed-page": ("wikipedia", "enwiki-20240101-pages-articles.xml",
                                _wiki_unclosed, 3, ["unclosed_page"], "wikipedia"),
}  # fmt: skip


def run_case(tmp_path: Path, case: tuple) -> None:
    """One case: `make()` gives the input's bytes, or {file name: bytes} for several files
    (then `name` is the glob the command reads)."""
    command, name, make, n_good, reasons, stage_name = case
    inputs = tmp_path / "in"
    inputs.mkdir()
    made = make()
    files = made if isinstance(made, dict) else {name: made}
    for file_name, data in files.items():
        (inputs / file_name).write_bytes(data)
    out = tmp_path / "out"
    r = run_cli(
        command, "-q", "-i", str(inputs / name), "-o", str(out), "--", "--direct_num_workers=1"
    )
    assert r.returncode == 0, r.stderr[-3000:]
    stage = out / stage_name
    stats = json.loads((stage / "stats.json").read_text())
    dead = dead_letters(stage)
    got = sorted(d["reason"] for d in dead)
    any_number = {r[:-1] for r in reasons if r.endswith("*")}
    assert [r for r in got if r not in any_number] == sorted(r for r in reasons if "*" not in r)
    assert all(d["error"] for d in dead)
    written = stats["kept"] + sum(stats["rejected"].values())
    if n_good >= 0:
        assert written == n_good, stats
    else:  # as many as the damage left whole: at least some, and all of them written
        assert written > 0
    assert_accounted(stage, written + len(dead))
    # where the reader resynchronised, the dead letter says how many bytes it skipped, and
    # stats.json sums them
    skipped = [d["bytes_skipped"] for d in dead if "bytes_skipped" in d]
    assert stats["counters"].get("read.bytes_skipped", 0) == sum(skipped)
    resynced = {"unclosed_page", "line_too_long", "content_length_mismatch",
                "junk_between_records", "row_too_large"}  # fmt: skip
    assert all(d.get("bytes_skipped", 0) > 0 for d in dead if d["reason"] in resynced)
    if "corrupt_stream" in got and name.endswith(".gz"):
        assert skipped and all(n > 0 for n in skipped)
    if command == "c4":  # the good lines around the damage, every one of them
        texts = {row["text"] for row in parquet_rows(stage)}
        assert {TEXT.format(i) for i in range(6)} <= texts
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]
    assert sorted(p.name for p in inputs.iterdir()) == sorted(files)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_damage_mixed_with_good_records(tmp_path: Path, case: str) -> None:
    run_case(tmp_path, CASES[case])
