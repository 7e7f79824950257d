"""arXiv: LaTeX cleaning cases, multi-file projects, containers, hostile input, the Beam stage."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import time
from pathlib import Path

import pytest

from llama_data.pipeline.arxiv import ArxivClean, ArxivReader, Limits, clean_latex
from llama_data.pipeline.arxiv.archive import (
    arxiv_id_from_name,
    gunzip_bounded,
    paper_directories,
    safe_member_name,
)
from llama_data.pipeline.arxiv.latex import strip_comments
from llama_data.pipeline.arxiv.macros import MacroExpander
from llama_data.pipeline.arxiv.project import Project, decode_latex, find_main, flatten
from llama_data.pipeline.document import DeadLetter, Document, Rejected
from llama_data.pipeline.io import FileSplit, local_open
from llama_data.pipeline.steps import run_steps


def doc(body: str, preamble: str = "") -> str:
    return (
        f"\\documentclass{{article}}\n{preamble}\n\\begin{{document}}\n{body}\n\\end{{document}}\n"
    )


# (name, preamble, body, must contain, must not contain)
CASES = [
    (
        "no-arg macro",
        r"\newcommand{\R}{\mathbb{R}}",
        r"\section{A} $x \in \R$",
        [r"$x \in \mathbb{R}$"],
        [r"\R$"],
    ),
    (
        "macro with args",
        r"\newcommand{\pair}[2]{\langle #1, #2\rangle}",
        r"\section{A} $\pair{a}{b}$",
        [r"\langle a, b\rangle"],
        [r"\pair"],
    ),
    (
        "optional default used",
        r"\newcommand{\lo}[2][\theta]{L_{#2}(#1)}",
        r"\section{A} $\lo{n}$",
        [r"L_{n}(\theta)"],
        [],
    ),
    (
        "optional given",
        r"\newcommand{\lo}[2][\theta]{L_{#2}(#1)}",
        r"\section{A} $\lo[\phi]{n}$",
        [r"L_{n}(\phi)"],
        [],
    ),
    (
        "renewcommand",
        r"\newcommand{\x}{old}\renewcommand{\x}{new}",
        r"\section{A} \x",
        ["new"],
        ["old"],
    ),
    (
        "providecommand keeps first",
        r"\newcommand{\x}{first}\providecommand{\x}{second}",
        r"\section{A} \x",
        ["first"],
        ["second"],
    ),
    (
        "DeclareMathOperator",
        r"\DeclareMathOperator{\tr}{tr}",
        r"\section{A} $\tr A$",
        [r"\operatorname{tr} A"],
        [],
    ),
    (
        "DeclareMathOperator*",
        r"\DeclareMathOperator*{\amin}{arg\,min}",
        r"\section{A} $\amin_x$",
        [r"\operatorname*{arg\,min}_x"],
        [],
    ),
    ("def no args", r"\def\eps{\varepsilon}", r"\section{A} $\eps$", [r"\varepsilon"], [r"\eps"]),
    ("def with args", r"\def\ip#1#2{(#1|#2)}", r"\section{A} $\ip{u}{v}$", ["(u|v)"], []),
    (
        "nested braces in argument",
        r"\newcommand{\f}[1]{F[#1]}",
        r"\section{A} $\f{\frac{a}{b}+{c}}$",
        [r"F[\frac{a}{b}+{c}]"],
        [],
    ),
    (
        "macro using macro",
        r"\newcommand{\R}{\mathbb{R}}\newcommand{\Rn}{\R^n}",
        r"\section{A} $\Rn$",
        [r"\mathbb{R}^n"],
        [],
    ),
    (
        "body ends with a macro taking args",
        r"\newcommand{\mc}[1]{{\mathcal #1}}\newcommand{\M}{\mc}",
        r"\section{A} $\M{X}$",
        [r"{\mathcal X}"],
        [],
    ),
    (
        "control word not glued to letters",
        r"\newcommand{\a}{\alpha}",
        r"\section{A} $\a{}b$",
        [r"\alpha b"],
        [r"\alphab"],
    ),
    ("percent escaped", "", r"\section{A} 50\% of it % a comment", [r"50\% of it"], ["a comment"]),
    (
        "double backslash then comment",
        "",
        "\\section{A} line\\\\% comment\nnext",
        ["line\\\\", "next"],
        ["comment"],
    ),
    (
        "verbatim keeps percent",
        "",
        "\\section{A}\n\\begin{verbatim}\nx = 1 % not a comment\n\\end{verbatim}",
        ["x = 1 % not a comment"],
        [],
    ),
    (
        "lstlisting keeps percent",
        "",
        '\\section{A}\n\\begin{lstlisting}\nprintf("%d")\n\\end{lstlisting}',
        ['printf("%d")'],
        [],
    ),
    (
        "verb keeps percent",
        "",
        r"\section{A} use \verb|%s| here % gone",
        [r"\verb|%s| here"],
        ["gone"],
    ),
    (
        "comment env removed",
        "",
        "\\section{A}\n\\begin{comment}\nhidden\n\\end{comment}\nshown",
        ["shown"],
        ["hidden"],
    ),
    (
        "commented section ignored",
        "",
        "preface\n% \\section{Fake}\n\\section{Real} text",
        ["\\section{Real} text"],
        ["Fake", "preface"],
    ),
    (
        "starred section starts text",
        "",
        r"abstract \section*{Intro} text",
        [r"\section*{Intro} text"],
        ["abstract"],
    ),
    (
        "chapter starts text",
        "",
        r"front matter \chapter{One} text",
        [r"\chapter{One} text"],
        ["front matter"],
    ),
    (
        "sectionmark is not a section",
        "",
        r"\sectionmark{x} pre \section{S} post",
        [r"\section{S} post"],
        ["pre"],
    ),
    (
        "thebibliography removed",
        "",
        "\\section{A} body\n\\begin{thebibliography}{9}\n\\bibitem{a} Ref.\n\\end{thebibliography}\nbio of author",
        ["body"],
        ["Ref.", "bio of author"],
    ),
    (
        "bibliography cmd, appendix kept",
        "",
        "\\section{A} body\n\\bibliographystyle{plain}\n\\bibliography{refs}\n\\appendix\n\\section{Proof} kept",
        ["body", "\\section{Proof} kept"],
        ["refs", "plain"],
    ),
    (
        "printbibliography removed",
        "",
        "\\section{A} body\n\\printbibliography[heading=none]\nclosing words",
        ["body"],
        ["closing words", "printbibliography"],
    ),
    (
        "macro in verbatim not expanded",
        r"\newcommand{\x}{EXP}",
        "\\section{A} \\x\n\\begin{verbatim}\n\\x\n\\end{verbatim}",
        ["EXP", "\\x\n\\end{verbatim}"],
        [],
    ),
    (
        "macro expanding to section",
        r"\newcommand{\sect}[1]{\section{#1}}",
        r"junk \sect{Intro} body",
        [r"\section{Intro} body"],
        ["junk"],
    ),
]


@pytest.mark.parametrize(
    ("name", "preamble", "body", "present", "absent"), CASES, ids=[c[0] for c in CASES]
)
def test_cleaning_cases(name, preamble, body, present, absent):
    res = clean_latex(doc(body, preamble))
    assert res.reason is None, res
    for p in present:
        assert p in res.text, (name, res.text)
    for a in absent:
        assert a not in res.text, (name, res.text)


def test_no_section_is_rejected():
    out = list(run_steps([ArxivClean()], [Document("arxiv/x", "arxiv", doc("just an abstract"))]))
    assert isinstance(out[0], Rejected) and out[0].reason == "no_section"


def test_recursion_bomb_finishes_in_bounded_time():
    bombs = [
        r"\def\a{\a x}",  # infinite recursion
        r"\def\a{\b\b}\def\b{\c\c}\def\c{\d\d}\def\d{\e\e}\def\e{\f\f}\def\f{\g\g}\def\g{\h\h}"
        r"\def\h{\i\i}\def\i{\j\j}\def\j{\k\k}\def\k{\l\l}\def\l{\m\m}\def\m{\n\n}\def\n{\o\o}"
        r"\def\o{\p\p}\def\p{\q\q}\def\q{\r\r}\def\r{\s\s}\def\s{\t\t}\def\t{\u\u}\def\u{xxxxxxxx}",
        r"\newcommand{\a}[1]{\a{#1#1}}",  # growing argument
    ]
    for bomb in bombs:
        start = time.monotonic()
        res = clean_latex(doc(r"\section{S} before \a\ after " * 3, bomb))
        assert time.monotonic() - start < 10
        assert res.reason is None
        assert "after" in res.text and res.macro_errors
        assert len(res.text) < 5_000_000


def test_unbalanced_braces_do_not_crash():
    res = clean_latex(
        doc(r"\section{A} \f{open and \section{B} rest", r"\newcommand{\f}[1]{F(#1)}")
    )
    assert res.reason is None
    assert "rest" in res.text
    assert any(e.startswith("bad_arguments") for e in res.macro_errors)
    e = MacroExpander()
    assert e.expand(r"\newcommand{\g}[1]{#1 \g") is not None  # definition itself unbalanced


def test_delimited_def_is_dropped_not_guessed():
    res = clean_latex(doc(r"\section{A} \dd x.", r"\def\dd#1.{D(#1)}"))
    assert "unsupported_def:\\dd" in res.macro_errors
    assert r"\def" not in res.text


def test_strip_comments_keeps_structure():
    text = "a % c\n% whole line\nb\\%c\n\\begin{verbatim}\n% v\n\\end{verbatim}\nd"
    assert strip_comments(text) == "a\nb\\%c\n\\begin{verbatim}\n% v\n\\end{verbatim}\nd"


def test_comments_after_a_verbatim_block_are_stripped():
    """Regression: a verbatim block ending on a line of its own left the scanner "inside"
    verbatim, so every comment after it was kept (the sympy paper's comments after its first
    doctest block, in ../shared/corpus)."""
    text = "a\n\\begin{verbatim}\nx % y\n\\end{verbatim}\n% note\nb % c\n\\begin{verbatim}\n% z\n\\end{verbatim}  \n% last\n"
    want = (
        "a\n\\begin{verbatim}\nx % y\n\\end{verbatim}\nb\n\\begin{verbatim}\n% z\n\\end{verbatim}\n"
    )
    assert strip_comments(text) == want
    cleaned = clean_latex(
        doc("\\section{A}\n\\begin{verbatim}\n>>> 1 % 2\n\\end{verbatim}\n\n% gone\nkept\n")
    )
    assert "% gone" not in cleaned.text and ">>> 1 % 2" in cleaned.text and "kept" in cleaned.text


# ---------------------------------------------------------------------------------------------
# Multi-file projects


def write_project(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def read_dir(path: Path) -> list:
    return read_file(path)


def test_multi_file_project_resolves_inputs(tmp_path):
    root = write_project(
        tmp_path / "2301.01234",
        {
            "main.tex": doc(
                r"\input{sec/intro}" "\n" r"\include{sec/method.tex}" "\n" r"\subfile{sec/extra}",
                r"\newcommand{\R}{\mathbb{R}}",
            ),
            "sec/intro.tex": "\\section{Intro}\nIn $\\R$. \\input sec/deep\n",
            "sec/deep.tex": "deep text\n",
            "sec/method.tex": "\\section{Method}\nmethod text\n% \\input{sec/never}\n",
            "sec/extra.tex": "\\documentclass[../main.tex]{subfiles}\n\\begin{document}\n\\section{Extra}\nextra text\n\\end{document}\n",
            "cover.tex": "\\documentclass{letter}\\begin{document}Dear editor, \\section{x}\\end{document}",
        },
    )
    (out,) = read_dir(root)
    assert isinstance(out, Document), out
    assert out.id == "arxiv/2301.01234" and out.meta["arxiv_id"] == "2301.01234"
    assert out.meta["main_file"] == "main.tex"
    for piece in ("\\section{Intro}", "$\\mathbb{R}$", "deep text", "method text", "extra text"):
        assert piece in out.text
    assert "Dear editor" not in out.text and "documentclass" not in out.text


def test_input_cycle_missing_and_depth(tmp_path):
    files = {
        "main.tex": doc("\\section{S}\n\\input{a}\n\\input{nothere}"),
        "a.tex": "A\\input{b}",
        "b.tex": "B\\input{a}",
    }
    project = Project({k: v.encode() for k, v in files.items()})
    flat = flatten(project, "main.tex")
    assert "AB" in flat.text
    assert flat.cycles and flat.missing == ["nothere"]
    chain = {f"f{i}.tex": f"L{i}\\input{{f{i + 1}}}" for i in range(40)}
    chain["main.tex"] = doc("\\section{S}\\input{f0}")
    flat = flatten(Project({k: v.encode() for k, v in chain.items()}), "main.tex", max_depth=8)
    assert flat.too_deep and "L6" in flat.text and "L7" not in flat.text  # main + 7 levels


def test_input_fanout_bomb_is_bounded(tmp_path):
    files = {f"f{i}.tex": (f"\\input{{f{i + 1}}}" * 10) for i in range(12)}
    files["f12.tex"] = "x" * 100
    files["main.tex"] = doc("\\section{S}\\input{f0}")
    start = time.monotonic()
    flat = flatten(
        Project({k: v.encode() for k, v in files.items()}), "main.tex", max_chars=1 << 20
    )
    assert time.monotonic() - start < 10
    assert flat.truncated and len(flat.text) <= 2 << 20


def test_main_file_choice():
    files = {
        "rebuttal.tex": doc("\\section{R}" + "long " * 500),
        "paper.tex": doc("\\input{intro}\\input{body}"),
        "intro.tex": "\\section{I}",
        "body.tex": "text",
    }
    assert find_main(Project({k: v.encode() for k, v in files.items()})) == "paper.tex"
    # only one file, without \documentclass: still the main file
    assert find_main(Project({"x.tex": b"\\section{A} b"})) == "x.tex"


def test_input_outside_project_is_missing(tmp_path):
    outside = tmp_path / "secret.tex"
    outside.write_text("SECRET")
    root = write_project(
        tmp_path / "paper",
        {"main.tex": doc("\\section{S}\\input{../secret}\\input{/etc/hostname}")},
    )
    (out,) = read_dir(root)
    assert "SECRET" not in out.text
    assert set(out.meta["input_missing"]) == {"../secret", "/etc/hostname"}


def test_latin1_and_koi8_sources():
    latin = doc("\\section{S} Gr\xf6\xdfe", "\\usepackage[latin1]{inputenc}").encode("latin-1")
    assert "Größe" in decode_latex(latin)[0]
    koi = doc("\\section{S} Привет мир, это статья", "\\usepackage[koi8-r]{inputenc}").encode(
        "koi8-r"
    )
    text, enc = decode_latex(koi)
    assert "Привет" in text and enc == "koi8-r"
    undeclared = doc("\\section{S} caf\xe9 cr\xe8me br\xfbl\xe9e na\xefve").encode("cp1252")
    assert "café" in decode_latex(undeclared)[0]


# ---------------------------------------------------------------------------------------------
# Containers


def tar_bytes(members: dict[str, bytes], gz: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def read_file(path: Path, limits: Limits | None = None) -> list:
    items = list(ArxivReader(limits=limits).read(FileSplit(str(path)), local_open))
    dead = [i for i in items if isinstance(i, DeadLetter)]
    docs = [i for i in items if isinstance(i, Document)]
    return dead + list(run_steps([ArxivClean()], docs))


def test_bulk_tar(tmp_path):
    project = tar_bytes(
        {"main.tex": doc("\\section{P} project").encode(), "fig.png": b"\x89PNG\x00\x00"}
    )
    bulk = tar_bytes(
        {
            "2401/2401.00001.gz": gzip.compress(project),
            "2401/2401.00002.gz": gzip.compress(doc("\\section{S} single").encode()),
            "2401/2401.00003.pdf": b"%PDF-1.5 ...",
            "2401/2401.00004.gz": gzip.compress(b"%PDF-1.4 gzipped pdf"),
            "2401/2401.00005.gz": gzip.compress(tar_bytes({"paper.pdf": b"%PDF"})),
            "2401/2401.00006.gz": b"\x1f\x8bnot really gzip",
            "9901/hep-th9901001.gz": gzip.compress(doc("\\section{Old} style id").encode()),
        }
    )
    path = tmp_path / "arXiv_src_2401_001.tar"
    path.write_bytes(bulk)
    out = {o.doc.id if isinstance(o, Rejected) else o.id: o for o in read_file(path)}
    assert (
        isinstance(out["arxiv/2401.00001"], Document) and "project" in out["arxiv/2401.00001"].text
    )
    assert out["arxiv/2401.00002"].text.startswith("\\section{S} single")
    assert out["arxiv/hep-th/9901001"].meta["arxiv_id"] == "hep-th/9901001"
    for pid in ("2401.00003", "2401.00004", "2401.00005"):
        assert (
            isinstance(out[f"arxiv/{pid}"], Rejected) and out[f"arxiv/{pid}"].reason == "pdf_only"
        )
    assert out["arxiv/2401.00006"].reason == "corrupt_archive"
    # the same bulk tar re-compressed is streamed the same way
    gz_path = tmp_path / "arXiv_src_2401_001.tar.gz"
    gz_path.write_bytes(gzip.compress(bulk))
    assert len(read_file(gz_path)) == len(out)


def test_per_paper_archives(tmp_path):
    (tmp_path / "2101.00001.tar.gz").write_bytes(
        tar_bytes({"./ms.tex": doc("\\section{T} tgz").encode()}, gz=True)
    )
    (tmp_path / "2101.00002.gz").write_bytes(gzip.compress(doc("\\section{G} gz").encode()))
    (tmp_path / "2101.00003.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "2101.00004v2.gz").write_bytes(gzip.compress(b"%!PS-Adobe-2.0"))
    results = {}
    for f in sorted(tmp_path.iterdir()):
        (o,) = read_file(f)
        results[f.name] = o
    assert "tgz" in results["2101.00001.tar.gz"].text
    assert "gz" in results["2101.00002.gz"].text
    assert results["2101.00003.pdf"].reason == "pdf_only"
    assert results["2101.00004v2.gz"].reason == "no_latex"
    assert results["2101.00004v2.gz"].doc.meta["archive_notes"] == ["postscript"]
    assert results["2101.00004v2.gz"].doc.meta["arxiv_id"] == "2101.00004v2"


def test_unsafe_members_never_used_nor_written(tmp_path):
    inner = tar_bytes(
        {
            "../../escape.tex": doc("\\section{E} evil").encode(),
            "/abs/path.tex": b"abs",
            "ok/main.tex": doc("\\section{M} fine").encode(),
        }
    )
    path = tmp_path / "2402.00001.gz"
    path.write_bytes(gzip.compress(inner))
    before = set(tmp_path.rglob("*"))
    (out,) = read_file(path)
    assert set(tmp_path.rglob("*")) == before  # nothing extracted
    assert "fine" in out.text and "evil" not in out.text
    assert {"unsafe_member:../../escape.tex", "unsafe_member:/abs/path.tex"} <= set(
        out.meta["archive_notes"]
    )
    assert safe_member_name("a/./b/../c") is None and safe_member_name("./a//b") == "a/b"


def test_gzip_bomb_is_cut(tmp_path):
    bomb = gzip.compress(b"\0" * (50 << 20))  # 50 MB of zeros in ~50 kB
    assert len(bomb) < 200_000
    with pytest.raises(ValueError, match="more than"):
        gunzip_bounded(bomb, 1 << 20)
    path = tmp_path / "2403.00001.gz"
    path.write_bytes(bomb)
    (out,) = read_file(path, Limits(max_paper_bytes=1 << 20))
    assert isinstance(out, Rejected) and out.reason == "too_large"


def test_unreadable_container_is_a_dead_letter(tmp_path):
    path = tmp_path / "arXiv_src_9999_001.tar"
    path.write_bytes(b"this is not a tar file at all" * 40)
    (out,) = read_file(path)
    assert isinstance(out, DeadLetter) and out.reason == "unreadable_file"


def test_ids_and_directories(tmp_path):
    assert arxiv_id_from_name("2401/2401.00001.gz") == "2401.00001"
    assert arxiv_id_from_name("math.AG0601001.gz") == "math.AG/0601001"
    assert arxiv_id_from_name("my-paper.tar.gz") is None
    write_project(tmp_path / "p1", {"a.tex": "x"})
    write_project(tmp_path / "p2" / "sub", {"b.tex": "y"})
    (tmp_path / "empty").mkdir()
    assert paper_directories(str(tmp_path)) == [str(tmp_path / "p1"), str(tmp_path / "p2")]


# ---------------------------------------------------------------------------------------------
# The Beam stage (real DirectRunner)


@pytest.mark.slow
def test_arxiv_stage_end_to_end(tmp_path):
    from llama_data.beam_jobs.arxiv import make_arxiv_stage
    from llama_data.beam_jobs.harness import run_stage
    from llama_data.beam_jobs.runners import RunOptions

    bulk = tar_bytes(
        {
            "2401/2401.00001.gz": gzip.compress(
                doc("\\section{A} alpha", r"\newcommand{\x}{y}").encode()
            ),
            "2401/2401.00002.pdf": b"%PDF-1.4",
            "2401/2401.00003.gz": gzip.compress(doc("no section here").encode()),
        }
    )
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "arXiv_src_2401_001.tar").write_bytes(bulk)
    write_project(tmp_path / "in" / "folder-paper", {"main.tex": doc("\\section{F} folder")})
    spec = make_arxiv_stage([str(tmp_path / "in" / "*")])
    result = run_stage(spec, str(tmp_path / "out"), RunOptions(quiet=True))
    stats = result.stats
    assert stats["in"] == 4 and stats["kept"] == 2
    assert stats["rejected"] == {"no_section": 1, "pdf_only": 1}
    import pyarrow.parquet as pq

    rows = [
        r
        for f in sorted((tmp_path / "out" / "arxiv").glob("*.parquet"))
        for r in pq.read_table(f).to_pylist()
    ]
    by_id = {r["id"]: r for r in rows}
    assert by_id["arxiv/2401.00001"]["arxiv_id"] == "2401.00001"
    assert by_id["arxiv/2401.00001"]["main_file"] == "2401.00001.tex"
    assert any(r["id"].endswith("folder-paper") and "folder" in r["text"] for r in rows)
    assert json.loads((tmp_path / "out" / "arxiv" / "_SUCCESS").read_text())["kept"] == 2


# ---------------------------------------------------------------------------------------------
# Integration on the shared sample corpus


@pytest.mark.corpus
def test_corpus_arxiv_papers(corpus):
    docs = []
    for folder in paper_directories(str(corpus / "arxiv")):
        docs += read_dir(Path(folder))
    by_id = {d.id: d for d in docs if isinstance(d, Document)}
    assert len(by_id) == 3, docs
    conv = by_id["arxiv/1603.07285"]
    assert conv.meta["main_file"] == "conv_arithmetic.tex"
    assert conv.text.startswith("\\chapter{Introduction}")
    assert "\\bibliography" not in conv.text
    systolic = by_id["arxiv/2008.10111"]
    assert systolic.meta["main_file"] == "systolic_paper.tex" and systolic.meta["files_used"] == 8
    assert "{\\mathbb R}" in systolic.text and "\\newcommand" not in systolic.text
    sympy = next(d for i, d in by_id.items() if i.endswith("not-arxiv-sympy-paper-peerj"))
    assert sympy.meta["main_file"] == "paper.tex"
    assert "Dear" not in sympy.text[:2000]  # not the cover letter


# ---------------------------------------------------------------------------------------------
# s3://arxiv/src/ through Beam's S3 filesystem, against moto's S3 server on 127.0.0.1


@pytest.mark.slow
def test_bulk_tar_from_s3_requester_pays(tmp_path, s3_server):
    import boto3
    from apache_beam.io.aws.clients.s3 import boto3_client
    from click.testing import CliRunner

    from llama_data.beam_jobs.s3 import enable_requester_pays
    from llama_data.cli import main

    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    s3.create_bucket(Bucket="arxiv")
    s3.put_bucket_request_payment(
        Bucket="arxiv", RequestPaymentConfiguration={"Payer": "Requester"}
    )
    bulk = tar_bytes(
        {
            "2401/2401.00001.gz": gzip.compress(doc("\\section{A} from s3").encode()),
            "2401/2401.00002.pdf": b"%PDF-1.4",
        }
    )
    s3.put_object(Bucket="arxiv", Key="src/arXiv_src_2401_001.tar", Body=bulk)
    s3_args = ["--", f"--s3_endpoint_url={s3_server}", "--s3_region_name=us-east-1"]
    res = CliRunner().invoke(
        main,
        [
            "arxiv",
            "-i",
            "s3://arxiv/src/arXiv_src_*.tar",
            "-o",
            str(tmp_path / "out"),
            "--requester-pays",
            "-q",
            *s3_args,
        ],
    )
    assert res.exit_code == 0, res.output
    stats = json.loads((tmp_path / "out" / "arxiv" / "stats.json").read_text())
    assert stats["in"] == 2 and stats["kept"] == 1 and stats["rejected"] == {"pdf_only": 1}
    # the header a requester-pays bucket demands is really sent
    enable_requester_pays()
    client = boto3_client.Client({"s3_endpoint_url": s3_server, "s3_region_name": "us-east-1"})
    seen = []
    client.client.meta.events.register(
        "before-call.s3.GetObject", lambda params, **_: seen.append(params["headers"])
    )
    client.client.get_object(Bucket="arxiv", Key="src/arXiv_src_2401_001.tar")
    assert seen and seen[0].get("x-amz-request-payer") == "requester"


def test_random_latex_never_crashes_nor_hangs():
    """Fuzz: token soup of definitions, braces, comments and verbatim must always come back."""
    import random

    tokens = [
        "{", "}", "[", "]", "#1", "#2", "##", "%", "\\%", "\\\\", "\n", " ", "x", "\\x", "\\y",
        "\\newcommand", "\\renewcommand*", "\\providecommand", "\\def", "\\let", "\\long",
        "\\DeclareMathOperator", "{\\x}", "{\\y}", "[1]", "[2][d]", "\\section{S}", "\\section*",
        "\\begin{verbatim}", "\\end{verbatim}", "\\verb|", "|", "\\begin{thebibliography}",
        "\\end{thebibliography}", "\\bibliography{r}", "\\appendix", "\\begin{comment}",
        "\\end{comment}", "\\x\\x", "\\y{\\x}",
    ]  # fmt: skip
    rng = random.Random(0)
    start = time.monotonic()
    for _ in range(300):
        body = "".join(rng.choice(tokens) for _ in range(rng.randint(1, 120)))
        res = clean_latex(
            doc("\\section{A}" + body, "".join(rng.choice(tokens) for _ in range(30)))
        )
        assert isinstance(res.text, str)
    assert time.monotonic() - start < 60
