"""More of the fault suite at the command line (see test_stages.py for what each case asserts):
GitHub export rows, books, arXiv containers, XML entity attacks on Stack Exchange and
Wikipedia, NUL bytes and a 50 MB line, each mixed with good records."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Callable

import pytest
import zstandard
from _faults import parquet_rows
from test_stages import TEXT, run_case

# ---------------------------------------------------------------------------------------------
# GitHub export rows (BigQuery `files` + `contents`, JSON lines)

CODE = "def add_{i}(a, b):\n    # Add two numbers and return the sum.\n    return a + b + {i}\n"


def _gh(i: int, **kw: object) -> bytes:
    content = CODE.format(i=i)
    row = {"repo_name": f"o/r{i}", "ref": "refs/heads/main", "path": f"src/m{i}.py",
           "mode": 33188, "id": f"{i:040x}", "size": len(content), "binary": False,
           "copies": 1, "content": content, "license": "mit", **kw}  # fmt: skip
    return json.dumps(row).encode()


def _github_rows() -> bytes:
    bad = [
        _gh(10, binary=True, content="\u0000\u0001\u0002 binary blob \u0000"),
        b'{"repo_name": "o/cut", "path": "a.py", "content": "x = ',  # not JSON
        _gh(11, content=5),  # content of the wrong type
        _gh(12, repo_name=5),  # repo_name of the wrong type
        _gh(13, license=5),  # a licence that is no string: not an allowed licence
        _gh(14, path="../../etc/passwd"),  # a path is only a name: kept as text
    ]
    return b"\n".join([_gh(i) for i in range(3)] + bad + [_gh(i) for i in range(3, 6)]) + b"\n"


# ---------------------------------------------------------------------------------------------
# Books: Books3 JSON lines (.zst) and Gutenberg .txt


def _book(seed: int) -> str:
    import random

    rng = random.Random(seed)
    words = [f"{rng.choice(['lamp', 'river', 'stone', 'winter', 'letter'])}{rng.randint(0, 999)}"
             for _ in range(600)]  # fmt: skip
    return "\n".join(" ".join(words[i : i + 12]) + "." for i in range(0, len(words), 12))


def _books3_zst_bomb() -> bytes:
    """Good books, then a zstd frame of 128 MiB of zeros with no newline (~4 KB), then more."""
    c = zstandard.ZstdCompressor()

    def lines(seeds: range) -> bytes:
        return b"".join(json.dumps({"text": _book(s)}).encode() + b"\n" for s in seeds)

    bomb = c.compressobj()
    frame = b"".join(bomb.compress(bytes(1 << 20)) for _ in range(128)) + bomb.flush()
    return c.compress(lines(range(3))) + frame + c.compress(b"\n" + lines(range(3, 6)))


def _gutenberg() -> dict[str, bytes]:
    head = "*** START OF THE PROJECT GUTENBERG EBOOK X ***\n"
    return {
        "pg1.txt": (head + _book(1)).encode(),
        "pg2.txt": (head + "Un caf\xe9 cr\xe8me. " + _book(2)).encode("latin-1"),  # not UTF-8
        "pg3.txt": (head + _book(3)).encode("utf-16"),  # UTF-16 with a BOM
        "pg4.txt": b"\x81\x8d\x8f\x90\x9d " + (head + _book(4)).encode(),  # no encoding fits
        "pg5.txt": b"PK\x03\x04\x00\x00\x00binary\x00\x00" * 50,  # a zip, not text
    }


# ---------------------------------------------------------------------------------------------
# arXiv: a bulk tar holding hostile papers


def _tex(body: str, preamble: str = "") -> bytes:
    return (
        f"\\documentclass{{article}}\n{preamble}\n\\begin{{document}}\n\\section{{S}} {body}\n"
        "\\end{document}\n"
    ).encode()


def _tar(members: dict[str, bytes | str], gz: bool = False) -> bytes:
    """`str` values are symlink targets."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _arxiv_bulk() -> bytes:
    papers = {
        "2101/2101.00001.gz": gzip.compress(_tex("A good paper about lamps.")),
        "2101/2101.00002.gz": _tar(
            {
                "../../escape.tex": _tex("escaped"),
                "/abs/evil.tex": _tex("absolute"),
                "link.tex": "/etc/passwd",
                "main.tex": _tex("A project with hostile members. \\input{link}"),
            },
            gz=True,
        ),
        "2101/2101.00003.gz": gzip.compress(
            _tex("Recursion \\a\\ and \\b\\ here.", "\\def\\a{\\a x}\n\\newcommand{\\b}{\\b\\b}")
        ),
        "2101/2101.00004.gz": _tar(
            {"main.tex": _tex("Cycle \\input{a}"), "a.tex": b"A part \\input{main}\n"}, gz=True
        ),
        "2101/2101.00005.gz": gzip.compress(_tex("Another good paper about rivers.")),
        "../2101.00006.gz": gzip.compress(_tex("outside the tar's folder")),
        "/2101.00007.gz": gzip.compress(_tex("an absolute member")),
    }
    return _tar(papers)


# ---------------------------------------------------------------------------------------------
# XML entity attacks, NUL bytes


LAUGHS = (
    '<!DOCTYPE {root} [\n <!ENTITY lol "lol">\n'
    + "".join(f' <!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(2, 10)).replace(
        "&lol1;", "&lol;"
    )
    + "]>\n"
)
EXTERNAL = '<!DOCTYPE {root} [\n <!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n'


def _posts_rows(*bad: str) -> list[str]:
    from test_stackexchange import row

    good = [row(Id=1, PostTypeId=1, Score=1, Title="Q", Body="<p>a question</p>"),
            row(Id=2, PostTypeId=2, ParentId=1, Score=1, Body="<p>an answer</p>")]  # fmt: skip
    return [good[0], *bad, good[1]]


def _posts_with_dtd(dtd: str, body: str) -> dict[str, bytes]:
    from test_stackexchange import posts_xml

    evil = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        + dtd.format(root="posts")
        + "<posts>\n"
        + f'  <row Id="3" PostTypeId="1" Score="1" Title="T" Body="{body}" />\n</posts>'
    )
    return {
        "good.stackexchange.com-Posts.xml": posts_xml(_posts_rows()),
        "evil.stackexchange.com-Posts.xml": evil.encode(),
    }


def _posts_raw(bad: bytes) -> bytes:
    from test_stackexchange import posts_xml

    return posts_xml(_posts_rows("@BAD@\n")).replace(b"@BAD@", bad)


def _wiki(pages: list[str], dtd: str = "") -> bytes:
    from test_wikipedia import FOOTER, header

    return ('<?xml version="1.0"?>\n' + dtd + header() + "".join(pages) + FOOTER).encode()


def _wiki_with_dtd(dtd: str, text: str) -> dict[str, bytes]:
    from test_wikipedia import page_xml

    good = [page_xml(i, f"Page {i}", TEXT.format(i) * 3) for i in range(1, 4)]
    evil = page_xml(9, "Evil", "x").replace(">x</text>", f">{text}</text>")
    return {
        "enwiki-20240101-pages-articles1.xml": _wiki(good),
        "enwiki-20240101-pages-articles2.xml": _wiki([evil], dtd.format(root="mediawiki")),
    }


def _wiki_nul() -> bytes:
    from test_wikipedia import page_xml

    pages = [page_xml(i, f"Page {i}", TEXT.format(i) * 3) for i in range(1, 5)]
    pages[1] = pages[1].replace("number 2", "number \x00 2")  # a raw NUL byte: not XML
    return _wiki(pages)


def _docs(ids: range) -> bytes:
    return b"".join(
        json.dumps({"id": f"d{i}", "text": TEXT.format(i)}).encode() + b"\n" for i in ids
    )


def _fifty_mb_line() -> bytes:
    big = json.dumps({"id": "big", "text": "word " * (10 << 20)}).encode()  # 50 MiB, one line
    return _docs(range(3)) + big + b"\n" + _docs(range(3, 6))


SE = "stackexchange"
WIKI = ("wikipedia", "enwiki-20240101-pages-articles*.xml")

# (command, input file or glob, its bytes (or {name: bytes}), good records, dead-letter
# reasons, stage folder)
CASES: dict[str, tuple[str, str, Callable[[], bytes | dict[str, bytes]], int, list[str], str]] = {
    "github-binary-bad-json-wrong-types": (
        "github", "rows.jsonl", _github_rows, 9, ["bad_json", "missing_field", "missing_field"],
        "github"),
    "books3-zst-bomb-without-newline": (
        "books", "books3.jsonl.zst", _books3_zst_bomb, 6, ["line_too_long"], "books"),
    "gutenberg-not-utf8-utf16-binary": ("books", "pg*.txt", _gutenberg, 4, ["not_text"], "books"),
    "arxiv-tar-escapes-symlinks-recursion-cycles": (
        "arxiv", "arXiv_src_2101_001.tar", _arxiv_bulk, 7, [], "arxiv"),
    "posts-billion-laughs": (
        SE, "*-Posts.xml", lambda: _posts_with_dtd(LAUGHS, "&lol9;"), 1, ["xml_dtd_forbidden"], SE),
    "posts-external-entity": (
        SE, "*-Posts.xml", lambda: _posts_with_dtd(EXTERNAL, "&xxe;"), 1, ["xml_dtd_forbidden"], SE),
    "posts-undeclared-entity-in-a-row": (
        SE, "s.stackexchange.com-Posts.xml",
        lambda: _posts_raw(b'  <row Id="3" PostTypeId="2" ParentId="1" Body="&xxe;" />'), 1,
        ["bad_row_xml"], SE),
    "posts-nul-byte": (
        SE, "s.stackexchange.com-Posts.xml",
        lambda: _posts_raw(b'  <row Id="3" PostTypeId="2" ParentId="1" Body="a\x00b" />'), 1,
        ["bad_row_xml"], SE),
    "wikipedia-billion-laughs": (
        *WIKI, lambda: _wiki_with_dtd(LAUGHS, "&lol9;"), 3, ["xml_dtd_forbidden"], "wikipedia"),
    "wikipedia-external-entity": (
        *WIKI, lambda: _wiki_with_dtd(EXTERNAL, "&xxe;"), 3, ["xml_dtd_forbidden"], "wikipedia"),
    "wikipedia-nul-byte": (
        "wikipedia", "enwiki-20240101-pages-articles.xml", _wiki_nul, 3, ["bad_page_xml"],
        "wikipedia"),
    "jsonl-raw-nul-byte": (
        "dedup-exact", "d.jsonl",
        lambda: _docs(range(3)) + b'{"text": "raw \x00 byte"}\n' + _docs(range(3, 6)), 6,
        ["bad_json"], "dedup-exact"),
    "jsonl-50mb-single-line": (
        "dedup-exact", "d.jsonl", _fifty_mb_line, 7, [], "dedup-exact"),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_input_mixed_with_good_records(tmp_path, case: str) -> None:
    run_case(tmp_path, CASES[case])
    stage = tmp_path / "out" / CASES[case][-1]
    rejected = {r["id"].rsplit("!", 1)[-1]: r["reason"] for r in parquet_rows(stage / "rejected")}
    if case.startswith("github"):
        assert rejected["o/r10/src/m10.py"] == "binary"
        assert rejected["o/r13/src/m13.py"] == "license:5"
    if case.startswith("arxiv"):  # nothing hostile used; each paper says what was left out
        assert rejected == {"../2101.00006.gz": "unsafe_member", "/2101.00007.gz": "unsafe_member"}
        meta = {r["id"]: json.loads(r["meta"]) for r in parquet_rows(stage)}
        assert meta["arxiv/2101.00002"]["archive_notes"] == [
            "unsafe_member:../../escape.tex", "unsafe_member:/abs/evil.tex", "link_skipped:link.tex"
        ]  # fmt: skip
        assert meta["arxiv/2101.00003"]["macro_errors"] == ["recursion:\\a", "recursion:\\b"]
        assert meta["arxiv/2101.00004"]["input_cycles"] == ["main.tex -> a.tex -> main.tex"]
        texts = " ".join(r["text"] for r in parquet_rows(stage))
        assert "escaped" not in texts and "absolute" not in texts and "root:" not in texts
